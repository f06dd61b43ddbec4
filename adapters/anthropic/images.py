"""Turn chat attachments into model-ready images (DOMAIN §4.6).

At most 3 per message, longest side at most 1568 px (beyond that the API downscales anyway, so we would
pay upload and latency for nothing), always JPEG, base64. Pillow work is CPU-bound: call this from a
worker thread (`asyncio.to_thread`) when the images are large.
"""
from __future__ import annotations

import base64
import io
import logging
from typing import Sequence

from PIL import ExifTags, Image, ImageOps

from core.ports import ImageInput

log = logging.getLogger(__name__)

MAX_IMAGES = 3
MAX_SIDE_PX = 1568
JPEG_QUALITY = 85
_WHITE = (255, 255, 255)


def prepare_images(images: Sequence[tuple[bytes, str]]) -> list[ImageInput]:
    """`images` are (raw bytes, declared media type) in the order the user attached them.

    Images that cannot be decoded are skipped (with a log line) so one bad attachment does not sink the
    turn; the first 3 good ones are kept."""
    prepared: list[ImageInput] = []
    for index, (data, declared_type) in enumerate(images):
        if len(prepared) == MAX_IMAGES:
            log.info("images.capped", extra={"event": "images.capped", "kept": MAX_IMAGES,
                                             "dropped": len(images) - index})
            break
        try:
            prepared.append(ImageInput(media_type="image/jpeg", data_b64=_to_jpeg_b64(data)))
        except Exception as exc:  # Pillow raises many types (UnidentifiedImageError, OSError, bombs...)
            log.warning("image.skipped", extra={"event": "image.skipped", "declared_type": declared_type,
                                                "size_bytes": len(data), "error": type(exc).__name__})
    return prepared


def _to_jpeg_b64(data: bytes) -> str:
    with Image.open(io.BytesIO(data)) as image:
        if _can_pass_through(image):
            image.load()  # proves the bytes decode before we send them
            return base64.b64encode(data).decode("ascii")
        if image.format == "JPEG":
            # decode big JPEGs at a reduced scale straight away: much faster than decoding full size
            image.draft("RGB", (MAX_SIDE_PX, MAX_SIDE_PX))
        image.load()
        upright = ImageOps.exif_transpose(image)  # phone photos carry their rotation in EXIF
        rgb = _to_rgb(upright)
        rgb.thumbnail((MAX_SIDE_PX, MAX_SIDE_PX), Image.Resampling.LANCZOS)
        out = io.BytesIO()
        rgb.save(out, format="JPEG", quality=JPEG_QUALITY, optimize=True)
        return base64.b64encode(out.getvalue()).decode("ascii")


def _can_pass_through(image: Image.Image) -> bool:
    """A small, upright RGB JPEG is sent as is: re-encoding would only lose quality."""
    orientation = image.getexif().get(ExifTags.Base.Orientation, 1)
    return (image.format == "JPEG" and image.mode == "RGB" and max(image.size) <= MAX_SIDE_PX
            and orientation == 1)


def _to_rgb(image: Image.Image) -> Image.Image:
    """Flatten transparency onto white: a naive RGBA→RGB turns transparent screenshot areas black."""
    has_alpha = image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info)
    if not has_alpha:
        return image.convert("RGB")
    rgba = image.convert("RGBA")
    background = Image.new("RGB", rgba.size, _WHITE)
    background.paste(rgba, mask=rgba.getchannel("A"))
    return background
