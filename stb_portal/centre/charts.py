"""Bar charts for the console's statistics page, rendered on the server as inline SVG:
no JavaScript, every label escaped (place and kind names come from the database), each
value written out as text as well as drawn, colours told apart by colour-blind readers
(Okabe & Ito), and a viewBox so the chart scales with the page."""

from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Sequence

from markupsafe import Markup, escape

# Okabe & Ito's palette, yellow late: it is the faintest on white.
PALETTE: tuple[str, ...] = (
    "#0072B2",  # blue
    "#E69F00",  # orange
    "#009E73",  # bluish green
    "#CC79A7",  # reddish purple
    "#56B4E9",  # sky blue
    "#D55E00",  # vermillion
    "#F0E442",  # yellow
    "#000000",  # black
)
WIDTH = 800
_FONT = "system-ui, 'Noto Sans CJK SC', 'Microsoft YaHei', 'PingFang SC', sans-serif"
_SIZE = 13  # labels; values are a little smaller
_VALUE_SIZE = 11
_INK = "#222222"
_MUTED = "#555555"
_GRID = "#dddddd"
_LEGEND_Y = 40
# Stacked (horizontal) bars: one row per category, so long village names fit.
_LABEL_W = 170
_ROW_H = 26
_BAR_H = 18
# Grouped (vertical) bars.
_PLOT_H = 200
_HEADROOM = 48  # above the plot, for value labels standing on the tallest bars
# Characters XML 1.0 cannot carry even escaped; validation keeps them out of names.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def stacked_bars(
    title: str,
    categories: list[str],
    series: list[tuple[str, list[float]]],
    empty_text: str,
) -> Markup:
    """One horizontal bar per category, one coloured segment per series, the total at
    the end of each bar (e.g. alarms per village, stacked by kind)."""
    _check_lengths(categories, series)
    if not categories or not series:
        return _empty(title, empty_text)
    totals = [sum(max(values[i], 0.0) for _, values in series) for i in range(len(categories))]
    step, top = _axis(max(totals), integer=True)
    parts, legend_bottom = _legend([name for name, _ in series])
    y0 = legend_bottom + 12
    x0, x1 = _LABEL_W + 8.0, WIDTH - 56.0
    scale = (x1 - x0) / top
    bottom = y0 + _ROW_H * len(categories)
    for tick in _ticks(step, top):
        x = x0 + tick * scale
        parts.append(_line(x, y0, x, bottom, _GRID))
        parts.append(_label(x, bottom + 16, _number(tick), anchor="middle", fill=_MUTED))
    for row, category in enumerate(categories):
        y = y0 + row * _ROW_H
        mid = y + _ROW_H / 2
        parts.append(_label(_LABEL_W, mid, category, anchor="end", max_width=_LABEL_W - 8))
        x = x0
        for index, (name, values) in enumerate(series):
            value = values[row]
            if value <= 0:
                continue
            width = value * scale
            tip = f"{category} · {name}: {_number(value)}"
            parts.append(_bar(x, y + (_ROW_H - _BAR_H) / 2, width, _BAR_H, index, tip))
            if _text_width(_number(value), _VALUE_SIZE) + 6 <= width:
                parts.append(_value(x + width / 2, mid, value, index, anchor="middle"))
            x += width
        parts.append(_value(x + 5, mid, totals[row], None, anchor="start"))
    parts.append(_line(x0, y0, x0, bottom, _INK))
    return _svg(title, bottom + 28, parts, _describe(categories, series, ""))


def grouped_bars(
    title: str,
    categories: list[str],
    series: list[tuple[str, list[float | None]]],
    unit: str,
    empty_text: str,
) -> Markup:
    """Side-by-side vertical bars per category, one per series, each labelled with its
    value (e.g. p50 and p95 seconds per month); None draws no bar."""
    _check_lengths(categories, series)
    present = [v for _, values in series for v in values if v is not None]
    if not categories or not present:
        return _empty(title, empty_text)
    step, top = _axis(max(max(present), 0.0), integer=False)
    parts, legend_bottom = _legend([name for name, _ in series])
    y0 = legend_bottom + _HEADROOM
    y1 = y0 + _PLOT_H
    x0, x1 = 64.0, WIDTH - 16.0
    scale = _PLOT_H / top
    for tick in _ticks(step, top):
        y = y1 - tick * scale
        parts.append(_line(x0, y, x1, y, _GRID))
        parts.append(_label(x0 - 6, y, _number(tick), anchor="end", fill=_MUTED))
    parts.append(_label(x0 - 6, y0 - 18, unit, anchor="end", fill=_MUTED))
    group_w = (x1 - x0) / len(categories)
    bar_w = group_w * 0.8 / len(series)
    tilt = any(_text_width(c, _SIZE) > group_w - 4 for c in categories)
    # All values upright as soon as one would overlap its neighbour: one reading direction.
    upright = any(_text_width(_number(v), _VALUE_SIZE) + 4 > bar_w for v in present)
    for column, category in enumerate(categories):
        left = x0 + column * group_w + group_w * 0.1
        for index, (name, values) in enumerate(series):
            value = values[column]
            if value is None:
                continue
            height = max(value, 0.0) * scale
            x = left + index * bar_w
            tip = f"{category} · {name}: {_number(value)} {unit}".rstrip()
            parts.append(_bar(x + 1, y1 - height, max(bar_w - 2, 1.0), height, index, tip))
            parts.append(_standing_value(x + bar_w / 2, y1 - height - 4, value, upright))
        parts.append(_category(x0 + (column + 0.5) * group_w, y1 + 16, category, tilt, group_w))
    parts.append(_line(x0, y1, x1, y1, _INK))
    return _svg(title, y1 + (80 if tilt else 32), parts, _describe(categories, series, unit))


def share_bars(
    title: str,
    categories: list[str],
    values: list[float],
    out_of: float,
    empty_text: str,
) -> Markup:
    """One horizontal bar per category, labelled with its value and its share of
    `out_of` (e.g. votes per option among the households that voted: where several
    choices are allowed the shares add up to more than 100 %)."""
    _check_lengths(categories, [(title, values)])
    if not categories or out_of <= 0:
        return _empty(title, empty_text)
    step, top = _axis(max(max(values), 0.0), integer=True)
    y0 = 44.0
    x0, x1 = _LABEL_W + 8.0, WIDTH - 120.0
    scale = (x1 - x0) / top
    bottom = y0 + _ROW_H * len(categories)
    parts: list[str] = []
    for tick in _ticks(step, top):
        x = x0 + tick * scale
        parts.append(_line(x, y0, x, bottom, _GRID))
        parts.append(_label(x, bottom + 16, _number(tick), anchor="middle", fill=_MUTED))
    shown = [f"{_number(v)} ({_number(100 * max(v, 0.0) / out_of)} %)" for v in values]
    for row, (category, value) in enumerate(zip(categories, values, strict=True)):
        y = y0 + row * _ROW_H
        mid = y + _ROW_H / 2
        parts.append(_label(_LABEL_W, mid, category, anchor="end", max_width=_LABEL_W - 8))
        width = max(value, 0.0) * scale
        if width > 0:
            tip = f"{category}: {shown[row]}"
            parts.append(_bar(x0, y + (_ROW_H - _BAR_H) / 2, width, _BAR_H, 0, tip))
        parts.append(
            f'<text class="value" x="{_n(x0 + width + 5)}" y="{_n(mid)}" dy="0.35em" '
            f'text-anchor="start" font-size="{_VALUE_SIZE}">{_esc(shown[row])}</text>'
        )
    parts.append(_line(x0, y0, x0, bottom, _INK))
    desc = "; ".join(f"{c}: {s}" for c, s in zip(categories, shown, strict=True))
    return _svg(title, bottom + 28, parts, desc)


# --- pieces ------------------------------------------------------------------------


def _describe(
    categories: Sequence[str], series: Sequence[tuple[str, Sequence[float | None]]], unit: str
) -> str:
    """The data in words, for screen readers: `category: series value, …; …`."""
    rows = (
        f"{category}: "
        + ", ".join(f"{name} {_number_or_dash(values[i])}" for name, values in series)
        for i, category in enumerate(categories)
    )
    text = "; ".join(rows)
    return f"{text} ({unit})" if unit else text


def _svg(title: str, height: float, parts: list[str], desc: str) -> Markup:
    name = _esc(title)
    head = (
        f'<svg xmlns="http://www.w3.org/2000/svg" class="xl-chart" role="img" '
        f'aria-label="{name}" viewBox="0 0 {WIDTH} {_n(height)}" width="100%" '
        f'font-family="{_FONT}" font-size="{_SIZE}" fill="{_INK}">'
        f"<title>{name}</title><desc>{_esc(desc)}</desc>"
        f'<text x="{WIDTH / 2:g}" y="22" text-anchor="middle" font-size="16" '
        # A question of 200 characters would run off the chart: shortened on screen,
        # whole in the title above (tooltip and screen readers).
        f'font-weight="bold">{_esc(_fit(title, WIDTH - 32, 16))}</text>'
    )
    return Markup(head + "".join(parts) + "</svg>")  # noqa: S704 — every part escaped


def _empty(title: str, text: str) -> Markup:
    message = _label(WIDTH / 2, 80, text, anchor="middle", fill=_MUTED, cls="empty")
    return _svg(title, 120, [message], text)


def _legend(names: Sequence[str]) -> tuple[list[str], float]:
    """Swatch and name per series, wrapped to the width; returns the parts and the
    y below them."""
    parts: list[str] = []
    x, y = 16.0, float(_LEGEND_Y)
    for index, name in enumerate(names):
        width = 18 + min(_text_width(name, _SIZE), 200) + 20
        if x + width > WIDTH - 16 and x > 16:
            x, y = 16.0, y + 20
        parts.append(
            f'<rect class="key" x="{_n(x)}" y="{_n(y)}" width="12" height="12" '
            f'fill="{_colour(index)}" stroke="{_INK}" stroke-width="0.5"/>'
        )
        parts.append(_label(x + 18, y + 6, name, anchor="start", max_width=200))
        x += width
    return parts, y + 14


def _bar(x: float, y: float, width: float, height: float, index: int, tip: str) -> str:
    return (
        f'<rect class="bar" x="{_n(x)}" y="{_n(y)}" width="{_n(width)}" '
        f'height="{_n(height)}" fill="{_colour(index)}"><title>{_esc(tip)}</title></rect>'
    )


def _value(x: float, y: float, value: float, on: int | None, *, anchor: str) -> str:
    """A value written on its segment (in the colour that reads on it) or beside it."""
    fill = _INK if on is None else _ink_on(_colour(on))
    return (
        f'<text class="value" x="{_n(x)}" y="{_n(y)}" dy="0.35em" text-anchor="{anchor}" '
        f'font-size="{_VALUE_SIZE}" fill="{fill}">{_number(value)}</text>'
    )


def _standing_value(x: float, y: float, value: float, upright: bool) -> str:
    """A value on top of its bar, turned upright when bars are narrower than values."""
    text = _number(value)
    if not upright:
        return (
            f'<text class="value" x="{_n(x)}" y="{_n(y)}" text-anchor="middle" '
            f'font-size="{_VALUE_SIZE}">{text}</text>'
        )
    return (
        f'<text class="value" x="{_n(x)}" y="{_n(y)}" dy="0.35em" text-anchor="start" '
        f'font-size="{_VALUE_SIZE}" transform="rotate(-90 {_n(x)} {_n(y)})">{text}</text>'
    )


def _category(x: float, y: float, text: str, tilt: bool, room: float) -> str:
    if not tilt:
        return _label(x, y, text, anchor="middle", max_width=room)
    return _label(x, y, text, anchor="end", max_width=90, rotate=-35)


def _label(
    x: float,
    y: float,
    text: str,
    *,
    anchor: str,
    max_width: float | None = None,
    fill: str | None = None,
    cls: str = "label",
    rotate: float | None = None,
) -> str:
    """Text from the caller or the database, escaped; cut with an ellipsis when it would
    not fit, the whole text kept as its tooltip."""
    shown = text if max_width is None else _fit(text, max_width, _SIZE)
    tip = f"<title>{_esc(text)}</title>" if shown != text else ""
    colour = f' fill="{fill}"' if fill else ""
    turn = f' transform="rotate({rotate:g} {_n(x)} {_n(y)})"' if rotate is not None else ""
    return (
        f'<text class="{cls}" x="{_n(x)}" y="{_n(y)}" dy="0.35em" '
        f'text-anchor="{anchor}"{colour}{turn}>{tip}{_esc(shown)}</text>'
    )


def _line(x1: float, y1: float, x2: float, y2: float, colour: str) -> str:
    return (
        f'<line x1="{_n(x1)}" y1="{_n(y1)}" x2="{_n(x2)}" y2="{_n(y2)}" '
        f'stroke="{colour}" stroke-width="1"/>'
    )


# --- numbers and text --------------------------------------------------------------


def _check_lengths(
    categories: Sequence[str], series: Sequence[tuple[str, Sequence[object]]]
) -> None:
    for name, values in series:
        if len(values) != len(categories):
            raise ValueError(
                f"series {name!r} has {len(values)} values for {len(categories)} categories"
            )


def _axis(maximum: float, *, integer: bool) -> tuple[float, float]:
    """A round step (1, 2, 2.5 or 5 × 10ⁿ) giving about four gridlines, and the axis
    end: the first step at or above `maximum`."""
    if maximum <= 0:
        return 1.0, 1.0
    raw = maximum / 4
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)
    if integer:
        step = max(1.0, math.ceil(step))
    return step, step * math.ceil(maximum / step - 1e-9)


def _ticks(step: float, top: float) -> list[float]:
    return [step * i for i in range(round(top / step) + 1)]


def _number(value: float) -> str:
    """Whole numbers as such, small fractions with one decimal."""
    decimals = 0 if abs(value) >= 100 or float(value).is_integer() else 1
    text = f"{value:.{decimals}f}"
    return "0" if text in ("-0", "-0.0") else text


def _number_or_dash(value: float | None) -> str:
    return "–" if value is None else _number(value)


def _n(value: float) -> str:
    """A coordinate, short."""
    return f"{value:.1f}".removesuffix(".0")


def _text_width(text: str, size: float) -> float:
    """Rough rendered width: CJK characters are square, others about half as wide."""
    return sum(size if unicodedata.east_asian_width(c) in "WF" else size * 0.6 for c in text)


def _fit(text: str, width: float, size: float) -> str:
    if _text_width(text, size) <= width:
        return text
    kept = ""
    for char in text:
        if _text_width(kept + char + "…", size) > width:
            break
        kept += char
    return kept + "…"


def _esc(text: str) -> str:
    return str(escape(_NOT_XML.sub("", text)))


def _colour(index: int) -> str:
    return PALETTE[index % len(PALETTE)]


def _ink_on(colour: str) -> str:
    """Black or white text, whichever contrasts more with the fill (WCAG luminance)."""
    channels = [int(colour[i : i + 2], 16) / 255 for i in (1, 3, 5)]
    linear = [c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
    luminance = 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]
    return "#000000" if (luminance + 0.05) / 0.05 >= 1.05 / (luminance + 0.05) else "#ffffff"
