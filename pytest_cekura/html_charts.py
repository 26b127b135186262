"""The HTML report's charts, as inline SVG written here: success rate per test, a latency
distribution, and each test's success-rate trend over the recorded baselines.

No charting dependency: three small charts are a few dozen lines of SVG each, render in any
browser without script, and keep the report one self-contained file. Every text that reaches
the SVG (test ids, metric names) is escaped.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

#: Bar colours by pytest outcome (the card badges use the same).
COLOURS = {"passed": "#2e7d32", "failed": "#c62828", "error": "#ef6c00", "skipped": "#757575"}
_WIDTH = 600  # about the width a chart gets on the page: text stays near its own size
_HEIGHT = 200
_LEFT = 44  # room for the axis labels
_BOTTOM = 24


@dataclass(frozen=True)
class Bar:
    """One test in the success-rate chart."""

    label: str
    outcome: str
    rate: float | None  # None: no verdict (no runs to count)
    needed: float
    anchor: str  # the id of the test's card, so a bar is a link to it


def _text(x: float, y: float, text: str, anchor: str = "start", cls: str = "") -> str:
    extra = f' class="{cls}"' if cls else ""
    return f'<text x="{x:.1f}" y="{y:.1f}" text-anchor="{anchor}"{extra}>{escape(text)}</text>'


def _svg(body: list[str], label: str, cls: str, width: int = _WIDTH, height: int = _HEIGHT) -> str:
    return (
        f'<svg class="{cls}" viewBox="0 0 {width} {height}" width="100%" role="img" '
        f'aria-label="{escape(label)}" xmlns="http://www.w3.org/2000/svg">'
        + "".join(body)
        + "</svg>"
    )


def _y_axis(top: float, bottom: float, ticks: Sequence[tuple[float, str]]) -> list[str]:
    """Horizontal grid lines with their labels; ``ticks`` are (fraction of height, label)."""
    out = []
    for fraction, label in ticks:
        y = bottom - (bottom - top) * fraction
        out.append(f'<line class="grid" x1="{_LEFT}" y1="{y:.1f}" x2="{_WIDTH}" y2="{y:.1f}"/>')
        out.append(_text(_LEFT - 6, y + 4, label, "end", "axis"))
    return out


def success_chart(bars: Sequence[Bar]) -> str:
    """One bar per test (its success rate), coloured by outcome, with a tick at the rate the
    test needed; each bar links to its card and names the test on hover."""
    top, bottom = 10.0, float(_HEIGHT - _BOTTOM)
    body = _y_axis(top, bottom, [(0, "0%"), (0.5, "50%"), (1, "100%")])
    if not bars:
        body.append(_text(_WIDTH / 2, _HEIGHT / 2, "no Cekura test", "middle", "axis"))
        return _svg(body, "success rate per test: no test", "chart success")
    slot = (_WIDTH - _LEFT) / len(bars)
    gap = min(slot * 0.2, 6.0) if slot >= 4 else 0.0  # thin bars touch: no stripes
    bands: list[str] = []  # drawn over the bars, so a neighbour cannot hide one
    for index, bar in enumerate(bars):
        x = _LEFT + index * slot + gap / 2
        width = max(slot - gap, 0.5)
        rate = bar.rate if bar.rate is not None else 0.0
        height = max((bottom - top) * rate, 1.0)  # a 0 % bar stays visible
        colour = COLOURS.get(bar.outcome, COLOURS["skipped"])
        if bar.outcome in ("failed", "error"):
            # A band the full height, at least 3 units wide: one failure among 500 thin
            # bars (often at 0 %, no bar at all) still catches the eye.
            band = max(width, 3.0)
            # A wide band is a light tint (a solid one would read as a 100 % bar); a thin
            # one must be strong to be seen at all.
            tint = "band" if width > 3.0 else "band thin"
            bands.append(
                f'<rect class="{tint}" x="{x + width / 2 - band / 2:.2f}" y="{top}" '
                f'width="{band:.2f}" height="{bottom - top:.2f}" fill="{colour}"/>'
            )
        shown = "no runs" if bar.rate is None else f"{bar.rate:.0%}"
        title = f"{bar.label}: {bar.outcome}, {shown} (needs {bar.needed:.0%})"
        needed_y = bottom - (bottom - top) * bar.needed
        body.append(
            f'<a href="#{escape(bar.anchor)}"><title>{escape(title)}</title>'
            f'<rect class="bar" x="{x:.2f}" y="{bottom - height:.2f}" width="{width:.2f}" '
            f'height="{height:.2f}" fill="{colour}"/>'
            f'<line class="needed" x1="{x:.2f}" y1="{needed_y:.2f}" x2="{x + width:.2f}" '
            f'y2="{needed_y:.2f}"/></a>'
        )
    body += bands
    if len(bars) <= 8:  # room to name each test under its bar
        for index, bar in enumerate(bars):
            x = _LEFT + (index + 0.5) * slot
            body.append(_text(x, _HEIGHT - 8, _short(bar.label, int(slot / 7)), "middle", "axis"))
    else:
        body.append(_text(_WIDTH, _HEIGHT - 8, f"{len(bars)} tests, in order", "end", "axis"))
    return _svg(body, f"success rate of {len(bars)} test(s)", "chart success")


def _short(label: str, room: int) -> str:
    """The end of a test id (its name), cut to the room under its bar."""
    name = label.rsplit("::", 1)[-1]
    room = max(room, 4)
    return name if len(name) <= room else name[: room - 1] + "…"


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q`` quantile (0-1) with linear interpolation between ranks (numpy's default)."""
    ordered = sorted(values)
    if not ordered:
        raise ValueError("no values")
    rank = (len(ordered) - 1) * q
    low, high = math.floor(rank), math.ceil(rank)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def distribution_chart(values: Sequence[float], unit: str, what: str, bins: int = 20) -> str:
    """A histogram of ``values`` with the p50, p90 and p95 marked."""
    top, bottom = 22.0, float(_HEIGHT - _BOTTOM)
    if not values:
        body = [_text(_WIDTH / 2, _HEIGHT / 2, f"no {what} in these runs", "middle", "axis")]
        return _svg(body, f"{what}: no values", "chart latency")
    low, high = min(values), max(values)
    span = (high - low) or 1.0
    counts = [0] * bins
    for value in values:
        counts[min(int((value - low) / span * bins), bins - 1)] += 1
    tallest = max(counts)
    body = _y_axis(top, bottom, [(0, "0"), (1, str(tallest))])
    slot = (_WIDTH - _LEFT) / bins
    for index, count in enumerate(counts):
        if not count:
            continue
        height = (bottom - top) * count / tallest
        start = low + span * index / bins
        title = f"{count} run(s) from {start:.0f} to {start + span / bins:.0f} {unit}"
        body.append(
            f'<rect class="bin" x="{_LEFT + index * slot + 1:.2f}" y="{bottom - height:.2f}" '
            f'width="{slot - 2:.2f}" height="{height:.2f}"><title>{escape(title)}</title></rect>'
        )
    # Labels on three rows: percentiles close together would otherwise overlap.
    for row, q in enumerate((0.5, 0.9, 0.95)):
        value = percentile(values, q)
        x = _LEFT + (value - low) / span * (_WIDTH - _LEFT) if high > low else _LEFT + 1
        label = f"p{q * 100:.0f} {value:.0f} {unit}"
        body.append(f'<line class="mark" x1="{x:.1f}" y1="{top}" x2="{x:.1f}" y2="{bottom}"/>')
        side = "end" if x > _WIDTH * 0.8 else "start"
        shift = -4 if side == "end" else 4
        body.append(_text(x + shift, top - 8 + 16 * row, label, side, "mark"))
    body.append(_text(_LEFT, _HEIGHT - 6, f"{low:.0f} {unit}", "start", "axis"))
    body.append(_text(_WIDTH, _HEIGHT - 6, f"{high:.0f} {unit}", "end", "axis"))
    return _svg(body, f"{what} of {len(values)} run(s)", "chart latency")


def trend_line(points: Sequence[tuple[str, float]], width: int = 120, height: int = 28) -> str:
    """A sparkline of one test's success rate over the recorded sessions (oldest first);
    ``points`` are (when, rate). One point is drawn as a dot."""
    if not points:
        return ""
    pad = 3.0
    step = (width - 2 * pad) / max(len(points) - 1, 1)
    coords = [
        (pad + index * step, height - pad - (height - 2 * pad) * rate)
        for index, (_, rate) in enumerate(points)
    ]
    path = " ".join(f"{x:.1f},{y:.1f}" for x, y in coords)
    rates = ", ".join(f"{when}: {rate:.0%}" for when, rate in points)
    last_x, last_y = coords[-1]
    return (
        f'<svg class="trend" viewBox="0 0 {width} {height}" width="{width}" height="{height}" '
        f'role="img" aria-label="success rate over {len(points)} session(s)" '
        f'xmlns="http://www.w3.org/2000/svg"><title>{escape(rates)}</title>'
        f'<line class="grid" x1="0" y1="{pad}" x2="{width}" y2="{pad}"/>'
        f'<polyline points="{path}"/><circle cx="{last_x:.1f}" cy="{last_y:.1f}" r="2.5"/></svg>'
    )
