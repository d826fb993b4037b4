"""The statistics page's SVG charts: well-formed XML whatever the labels (village names
are typed by people), the values in text and not only in colour, and a readable
message instead of an empty frame when there is nothing to show."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest
from markupsafe import Markup

from stb_portal.centre.charts import PALETTE, grouped_bars, stacked_bars

SVG = "{http://www.w3.org/2000/svg}"
HOSTILE = "<script>alert(1)</script>"


def parse(chart: Markup) -> ET.Element:
    assert isinstance(chart, Markup)
    return ET.fromstring(str(chart))  # noqa: S314 — our own output, not untrusted XML


def bars(root: ET.Element) -> list[ET.Element]:
    return [r for r in root.iter(f"{SVG}rect") if r.get("class") == "bar"]


def visible(text: ET.Element) -> str:
    """What a <text> shows, without its tooltip <title>."""
    return (text.text or "") + "".join(child.tail or "" for child in text)


def texts(root: ET.Element) -> list[str]:
    return [visible(t) for t in root.iter(f"{SVG}text")]


def test_charts_are_accessible_scalable_svg() -> None:
    """Screen readers need a role and a name; a viewBox without a fixed size lets the
    chart fill whatever width the console gives it."""
    for chart in (
        stacked_bars("报警", ["骑龙社区"], [("panic", [2.0])], "无数据"),
        grouped_bars("响应", ["2024-01"], [("p50", [30.0])], "秒", "无数据"),
        stacked_bars("报警", [], [], "无数据"),
    ):
        root = parse(chart)
        assert root.tag == f"{SVG}svg"
        assert root.get("role") == "img" and root.get("aria-label") == root.findtext(f"{SVG}title")
        assert root.get("viewBox", "").startswith("0 0 800 ")
        assert root.get("height") is None
        assert root[0].tag == f"{SVG}title"


def test_hostile_labels_are_escaped() -> None:
    """A village called <script>… is shown as text, never run as markup."""
    chart = stacked_bars(
        f"title {HOSTILE} & co",
        [HOSTILE, "quote \" and ' apostrophe"],
        [(HOSTILE, [1.0, 2.0]), ("</svg><svg onload=alert(1)>", [3.0, 0.0])],
        HOSTILE,
    )
    grouped = grouped_bars(HOSTILE, [HOSTILE], [(HOSTILE, [5.0])], HOSTILE, HOSTILE)
    for markup in (chart, grouped):
        assert "<script" not in markup and "<svg onload" not in markup
        root = parse(markup)
        assert not [e for e in root.iter() if e.tag.endswith("script")]
    shown = texts(parse(chart))
    assert HOSTILE in shown
    assert f"title {HOSTILE} & co" in shown
    assert HOSTILE in texts(parse(grouped))
    assert "&lt;script&gt;" in chart


def test_empty_data_shows_the_callers_text() -> None:
    """The caller passes the message in the reader's language."""
    for chart in (
        stacked_bars("各村报警", [], [], "本期无报警"),
        grouped_bars("响应时间", [], [], "秒", "本期无报警"),
        grouped_bars(
            "响应时间", ["2024-01"], [("p50", [None]), ("p95", [None])], "秒", "本期无报警"
        ),
    ):
        root = parse(chart)
        assert "本期无报警" in texts(root)
        assert bars(root) == []


def test_none_draws_no_bar_and_values_are_written() -> None:
    """A month without a sample has no bar (not a zero bar); every drawn value is
    labelled, so nobody has to read values off colours or gridlines."""
    root = parse(
        grouped_bars(
            "确认用时",
            ["2024-01", "2024-02", "2024-03"],
            [("p50", [12.0, None, 0.0]), ("p95", [None, None, 95.5])],
            "秒",
            "无数据",
        )
    )
    drawn = bars(root)
    assert len(drawn) == 3
    tips = sorted(r.findtext(f"{SVG}title", "") for r in drawn)
    assert tips == ["2024-01 · p50: 12 秒", "2024-03 · p50: 0 秒", "2024-03 · p95: 95.5 秒"]
    values = [t for t in root.iter(f"{SVG}text") if t.get("class") == "value"]
    assert sorted(visible(v) for v in values) == ["0", "12", "95.5"]
    assert {r.get("fill") for r in drawn} == {PALETTE[0], PALETTE[1]}


def test_stacked_segments_match_the_data() -> None:
    """One segment per non-zero value, one colour per series, each bar's total at its
    end; a long name is shortened on screen but kept whole in its tooltip."""
    long_name = "安西村一个名字特别特别特别长的村子"
    root = parse(
        stacked_bars(
            "各村报警",
            ["骑龙社区", long_name, "未登记"],
            [("panic", [3.0, 0.0, 1.0]), ("fire", [1.0, 2.0, 0.0]), ("test", [0.0, 0.0, 0.0])],
            "无数据",
        )
    )
    drawn = bars(root)
    assert len(drawn) == 4
    assert [r.get("fill") for r in drawn] == [PALETTE[0], PALETTE[1], PALETTE[1], PALETTE[0]]
    keys = [r for r in root.iter(f"{SVG}rect") if r.get("class") == "key"]
    assert len(keys) == 3  # the legend names every series, even one without alarms
    shown = texts(root)
    assert {"4", "2", "1"} <= set(shown)  # totals per village
    assert "骑龙社区" in shown
    label = next(t for t in root.iter(f"{SVG}text") if t.findtext(f"{SVG}title") == long_name)
    assert visible(label).endswith("…") and long_name.startswith(visible(label)[:-1])
    widths = [float(r.get("width", "0")) for r in drawn]
    assert widths[0] == pytest.approx(3 * widths[1])  # panic 3 beside fire 1 in 骑龙社区


def test_series_must_fit_the_categories() -> None:
    with pytest.raises(ValueError, match="2 values for 3 categories"):
        stacked_bars("t", ["a", "b", "c"], [("s", [1.0, 2.0])], "none")
    with pytest.raises(ValueError, match="2 values for 1 categories"):
        grouped_bars("t", ["a"], [("s", [1.0, None])], "s", "none")
