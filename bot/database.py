"""Which database to use: DATABASE_URL, or the embedded Postgres (kept light: the CLI imports it)."""
from __future__ import annotations

from bot.settings import Settings


def resolve_database_url(settings: Settings) -> str:
    configured = settings.database_url.get_secret_value().strip() if settings.database_url else ""
    if configured:
        return configured
    from storage.embedded import ensure_embedded

    return ensure_embedded(settings.data_dir)
