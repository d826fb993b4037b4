"""Privacy masks: rectangles and polygons, as stored, as typed on the command line, as
pixels on the relayed picture and as the PNG that hides polygons."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
from sqlalchemy import select

from tests.conftest import Cli
from video_relay.masks import pixel_box, render_mask_png
from xueliang import cameras
from xueliang.cameras import Mask, parse_mask
from xueliang.errors import InvalidInput
from xueliang.storage import Database
from xueliang.storage.tables import cameras as camera_rows

TRIANGLE = "poly:0.55,0.55;0.95,0.55;0.95,0.95"


def test_stored_rectangles_keep_their_form() -> None:
    """Rows written before polygons existed must still load, and new rectangles are
    stored exactly like them."""
    row = {"x": 0.1, "y": 0.2, "w": 0.3, "h": 0.4, "fill": "blur"}
    mask = Mask.model_validate(row)
    assert mask.rect == (0.1, 0.2, 0.3, 0.4) and mask.points is None
    assert mask.model_dump() == row
    assert mask.model_dump(mode="json") == row


def test_polygon_round_trip() -> None:
    mask = parse_mask(TRIANGLE)
    assert mask.points == ((0.55, 0.55), (0.95, 0.55), (0.95, 0.95))
    assert mask.rect is None and mask.fill == "black"
    stored = mask.model_dump(mode="json")
    assert stored == {"points": [[0.55, 0.55], [0.95, 0.55], [0.95, 0.95]], "fill": "black"}
    assert Mask.model_validate(stored) == mask


@pytest.mark.parametrize(
    ("spec", "reason"),
    [
        ("poly:0.1,0.1;0.2,0.2", "at least 3"),
        ("poly:" + ";".join(f"{i / 40},{(i % 2) / 2}" for i in range(33)), "at most 32"),
        ("poly:0.1,0.1;0.5,0.5;0.9,0.9", "no area"),
        ("poly:0.1,0.1;1.5,0.1;0.5,0.5", "less than or equal to 1"),
        ("poly:0.1,0.1;0.5,-0.1;0.5,0.5", "greater than or equal to 0"),
        ("poly:0.1,0.1;0.5,nan;0.5,0.5", r"points\.1\.1"),
        ("poly:0.1,0.1;0.5;0.5,0.5", "poly:x1,y1;x2,y2"),
        ("poly:0.1,0.1,0.2;0.5,0.5;0.5,0.9", "poly:x1,y1;x2,y2"),
        ("poly:a,b;c,d;e,f", "not a number"),
        ("poly:", "poly:x1,y1;x2,y2"),
    ],
)
def test_bad_polygons(spec: str, reason: str) -> None:
    with pytest.raises(InvalidInput, match=reason):
        parse_mask(spec)


def test_one_shape_per_mask() -> None:
    """A blurred polygon would need a far costlier filter graph: refuse it clearly."""
    with pytest.raises(ValueError, match="black only"):
        Mask(points=((0, 0), (1, 0), (1, 1)), fill="blur")
    with pytest.raises(ValueError, match="not both"):
        Mask(x=0, y=0, w=1, h=1, points=((0, 0), (1, 0), (1, 1)))
    with pytest.raises(ValueError, match="needs x, y, w and h"):
        Mask.model_validate({"x": 0, "y": 0, "w": 1})
    with pytest.raises(ValueError, match="needs x, y, w and h"):
        Mask()


@pytest.mark.parametrize(
    ("spec", "size", "box"),
    [
        ("0.1,0.1,0.2,0.3", (1280, 720), (128, 72, 256, 216)),  # 0.1 * 1280 is 128.00…03
        ("0,0,1,1", (1280, 720), (0, 0, 1280, 720)),
        ("0,0,1,1", (720, 576), (0, 0, 720, 576)),
        ("0.333,0.333,0.333,0.333", (1280, 720), (426, 238, 428, 242)),  # outwards
        ("0.999,0.999,0.001,0.001", (1280, 720), (1278, 718, 2, 2)),
        ("0,0,0.0001,0.0001", (720, 576), (0, 0, 2, 2)),
        ("0.5,0.25,0.5,0.5", (720, 576), (360, 144, 360, 288)),
    ],
)
def test_pixel_boxes_are_even_and_never_shrink(
    spec: str, size: tuple[int, int], box: tuple[int, int, int, int]
) -> None:
    """yuv420p draws on even pixels; rounding outwards keeps the hidden area hidden."""
    x, y, w, h = pixel_box(parse_mask(spec), *size)
    assert (x, y, w, h) == box
    assert all(v % 2 == 0 for v in box)
    assert x + w <= size[0] and y + h <= size[1]


def test_polygon_png(tmp_path: Path) -> None:
    """Opaque black inside the polygon, transparent elsewhere; rectangles are left to
    drawbox."""
    png = tmp_path / "mask.png"
    render_mask_png([parse_mask(TRIANGLE), parse_mask("0,0,0.5,0.5")], 1280, 720, png)
    image = cv2.imread(str(png), cv2.IMREAD_UNCHANGED)
    assert image is not None and image.shape == (720, 1280, 4)
    alpha = np.asarray(image)[:, :, 3]
    assert alpha[400, 1200] == 255  # inside the triangle: x 704..1216, above the diagonal
    assert alpha[700, 1200] == 0  # below it
    assert alpha[700, 750] == 0  # below the diagonal at the triangle's left end
    assert alpha[100, 100] == 0  # the rectangle is drawn by ffmpeg, not here
    assert not np.asarray(image)[:, :, :3].any()  # black wherever it is opaque
    covered = alpha.mean() / 255
    assert covered == pytest.approx(0.5 * 0.4 * 0.4, abs=0.005)
    assert list(tmp_path.iterdir()) == [png]  # written whole, via a temporary file


def test_polygon_png_must_be_png(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"\.png"):
        render_mask_png([parse_mask(TRIANGLE)], 1280, 720, tmp_path / "mask.jpg")


async def test_cameras_store_both_shapes(county: Database) -> None:
    """Rectangles are stored in their original form next to the new polygons."""
    masks = (parse_mask("0.1,0.1,0.2,0.3,blur"), parse_mask(TRIANGLE))
    async with county.transaction() as conn:
        await cameras.add(
            conn, id="gate", name="村口", village="qilong", url="testsrc://", masks=masks
        )
        assert (await cameras.get(conn, "gate")).masks == masks
        stored = (await conn.execute(select(camera_rows.c.masks))).scalar_one()
    assert stored[0] == {"x": 0.1, "y": 0.1, "w": 0.2, "h": 0.3, "fill": "blur"}
    assert stored[1] == {"points": [[0.55, 0.55], [0.95, 0.55], [0.95, 0.95]], "fill": "black"}


def test_camera_add_takes_polygons(cli: Cli) -> None:
    added = cli(
        "camera", "add", "--id", "yard", "--name", "院坝", "--village", "anxicun",
        "--url", "testsrc://", "--mask", TRIANGLE, "--mask", "0.1,0.1,0.2,0.2", "--json",
    )  # fmt: skip
    assert added.code == 0, added.err
    assert added.json["masks"] == [
        {"points": [[0.55, 0.55], [0.95, 0.55], [0.95, 0.95]], "fill": "black"},
        {"x": 0.1, "y": 0.1, "w": 0.2, "h": 0.2, "fill": "black"},
    ]
    blurred = cli("camera", "add", "--id", "yard2", "--name", "x", "--village", "anxicun",
                  "--url", "testsrc://", "--mask", TRIANGLE + ",blur")  # fmt: skip
    assert blurred.code == 1 and "black only" in blurred.err
