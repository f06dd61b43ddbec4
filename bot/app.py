"""The aiohttp application: health, readiness, metrics, and the channel routes."""
from __future__ import annotations

import logging

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import text

from bot import metrics
from bot.settings import Settings
from bot.wiring import Components, build, resolve_database_url
from storage import migrate

log = logging.getLogger(__name__)

COMPONENTS = web.AppKey("components", Components)


async def healthz(_request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    comps = request.app[COMPONENTS]
    try:
        async with comps.db.admin.connect() as conn:
            await conn.execute(text("SELECT 1"))
        if not await migrate.at_head(comps.db.admin):
            return web.json_response({"status": "migrating"}, status=503)
    except Exception as exc:
        return web.json_response({"status": "database unavailable", "error": type(exc).__name__}, status=503)
    return web.json_response({"status": "ready"})


async def metrics_view(_request: web.Request) -> web.Response:
    resp = web.Response(body=generate_latest(metrics.REGISTRY))
    resp.content_type = CONTENT_TYPE_LATEST.split(";")[0]
    return resp


def create_app(settings: Settings, components: Components | None = None, run_migrations: bool = True) -> web.Application:
    from bot.observability import install_log_context, observe

    install_log_context()
    app = web.Application(client_max_size=2 * 1024 * 1024, middlewares=[observe])
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", metrics_view)

    async def on_startup(app: web.Application) -> None:
        comps = components
        if comps is None:
            url = resolve_database_url(settings)
            if run_migrations:
                await migrate.upgrade(url)
            comps = await build(settings, url)
        app[COMPONENTS] = comps
        from bot.channels import mount_channels

        await mount_channels(app, comps)
        await comps.runtime.start()
        log.info("flowpilot ready", extra={"host": settings.host, "port": settings.port})

    async def on_cleanup(app: web.Application) -> None:
        comps = app.get(COMPONENTS)
        if comps is not None:
            await comps.close()

    app.on_startup.append(on_startup)
    app.on_cleanup.append(on_cleanup)
    return app
