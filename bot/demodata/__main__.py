"""``python -m bot.demodata``."""

from bot.demodata.cli import main

raise SystemExit(main())
