"""The `flowpilot` command line."""
from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys

from bot import logs
from bot.settings import Settings

log = logging.getLogger("flowpilot")


def _settings() -> Settings:
    return Settings()


def cmd_serve(args: argparse.Namespace) -> int:
    from aiohttp import web

    from bot.app import create_app

    settings = _settings()
    host = args.host or settings.host
    port = args.port or settings.port
    settings = settings.model_copy(update={"host": host, "port": port})
    logs.configure(settings.log_level, settings.log_format)

    async def main() -> None:
        app = create_app(settings)
        runner = web.AppRunner(app, handle_signals=False, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, host, port)
        await site.start()
        log.info("listening", extra={"url": f"http://{host}:{port}"})
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await stop.wait()
        log.info("shutting down: finishing running work, releasing leases")
        await runner.cleanup()

    asyncio.run(main())
    return 0


def cmd_migrate(args: argparse.Namespace) -> int:
    from bot.database import resolve_database_url
    from storage import migrate

    settings = _settings()
    logs.configure(settings.log_level, "text")
    url = resolve_database_url(settings)
    if args.revision_down:
        asyncio.run(migrate.downgrade(url, args.revision_down))
        print(f"downgraded to {args.revision_down}")
    else:
        asyncio.run(migrate.upgrade(url, args.revision))
        print(f"upgraded to {args.revision}")
    return 0


def cmd_db_url(_args: argparse.Namespace) -> int:
    from bot.database import resolve_database_url
    from storage.db import normalise_url

    settings = _settings()
    logs.configure("WARNING", "text")
    print(normalise_url(resolve_database_url(settings)))
    return 0


def cmd_try(args: argparse.Namespace) -> int:
    from adapters.console.session import run_console

    settings = _settings()
    logs.configure(args.log_level or "WARNING", "text")
    try:
        return asyncio.run(run_console(settings, name=args.name))
    except KeyboardInterrupt:  # Ctrl-C is how people leave a terminal program: no traceback
        print(file=sys.stderr)
        return 130


def cmd_manifest(args: argparse.Namespace) -> int:
    from manifest import build

    try:
        if args.platform == "slack":
            if not args.url and not args.socket_mode:  # name the flags, not the library's parameter
                raise ValueError("pass --url with the bot's public base URL (e.g. --url https://bot.example.com), "
                                 "or --socket-mode when Slack connects over Socket Mode")
            print(build.render_slack_manifest(args.url, socket_mode=args.socket_mode), end="")
        else:
            out = build.build_teams_package(args.app_id, args.domain, args.out, version=args.version)
            print(f"wrote {out}")
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="flowpilot", description="FlowPilot Chat: the AI troubleshooting copilot")
    sub = p.add_subparsers(dest="command", required=True)
    s = sub.add_parser("serve", help="run the bot (HTTP server, workers, scheduler)")
    s.add_argument("--host")
    s.add_argument("--port", type=int)
    s.set_defaults(fn=cmd_serve)
    m = sub.add_parser("migrate", help="apply database migrations (Alembic upgrade head)")
    m.add_argument("--revision", default="head")
    m.add_argument("--down", dest="revision_down", metavar="REVISION", help="downgrade to REVISION (e.g. base)")
    m.set_defaults(fn=cmd_migrate)
    d = sub.add_parser("db-url", help="print the database URL in use (starts the embedded one if needed)")
    d.set_defaults(fn=cmd_db_url)
    t = sub.add_parser("try", help="run a session in this terminal (console channel)")
    t.add_argument("--name", default=None, help="who you are in the console (default: your login name)")
    t.add_argument("--log-level", default=None)
    t.set_defaults(fn=cmd_try)
    mf = sub.add_parser("manifest", help="print the Slack manifest or build the Teams app package")
    msub = mf.add_subparsers(dest="platform", required=True)
    ms = msub.add_parser("slack")
    ms.add_argument("--url", help="public base URL, e.g. https://flowpilot.example.com")
    ms.add_argument("--socket-mode", action="store_true")
    ms.set_defaults(fn=cmd_manifest)
    mt = msub.add_parser("teams")
    mt.add_argument("--app-id", required=True)
    mt.add_argument("--domain", required=True)
    mt.add_argument("--out", default="flowpilot-teams.zip")
    mt.add_argument("--version", default="1.0.0")
    mt.set_defaults(fn=cmd_manifest)
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    return args.fn(args)


if __name__ == "__main__":
    sys.exit(main())
