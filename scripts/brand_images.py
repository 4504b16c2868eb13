"""Draw the brand images Home Assistant shows for this integration.

Home Assistant (2026.3 and later) serves a custom integration's icon and logo
from ``custom_components/<domain>/brand/``; the HACS action accepts
``brand/icon.png`` there in place of an entry in the home-assistant/brands
repository. This script draws every file from code, so the artwork can be
changed and regenerated instead of edited by hand:

    .venv/bin/python scripts/brand_images.py

The images follow the brands repository rules: PNG with a transparent
background, trimmed to the artwork; icons square at 256x256 (512x512 for
``@2x``); logos landscape with the short side 128 px (256 px for ``@2x``).
``dark_logo*.png`` carry light lettering for dark themes; the icon works on
both backgrounds, so there is no ``dark_icon``.

The mark is original: a car in side view with a charging bolt, and a shield
with a keyhole for the token keeping. It is not the Tesla logo.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from dataclasses import dataclass
import math
from pathlib import Path
import sys

from PIL import Image, ImageDraw, ImageFont

DEFAULT_OUT = (
    Path(__file__).resolve().parent.parent
    / "custom_components"
    / "tesla_scout_worker"
    / "brand"
)

type RGB = tuple[int, int, int]
type RGBA = tuple[int, int, int, int]
type Point = tuple[float, float]

# Every shape is drawn this many times larger, then scaled down: anti-aliasing.
SUPERSAMPLE = 4
# The icon is designed on a 256 x 256 grid; coordinates below are in that grid.
GRID = 256.0
# Where the car and the shield sit on the tile, in grid units.
CAR_SHIFT: Point = (0, 12)
SHIELD_SHIFT: Point = (4, 8)

FONT_CANDIDATES = {
    "bold": (
        "/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf",
        "/usr/share/fonts/TTF/DejaVuSans-Bold.ttf",
        "/Library/Fonts/DejaVuSans-Bold.ttf",
        "DejaVuSans-Bold.ttf",
    ),
    "regular": (
        "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
        "/usr/share/fonts/TTF/DejaVuSans.ttf",
        "/Library/Fonts/DejaVuSans.ttf",
        "DejaVuSans.ttf",
    ),
}

TILE_TOP: RGB = (0x33, 0x37, 0x3F)
TILE_BOTTOM: RGB = (0x14, 0x16, 0x1A)
CAR_TOP: RGB = (0xF0, 0x3A, 0x3E)
CAR_BOTTOM: RGB = (0xB3, 0x16, 0x22)
WINDOW: RGBA = (0x1B, 0x1E, 0x23, 255)
TYRE: RGBA = (0x0E, 0x0F, 0x12, 255)
RIM: RGBA = (0x9A, 0xA0, 0xA8, 255)
BOLT: RGBA = (0xFF, 0xD4, 0x3B, 255)
SHIELD: RGBA = (0xF4, 0xF5, 0xF7, 255)
KEYHOLE: RGBA = (0xB3, 0x16, 0x22, 255)


@dataclass(frozen=True)
class Palette:
    """Lettering colours of a logo."""

    title: RGBA
    subtitle: RGBA


LIGHT = Palette(title=(0x1F, 0x23, 0x28, 255), subtitle=(0x5F, 0x66, 0x6E, 255))
DARK = Palette(title=(0xF1, 0xF3, 0xF4, 255), subtitle=(0xA8, 0xAF, 0xB7, 255))

TITLE = "Scout & Worker"
SUBTITLE = "for Tesla vehicles"


def _bezier(p0: Point, p1: Point, p2: Point, p3: Point, steps: int = 24) -> list[Point]:
    """Return points along a cubic Bézier curve, without its start point."""
    points = []
    for i in range(1, steps + 1):
        t = i / steps
        u = 1 - t
        points.append(
            (
                u**3 * p0[0]
                + 3 * u * u * t * p1[0]
                + 3 * u * t * t * p2[0]
                + t**3 * p3[0],
                u**3 * p0[1]
                + 3 * u * u * t * p1[1]
                + 3 * u * t * t * p2[1]
                + t**3 * p3[1],
            )
        )
    return points


def _scaled(
    points: Sequence[Point], scale: float, shift: Point = (0, 0)
) -> list[Point]:
    """Map grid coordinates, moved by ``shift`` grid units, to canvas pixels."""
    return [((x + shift[0]) * scale, (y + shift[1]) * scale) for x, y in points]


def _gradient(size: tuple[int, int], top: RGB, bottom: RGB) -> Image.Image:
    """Return an opaque vertical gradient."""
    width, height = size
    column = Image.new("RGB", (1, height))
    for y in range(height):
        t = y / max(height - 1, 1)
        column.putpixel(
            (0, y),
            tuple(round(a + (b - a) * t) for a, b in zip(top, bottom, strict=True)),
        )
    return column.resize((width, height)).convert("RGBA")


def _fill(canvas: Image.Image, mask: Image.Image, paint: Image.Image | RGBA) -> None:
    """Paint ``paint`` (a colour or an image) onto ``canvas`` through ``mask``."""
    layer = Image.new("RGBA", canvas.size, paint) if isinstance(paint, tuple) else paint
    canvas.paste(layer, (0, 0), mask)


def _mask(size: tuple[int, int]) -> tuple[Image.Image, ImageDraw.ImageDraw]:
    """Return an empty drawing mask."""
    mask = Image.new("L", size, 0)
    return mask, ImageDraw.Draw(mask)


def _disc(
    draw: ImageDraw.ImageDraw, cx: float, cy: float, radius: float, fill: int | RGBA
) -> None:
    """Draw a filled circle."""
    draw.ellipse((cx - radius, cy - radius, cx + radius, cy + radius), fill=fill)


def _car_body() -> list[Point]:
    """Outline of the car, facing right, in grid coordinates."""
    outline: list[Point] = [(30, 186)]
    outline += _bezier((30, 186), (22, 170), (24, 150), (38, 143))  # tail
    outline += _bezier((38, 143), (60, 132), (74, 124), (92, 108))  # rear glass
    outline += _bezier((92, 108), (112, 92), (150, 90), (172, 104))  # roof
    outline += _bezier((172, 104), (186, 114), (196, 124), (206, 130))  # windscreen
    outline += _bezier((206, 130), (224, 134), (236, 140), (236, 158))  # bonnet, nose
    outline += _bezier((236, 158), (236, 172), (234, 182), (226, 186))  # bumper
    return outline


def _windows() -> list[list[Point]]:
    """Side windows, split by the door pillar, in grid coordinates."""
    rear: list[Point] = [(72, 130)]
    rear += _bezier((72, 130), (82, 122), (92, 114), (104, 106))
    rear += [(128, 101), (128, 130)]
    front: list[Point] = [(138, 101), (154, 101)]
    front += _bezier((154, 101), (168, 104), (180, 114), (190, 128))
    front += [(190, 130), (138, 130)]
    return [rear, front]


def _bolt() -> list[Point]:
    """Charging bolt across the doors, in grid coordinates."""
    return [
        (146, 132),
        (112, 166),
        (132, 166),
        (120, 192),
        (160, 154),
        (139, 154),
        (152, 132),
    ]


def _shield() -> list[Point]:
    """Shield badge at the top left, in grid coordinates."""
    outline: list[Point] = [(22, 30)]
    outline += _bezier((22, 30), (40, 28), (52, 22), (62, 12))
    outline += _bezier((62, 12), (72, 22), (84, 28), (102, 30))
    outline += [(102, 62)]
    outline += _bezier((102, 62), (102, 86), (84, 102), (62, 112))
    outline += _bezier((62, 112), (40, 102), (22, 86), (22, 62))
    return outline


def draw_mark(size: int) -> Image.Image:
    """Draw the square mark, ``size`` pixels wide, on a transparent background."""
    px = size * SUPERSAMPLE
    s = px / GRID
    canvas = Image.new("RGBA", (px, px), (0, 0, 0, 0))

    tile, draw = _mask(canvas.size)
    draw.rounded_rectangle((0, 0, px - 1, px - 1), radius=round(56 * s), fill=255)
    _fill(canvas, tile, _gradient(canvas.size, TILE_TOP, TILE_BOTTOM))

    wheels = _scaled([(76, 186), (190, 186)], s, CAR_SHIFT)
    body, draw = _mask(canvas.size)
    draw.polygon(_scaled(_car_body(), s, CAR_SHIFT), fill=255)
    for cx, cy in wheels:  # wheel arches
        _disc(draw, cx, cy, 29 * s, 0)
    _fill(canvas, body, _gradient(canvas.size, CAR_TOP, CAR_BOTTOM))

    glass, draw = _mask(canvas.size)
    for window in _windows():
        draw.polygon(_scaled(window, s, CAR_SHIFT), fill=255)
    _fill(canvas, glass, WINDOW)

    draw = ImageDraw.Draw(canvas)
    for cx, cy in wheels:
        for radius, colour in ((24, TYRE), (12, RIM), (5, TYRE)):
            _disc(draw, cx, cy, radius * s, colour)

    # Bolt and shield get a dark outline so they stand off what they overlap.
    edge = (*TILE_BOTTOM, 255)
    bolt = _scaled(_bolt(), s, CAR_SHIFT)
    draw.line([*bolt, bolt[0]], fill=edge, width=round(9 * s), joint="curve")
    draw.polygon(bolt, fill=BOLT)

    shield = _scaled(_shield(), s, SHIELD_SHIFT)
    draw.line([*shield, shield[0]], fill=edge, width=round(10 * s), joint="curve")
    draw.polygon(shield, fill=SHIELD)
    hole_x, hole_y = _scaled([(62, 52)], s, SHIELD_SHIFT)[0]
    _disc(draw, hole_x, hole_y, 11 * s, KEYHOLE)
    draw.polygon(
        _scaled([(57, 52), (67, 52), (71, 86), (53, 86)], s, SHIELD_SHIFT), fill=KEYHOLE
    )

    return canvas.resize((size, size), Image.Resampling.LANCZOS)


def _font(kind: str, size: int, override: Path | None) -> ImageFont.FreeTypeFont:
    """Load the lettering font, or stop with a clear message."""
    candidates = [str(override)] if override else list(FONT_CANDIDATES[kind])
    for candidate in candidates:
        try:
            return ImageFont.truetype(candidate, size)
        except OSError:
            continue
    raise SystemExit(
        f"no {kind} font found (tried {', '.join(candidates)}); "
        "install DejaVu Sans or pass --font/--font-bold"
    )


def draw_logo(
    height: int, palette: Palette, bold: Path | None, regular: Path | None
) -> Image.Image:
    """Draw the mark with the name beside it, ``height`` pixels tall, trimmed."""
    px = height * SUPERSAMPLE
    title_font = _font("bold", round(px * 0.36), bold)
    subtitle_font = _font("regular", round(px * 0.2), regular)
    gap = round(px * 0.16)

    measure = ImageDraw.Draw(Image.new("L", (1, 1)))
    title_box = measure.textbbox((0, 0), TITLE, font=title_font, anchor="ls")
    subtitle_box = measure.textbbox((0, 0), SUBTITLE, font=subtitle_font, anchor="ls")
    text_width = math.ceil(max(title_box[2], subtitle_box[2]))

    canvas = Image.new("RGBA", (px + gap + text_width + px // 8, px), (0, 0, 0, 0))
    canvas.paste(draw_mark(px), (0, 0))
    # Title baseline just above the middle, subtitle below it: the pair centres
    # on the mark.
    draw = ImageDraw.Draw(canvas)
    draw.text(
        (px + gap, round(px * 0.52)),
        TITLE,
        font=title_font,
        fill=palette.title,
        anchor="ls",
    )
    draw.text(
        (px + gap, round(px * 0.8)),
        SUBTITLE,
        font=subtitle_font,
        fill=palette.subtitle,
        anchor="ls",
    )

    bbox = canvas.getchannel("A").getbbox()
    if bbox is None:
        raise SystemExit("logo came out empty")
    canvas = canvas.crop(bbox)
    width = round(canvas.width * height / canvas.height)
    return canvas.resize((width, height), Image.Resampling.LANCZOS)


def check(name: str, image: Image.Image) -> list[str]:
    """Return the brands-repository rules ``image`` breaks, as messages."""
    problems = []
    hidpi = "@2x" in name
    width, height = image.size
    if name.removeprefix("dark_").startswith("icon"):
        want = 512 if hidpi else 256
        if image.size != (want, want):
            problems.append(f"{name}: {width}x{height}, must be {want}x{want}")
    else:
        low, high = (256, 512) if hidpi else (128, 256)
        if not low <= min(width, height) <= high:
            problems.append(
                f"{name}: shortest side {min(width, height)}, must be {low}-{high}"
            )
        if width < height:
            problems.append(
                f"{name}: {width}x{height} is portrait, landscape preferred"
            )
    alpha = image.getchannel("A")
    if alpha.getbbox() != (0, 0, width, height):
        problems.append(f"{name}: not trimmed, transparent margin {alpha.getbbox()}")
    if alpha.getextrema()[0] != 0:
        problems.append(f"{name}: no transparent background")
    return problems


def build(bold: Path | None, regular: Path | None) -> dict[str, Image.Image]:
    """Draw every brand image, keyed by file name."""
    return {
        "icon.png": draw_mark(256),
        "icon@2x.png": draw_mark(512),
        "logo.png": draw_logo(128, LIGHT, bold, regular),
        "logo@2x.png": draw_logo(256, LIGHT, bold, regular),
        "dark_logo.png": draw_logo(128, DARK, bold, regular),
        "dark_logo@2x.png": draw_logo(256, DARK, bold, regular),
    }


def main(argv: Sequence[str] | None = None) -> int:
    """Write the images and check them against the brands rules."""
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0] if __doc__ else None
    )
    parser.add_argument(
        "--out", type=Path, default=DEFAULT_OUT, help="output directory"
    )
    parser.add_argument("--font", type=Path, help="regular TrueType font for the logo")
    parser.add_argument(
        "--font-bold", type=Path, help="bold TrueType font for the logo"
    )
    args = parser.parse_args(argv)

    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    problems = []
    for name, image in build(args.font_bold, args.font).items():
        problems += check(name, image)
        image.save(out / name, optimize=True)
        print(f"{out / name}: {image.width}x{image.height}")
    for problem in problems:
        print(problem, file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
