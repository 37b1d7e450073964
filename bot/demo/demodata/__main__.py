"""``python -m bot.demo.demodata``."""

from bot.demo.demodata.cli import main

raise SystemExit(main())
