"""One JPEG showing many cameras: snapshots letterboxed into a labelled grid.

Synchronous and CPU-bound (~ms per tile): callers run it in `asyncio.to_thread`."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import cast

import cv2
import numpy as np

from video_relay.snapshots import Frame, ascii_text, encode_jpeg, offline_frame

MAX_TILES = 64
# Beyond these a tile is not a camera snapshot but an attempt to exhaust memory.
_MAX_SOURCE_SIDE = 8192
_MAX_SOURCE_PIXELS = 40_000_000
_MAX_TILE_SIDE = 1920
_MAX_CANVAS_PIXELS = 40_000_000
# Start-of-frame markers carry the image size; C4, C8 and CC share the range but do not.
_SOF_MARKERS = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}
# libjpeg scales by 1/8, 1/4 or 1/2 while decoding, far cheaper than a resize after.
_REDUCED = (
    (8, cv2.IMREAD_REDUCED_COLOR_8),
    (4, cv2.IMREAD_REDUCED_COLOR_4),
    (2, cv2.IMREAD_REDUCED_COLOR_2),
    (1, cv2.IMREAD_COLOR),
)


def mosaic(
    tiles: Sequence[bytes | None],
    *,
    labels: Sequence[str] = (),
    tile_size: tuple[int, int] = (640, 360),
    columns: int | None = None,
    quality: int = 80,
) -> bytes:
    """JPEG grid of the first 64 `tiles` (None or undecodable: an offline tile), labelled."""
    tile_width, tile_height = tile_size
    if not (16 <= tile_width <= _MAX_TILE_SIDE and 16 <= tile_height <= _MAX_TILE_SIDE):
        raise ValueError(f"tile size {tile_width}x{tile_height} is out of range")
    if columns is not None and columns < 1:
        raise ValueError(f"columns must be positive, not {columns}")
    tiles = tiles[:MAX_TILES]
    count = max(1, len(tiles))
    columns = min(count, columns or math.ceil(math.sqrt(count)))
    rows = math.ceil(count / columns)
    if columns * tile_width * rows * tile_height > _MAX_CANVAS_PIXELS:
        raise ValueError(f"a {columns}x{rows} grid of {tile_width}x{tile_height} is too large")
    canvas = np.zeros((rows * tile_height, columns * tile_width, 3), dtype=np.uint8)
    for index, jpeg in enumerate(tiles or [None]):
        row, column = divmod(index, columns)
        cell = canvas[
            row * tile_height : (row + 1) * tile_height,
            column * tile_width : (column + 1) * tile_width,
        ]
        _fill(cell, None if jpeg is None else _decode(jpeg, tile_width, tile_height))
        if index < len(labels):
            _label(cell, labels[index])
    return encode_jpeg(canvas, quality=quality)


def _fill(cell: Frame, picture: Frame | None) -> None:
    """Letterbox `picture` (aspect kept, centred) into `cell`; None draws the offline tile."""
    cell_height, cell_width = cell.shape[:2]
    if picture is None:
        cell[:] = offline_frame(cell_width, cell_height)
        return
    height, width = picture.shape[:2]
    scale = min(cell_width / width, cell_height / height)
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    if size != (width, height):
        method = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
        picture = cast(Frame, cv2.resize(picture, size, interpolation=method))
    top, left = (cell_height - size[1]) // 2, (cell_width - size[0]) // 2
    cell[top : top + size[1], left : left + size[0]] = picture


def _decode(jpeg: bytes, tile_width: int, tile_height: int) -> Frame | None:
    """Decode a JPEG (nothing else), at the smallest DCT scale still covering the tile."""
    size = jpeg_size(jpeg)
    if size is None:
        return None
    width, height = size
    if max(width, height) > _MAX_SOURCE_SIDE or width * height > _MAX_SOURCE_PIXELS:
        return None
    fit = min(tile_width / width, tile_height / height)
    flags = next(flags for factor, flags in _REDUCED if factor * fit <= 1)
    try:
        picture = cv2.imdecode(np.frombuffer(jpeg, dtype=np.uint8), flags)
    except cv2.error:
        return None
    return None if picture is None else cast(Frame, np.asarray(picture))


def jpeg_size(data: bytes) -> tuple[int, int] | None:
    """(width, height) from a JPEG's frame header, or None when `data` is not a JPEG."""
    if not data.startswith(b"\xff\xd8"):
        return None
    at = 2
    while at + 4 <= len(data):
        if data[at] != 0xFF:
            return None
        marker = data[at + 1]
        if marker == 0xFF:  # fill byte
            at += 1
            continue
        if marker == 0xDA:  # a scan before any frame header
            return None
        if marker in _SOF_MARKERS:
            if at + 9 > len(data):
                return None
            height = int.from_bytes(data[at + 5 : at + 7], "big")
            width = int.from_bytes(data[at + 7 : at + 9], "big")
            return (width, height) if width and height else None
        at += 2 + int.from_bytes(data[at + 2 : at + 4], "big")
    return None


def _label(cell: Frame, text: str) -> None:
    """Camera id in white on a black box at the tile's top left, cut to the tile's width."""
    text = ascii_text(text)
    if not text.strip():
        return
    cell_height, cell_width = cell.shape[:2]
    font = cv2.FONT_HERSHEY_SIMPLEX
    scale = max(0.4, cell_height / 600)
    thickness = max(1, round(scale * 1.5))
    pad = max(2, round(cell_height / 90))
    (width, height), baseline = cv2.getTextSize(text, font, scale, thickness)
    while len(text) > 1 and width + 2 * pad > cell_width:
        text = text[:-1]
        (width, height), baseline = cv2.getTextSize(text, font, scale, thickness)
    box = (min(cell_width, width + 2 * pad) - 1, height + baseline + 2 * pad - 1)
    cv2.rectangle(cell, (0, 0), box, (0, 0, 0), thickness=cv2.FILLED)
    white = (255, 255, 255)
    cv2.putText(cell, text, (pad, pad + height), font, scale, white, thickness, cv2.LINE_AA)
