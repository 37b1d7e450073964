"""The `siaga` command line: the operators' side of the bot."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Callable, Coroutine
from datetime import timedelta
from functools import partial
from pathlib import Path
from typing import Any

from bot.clock import system_clock
from bot.config import ConfigError, Settings, load_settings
from bot.ops import logs
from bot.storage.db import make_engine, make_sessionmaker


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="siaga", description="Election-day security chat-ops bot.")
    parser.add_argument("--config", default="config.toml", help="TOML configuration file (default: config.toml)")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = commands.add_parser("run", help="run the bot (long polling by default)")
    run.add_argument("--webhook", action="store_true", help="receive updates by webhook")
    run.set_defaults(handler=cmd_run)

    demo = commands.add_parser(
        "demo", help="play an election morning against the built-in Telegram emulator (no token)", add_help=False
    )
    demo.add_argument("demo_args", nargs=argparse.REMAINDER)
    demo.set_defaults(handler=cmd_demo)

    db = commands.add_parser("db", help="database maintenance")
    db_commands = db.add_subparsers(dest="db_command", required=True, metavar="ACTION")
    db_commands.add_parser("upgrade", help="create or migrate the database").set_defaults(handler=cmd_db_upgrade)

    imp = commands.add_parser("import", help="import .xlsx workbooks or .csv files (all or nothing)")
    imp.add_argument("files", nargs="+", type=Path, metavar="FILE")
    imp.set_defaults(handler=cmd_import)

    invite = commands.add_parser("invite", help="issue one-time registration codes")
    invite.add_argument("nrps", nargs="+", metavar="NRP")
    invite.set_defaults(handler=cmd_invite)

    box = commands.add_parser("outbox", help="queue depth by priority, send rate and failures of the outbox")
    box.set_defaults(handler=cmd_outbox)

    check = commands.add_parser("check", help="report TPS under-staffed by their kerawanan pattern")
    check.add_argument("--unit", help="unit code (default: the whole tree)")
    check.add_argument("--shift", help="shift code (default: every shift)")
    check.set_defaults(handler=cmd_check)

    export = commands.add_parser("export", help="write the recap workbook (and FILE.geojson next to it)")
    export.add_argument("--shift", help="shift code (default: the running shift, else the next, else the last)")
    export.add_argument("file", type=Path, metavar="FILE")
    export.set_defaults(handler=cmd_export)

    data = commands.add_parser("demo-data", help="write a synthetic province workbook")
    data.add_argument("--tps", type=int, default=100, help="number of TPS (Sumsel: 25985)")
    data.add_argument("--seed", type=int, default=1)
    data.add_argument("out", type=Path, metavar="OUT.xlsx|DIR")
    data.set_defaults(handler=cmd_demo_data, needs_settings=False)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if args.command == "demo":
        args.demo_args = extra + args.demo_args
    elif extra:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    try:
        settings = load_settings(args.config)
        logs.configure(settings.logging.level, secrets=logs.secrets_of(settings))
        return args.handler(args, settings) or 0
    except ConfigError as error:
        print(f"siaga: {error}", file=sys.stderr)
        return 2


def run_with_database(settings: Settings, work: Callable[[Any], Coroutine[Any, Any, int]]) -> int:
    """Run `work(session)` in one transaction on the configured database."""

    async def go() -> int:
        engine = make_engine(settings.database.url)
        try:
            async with make_sessionmaker(engine)() as session:
                return await work(session)
        finally:
            await engine.dispose()

    return asyncio.run(go())


def cmd_run(args: argparse.Namespace, settings: Settings) -> int:
    from bot.app import build_application
    from bot.ops import serving
    from bot.runtime import runtime_of

    settings.require_token()
    if args.webhook:
        serving.webhook_options(settings)  # a missing URL or secret is reported before anything starts
    run_with_database(settings, partial(ensure_tallies, settings=settings))
    application = build_application(settings)
    return serving.run(application, settings, webhook=args.webhook, worker=runtime_of(application.bot_data).worker)


def cmd_demo(args: argparse.Namespace, settings: Settings) -> int:
    from bot.demo import play

    return play.main(args.demo_args)


def cmd_db_upgrade(args: argparse.Namespace, settings: Settings) -> int:
    from bot.storage.migrate import upgrade

    async def go() -> None:
        engine = make_engine(settings.database.url)
        try:
            await upgrade(engine)
        finally:
            await engine.dispose()

    asyncio.run(go())
    print("database is up to date")
    rebuilt = run_with_database(settings, partial(ensure_tallies, settings=settings))
    if rebuilt:
        print(f"/status tallies built for {rebuilt} shift(s)")
    return 0


async def ensure_tallies(session: Any, *, settings: Settings) -> int:
    """Count /status tallies for shifts never counted, or counted under another staffing pattern."""
    from bot.services import tally

    rebuilt = await tally.ensure(session, staffing=settings.staffing)
    await session.commit()
    return len(rebuilt)


def cmd_import(args: argparse.Namespace, settings: Settings) -> int:
    from bot.services.roster import import_files

    missing = [str(path) for path in args.files if not path.exists()]
    if missing:
        print("siaga import: no such file: " + ", ".join(missing), file=sys.stderr)
        return 2

    async def work(session: Any) -> int:
        report = await import_files(session, paths=args.files, actor="cli", staffing=settings.staffing)
        print(report.format())
        return 0 if report.ok else 1

    return run_with_database(settings, work)


def cmd_invite(args: argparse.Namespace, settings: Settings) -> int:
    from bot.services.registration import deep_link, issue_codes

    async def work(session: Any) -> int:
        ttl = timedelta(hours=settings.registration.code_ttl_hours)
        invitations = await issue_codes(session, nrps=args.nrps, now=system_clock(), ttl=ttl)
        await session.commit()
        failed = 0
        for invitation in invitations:
            if invitation.code is None:
                failed += 1
                print(f"siaga invite: {invitation.nrp}: {invitation.error}", file=sys.stderr)
            else:
                link = deep_link(settings.telegram.bot_username, invitation.code)
                print(f"{invitation.nrp}\t{invitation.code}\t{link}")
        return 1 if failed else 0

    return run_with_database(settings, work)


def cmd_outbox(args: argparse.Namespace, settings: Settings) -> int:
    from bot.render.outbox import format_outbox_stats
    from bot.services import outbox

    async def work(session: Any) -> int:
        now = system_clock()
        stats = await outbox.stats(session)
        sent = await outbox.sent_since(session, since=now - timedelta(minutes=1))
        print(format_outbox_stats(stats, now=now, sent_last_minute=sent))
        print("429 answers and in-flight sends: each worker's /metrics (siaga_telegram_429_total)")
        return 0

    return run_with_database(settings, work)


def cmd_check(args: argparse.Namespace, settings: Settings) -> int:
    from bot.services.staffing import format_report, understaffed_report

    async def work(session: Any) -> int:
        report = await understaffed_report(
            session, staffing=settings.staffing, unit_code=args.unit, shift_code=args.shift
        )
        print(format_report(report))
        return 0

    return run_with_database(settings, work)


def cmd_export(args: argparse.Namespace, settings: Settings) -> int:
    from bot.services.reports import ExportError, export_shift

    async def work(session: Any) -> int:
        try:
            files = await export_shift(session, shift_code=args.shift, now=system_clock(), settings=settings)
        except ExportError as error:
            print(f"siaga export: {error}", file=sys.stderr)
            return 1
        geojson = args.file.with_suffix(".geojson")
        args.file.write_bytes(files.workbook)
        geojson.write_bytes(files.geojson)
        print(f"wrote {args.file} and {geojson} (shift {files.shift.code}, {files.shift.name})")
        return 0

    return run_with_database(settings, work)


def cmd_demo_data(args: argparse.Namespace, settings: Settings) -> int:
    from bot.demo import demodata

    province = demodata.generate(tps=args.tps, seed=args.seed)
    if args.out.suffix == ".xlsx":
        demodata.write_xlsx(province, args.out)
    else:
        demodata.write_csv(province, args.out)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
