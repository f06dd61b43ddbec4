"""prepare_images: what the model receives from chat attachments."""
from __future__ import annotations

import base64
import io
import logging

import pytest
from PIL import Image

from adapters.anthropic.images import MAX_SIDE_PX, prepare_images


def encode(image: Image.Image, fmt: str, **save_args: object) -> bytes:
    out = io.BytesIO()
    image.save(out, format=fmt, **save_args)
    return out.getvalue()


def decode(data_b64: str) -> Image.Image:
    image = Image.open(io.BytesIO(base64.b64decode(data_b64)))
    image.load()
    return image


def test_large_png_is_downscaled_to_1568_on_the_longest_side_and_sent_as_jpeg() -> None:
    screenshot = encode(Image.new("RGB", (3136, 1000), (200, 30, 30)), "PNG")

    [prepared] = prepare_images([(screenshot, "image/png")])

    image = decode(prepared.data_b64)
    assert prepared.media_type == "image/jpeg"
    assert image.format == "JPEG"
    assert image.size == (MAX_SIDE_PX, 500)


def test_portrait_photo_is_limited_by_its_height() -> None:
    photo = encode(Image.new("RGB", (1200, 4000), (0, 90, 0)), "JPEG")

    [prepared] = prepare_images([(photo, "image/jpeg")])

    assert max(decode(prepared.data_b64).size) == MAX_SIDE_PX


def test_small_png_is_converted_to_jpeg_without_resizing() -> None:
    [prepared] = prepare_images([(encode(Image.new("RGB", (640, 480)), "PNG"), "image/png")])

    image = decode(prepared.data_b64)
    assert (image.format, image.size) == ("JPEG", (640, 480))


def test_small_jpeg_is_sent_unchanged() -> None:
    original = encode(Image.new("RGB", (800, 600), (40, 40, 40)), "JPEG", quality=95)

    [prepared] = prepare_images([(original, "image/jpeg")])

    assert base64.b64decode(prepared.data_b64) == original


def test_transparent_areas_become_white_not_black() -> None:
    transparent = encode(Image.new("RGBA", (100, 100), (0, 0, 0, 0)), "PNG")

    [prepared] = prepare_images([(transparent, "image/png")])

    red, green, blue = decode(prepared.data_b64).getpixel((50, 50))
    assert min(red, green, blue) > 245


def test_at_most_three_images_are_kept_in_order() -> None:
    shades = [encode(Image.new("RGB", (64, 64), (shade, shade, shade)), "PNG") for shade in (0, 60, 120, 180, 240)]

    prepared = prepare_images([(data, "image/png") for data in shades])

    assert len(prepared) == 3
    assert [round(decode(p.data_b64).getpixel((32, 32))[0] / 60) for p in prepared] == [0, 1, 2]


def test_undecodable_images_are_skipped_with_a_log_line(caplog: pytest.LogCaptureFixture) -> None:
    good = encode(Image.new("RGB", (64, 64)), "PNG")
    truncated = good[: len(good) // 2]

    with caplog.at_level(logging.WARNING, logger="adapters.anthropic.images"):
        prepared = prepare_images([(b"not an image", "image/png"), (truncated, "image/png"), (good, "image/png"),
                                   (good, "image/gif"), (good, "image/png"), (good, "image/png")])

    assert len(prepared) == 3
    skipped = [r for r in caplog.records if getattr(r, "event", None) == "image.skipped"]
    assert len(skipped) == 2


def test_no_images_gives_an_empty_list() -> None:
    assert prepare_images([]) == []
