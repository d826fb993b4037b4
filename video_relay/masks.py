"""Privacy masks burnt into the relayed picture: rectangles as ffmpeg filters (a black
drawbox, or crop + boxblur + overlay), polygons as an RGBA PNG overlaid on the video."""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from xueliang.cameras import Mask

# Box blur radius in output pixels, applied twice (boxblur's default power). Twice the
# radius of the measured `boxblur=10` in docs: a blurred region exists to make faces and
# number plates unreadable, and boxblur's cost does not grow with the radius.
BLUR_RADIUS = 20


def pixel_box(mask: Mask, width: int, height: int) -> tuple[int, int, int, int]:
    """`(x, y, w, h)` in pixels of a rectangle mask on a `width`x`height` picture, on even
    pixels (yuv420p chroma) and rounded outwards, so a mask never shrinks."""
    rect = mask.rect
    if rect is None:
        raise ValueError("a polygon mask has no pixel box; draw it with render_mask_png")
    fx, fy, fw, fh = rect
    x0, y0 = _even_floor(fx * width), _even_floor(fy * height)
    x1 = min(width, max(x0 + 2, _even_ceil((fx + fw) * width)))
    y1 = min(height, max(y0 + 2, _even_ceil((fy + fh) * height)))
    return x0, y0, x1 - x0, y1 - y0


def _even_floor(value: float) -> int:
    # round() first: 0.1 * 1280 is 128.00000000000003, which must not become 130.
    return math.floor(round(value, 6) / 2) * 2


def _even_ceil(value: float) -> int:
    return math.ceil(round(value, 6) / 2) * 2


def burn_in(video: Any, masks: Sequence[Mask], width: int, height: int) -> Any:
    """Add the rectangle masks to an ffmpeg-python stream of exactly `width`x`height`;
    polygons are left to `overlay_png`."""
    for mask in masks:
        if mask.rect is None:
            continue
        x, y, w, h = pixel_box(mask, width, height)
        if mask.fill == "black":
            video = video.filter("drawbox", x=x, y=y, w=w, h=h, color="black", t="fill")
            continue
        # boxblur refuses a radius above half the (chroma) plane's smaller side.
        luma = min(BLUR_RADIUS, min(w, h) // 2)
        chroma = min(BLUR_RADIUS, min(w, h) // 4)
        halves = video.split()
        region = (
            halves[1].crop(x, y, w, h).filter("boxblur", luma_radius=luma, chroma_radius=chroma)
        )
        video = halves[0].overlay(region, x=x, y=y)
    return video


def has_polygons(masks: Sequence[Mask]) -> bool:
    return any(mask.points is not None for mask in masks)


def render_mask_png(masks: Sequence[Mask], width: int, height: int, path: Path) -> None:
    """Write the polygon masks as a `width`x`height` RGBA PNG: opaque black inside each
    polygon, transparent elsewhere. Rectangles are left out (drawbox costs less)."""
    if path.suffix != ".png":
        raise ValueError(f"{path}: the mask image must be a .png")
    image = np.zeros((height, width, 4), np.uint8)
    for mask in masks:
        if mask.points is None:
            continue
        corners = np.array(
            [(round(x * width), round(y * height)) for x, y in mask.points], np.int32
        )
        # One call per polygon: overlapping polygons add up instead of cancelling out.
        cv2.fillPoly(image, [corners], (0, 0, 0, 255))
    # A running ffmpeg may open the file at any moment: never let it see half a PNG.
    partial = path.with_name(f".{path.stem}.partial.png")
    if not cv2.imwrite(str(partial), image):
        raise OSError(f"could not write {partial}")
    os.replace(partial, path)
