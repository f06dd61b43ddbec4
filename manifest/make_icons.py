"""Draw the Teams app icons (manifest/teams/color.png and outline.png).

Run `python -m manifest.make_icons` after changing the artwork and commit the PNGs; the package builder
only copies the committed files, so building a package never depends on drawing code.

Teams wants a 192x192 full-colour icon and a 32x32 outline icon that is white on a transparent
background. Both show the same glyph: a paper plane (the "pilot") with a cut along its fold.
"""

from __future__ import annotations

import sys
from pathlib import Path

from PIL import Image, ImageDraw

TEAMS_DIR = Path(__file__).resolve().parent / "teams"
COLOR_SIZE = 192
OUTLINE_SIZE = 32
# Same value as accentColor in teams/manifest.json, so the tile and the accent match.
ACCENT_RGB = (0x1F, 0x4E, 0x8C)
WHITE = (255, 255, 255)
# Drawing at a multiple of the target size and downsampling gives smooth edges without Pillow's
# (non-antialiased) polygon rasteriser showing jaggies.
SUPERSAMPLE = 8

# Glyph in unit coordinates (0..1 on both axes, y down).
_WING = [(0.14, 0.50), (0.86, 0.18), (0.60, 0.84), (0.47, 0.60)]
_FOLD_CUT = [(0.47, 0.60), (0.86, 0.18), (0.50, 0.64)]
_TAIL = [(0.47, 0.60), (0.40, 0.80), (0.53, 0.67)]


def _scaled(points: list[tuple[float, float]], size: int, margin: float) -> list[tuple[float, float]]:
    span = size * (1 - 2 * margin)
    offset = size * margin
    return [(offset + x * span, offset + y * span) for x, y in points]


def _glyph_mask(size: int, margin: float) -> Image.Image:
    """An 8-bit coverage mask of the glyph at `size`x`size`, antialiased by supersampling."""
    big = size * SUPERSAMPLE
    mask = Image.new("L", (big, big), 0)
    draw = ImageDraw.Draw(mask)
    draw.polygon(_scaled(_WING, big, margin), fill=255)
    draw.polygon(_scaled(_TAIL, big, margin), fill=255)
    # The cut keeps the fold readable at 32 px, where a solid triangle looks like an arrowhead.
    draw.polygon(_scaled(_FOLD_CUT, big, margin), fill=0)
    return mask.resize((size, size), Image.Resampling.LANCZOS)


def draw_color_icon() -> Image.Image:
    """192x192 RGBA: a white glyph on a full-bleed accent tile (Teams rounds the corners itself)."""
    tile = Image.new("RGBA", (COLOR_SIZE, COLOR_SIZE), ACCENT_RGB + (255,))
    glyph = Image.new("RGBA", (COLOR_SIZE, COLOR_SIZE), WHITE + (255,))
    # Teams asks for the symbol to stay inside the central area of the colour icon.
    tile.paste(glyph, (0, 0), _glyph_mask(COLOR_SIZE, margin=0.2))
    return tile


def draw_outline_icon() -> Image.Image:
    """32x32 RGBA: every pixel is white; only alpha varies, as Teams requires for outline icons."""
    icon = Image.new("RGBA", (OUTLINE_SIZE, OUTLINE_SIZE), WHITE + (0,))
    icon.putalpha(_glyph_mask(OUTLINE_SIZE, margin=0.02))
    return icon


def write_icons(out_dir: Path = TEAMS_DIR) -> tuple[Path, Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    color_path = out_dir / "color.png"
    outline_path = out_dir / "outline.png"
    draw_color_icon().save(color_path, format="PNG", optimize=True)
    draw_outline_icon().save(outline_path, format="PNG", optimize=True)
    return color_path, outline_path


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    out_dir = Path(args[0]) if args else TEAMS_DIR
    for path in write_icons(out_dir):
        print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
