"""Images attached to a thread reply: downloaded with the bot token, checked to really be images
(Slack answers a missing or wrong token with an HTML sign-in page and HTTP 200), then prepared
for the model (adapters/anthropic/images.py: at most 3, downscaled, JPEG, base64)."""
from __future__ import annotations

import asyncio
import logging
from typing import Any

import aiohttp

from adapters.anthropic.images import MAX_IMAGES, prepare_images

log = logging.getLogger(__name__)

MAX_IMAGE_BYTES = 20 * 1024 * 1024
DOWNLOAD_TIMEOUT_S = 20


def image_files(files: list[dict[str, Any]] | None) -> list[dict[str, Any]]:
    return [f for f in (files or []) if str(f.get("mimetype") or "").startswith("image/")
            and (f.get("url_private_download") or f.get("url_private"))][:MAX_IMAGES]


async def _download(session: aiohttp.ClientSession, file: dict[str, Any], token: str) -> tuple[bytes, str] | None:
    url = file.get("url_private_download") or file.get("url_private")
    timeout = aiohttp.ClientTimeout(total=DOWNLOAD_TIMEOUT_S)
    async with session.get(url, headers={"Authorization": f"Bearer {token}"}, timeout=timeout) as resp:
        if resp.status != 200 or not resp.content_type.startswith("image/"):
            log.warning("slack: attachment download refused",
                        extra={"file_id": file.get("id"), "status": resp.status, "content_type": resp.content_type})
            return None
        if resp.content_length is not None and resp.content_length > MAX_IMAGE_BYTES:
            log.warning("slack: attachment too large", extra={"file_id": file.get("id"), "bytes": resp.content_length})
            return None
        data = await resp.content.read(MAX_IMAGE_BYTES + 1)
        if len(data) > MAX_IMAGE_BYTES:
            return None
        return data, resp.content_type


async def download_images(session: aiohttp.ClientSession, files: list[dict[str, Any]] | None,
                          token: str | None) -> list[dict[str, str]]:
    """`images=[{"media_type", "data_b64"}]` for copilot.message/mention; [] when none could be read."""
    wanted = image_files(files)
    if not wanted or not token:
        return []
    raw: list[tuple[bytes, str]] = []
    for file in wanted:
        try:
            got = await _download(session, file, token)
        except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
            log.warning("slack: attachment download failed", extra={"file_id": file.get("id"), "error": repr(exc)})
            got = None
        if got is not None:
            raw.append(got)
    if not raw:
        return []
    prepared = await asyncio.to_thread(prepare_images, raw)
    return [{"media_type": img.media_type, "data_b64": img.data_b64} for img in prepared]
