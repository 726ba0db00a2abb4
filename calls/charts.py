"""Server-rendered SVG charts: this module computes the geometry, templates/calls/partials/chart_*.html
draw it. No JavaScript chart library; the SVG scales with its viewBox from a phone to a desktop."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Bar:
    x: float
    y: float
    width: float
    height: float
    label: str
    value: float
    show_label: bool = True


@dataclass(frozen=True)
class Tick:
    y: float
    label: str


@dataclass(frozen=True)
class ColumnChart:
    width: int
    height: int
    plot_left: int
    plot_bottom: float
    bars: list[Bar]
    ticks: list[Tick]
    title: str


def nice_max(value: float) -> float:
    """Round up to 1, 2, 2.5 or 5 × 10^n so the axis reads well."""
    if value <= 0:
        return 1
    exponent = math.floor(math.log10(value))
    for step in (1, 2, 2.5, 5, 10):
        candidate = step * 10**exponent
        if candidate >= value:
            return candidate
    return 10 ** (exponent + 1)


def column_chart(
    points: Sequence[tuple[str, float]], *, title: str, width: int = 720, height: int = 220
) -> ColumnChart:
    """Vertical bars, one per point (e.g. calls per day), with a 0..max axis of four ticks."""
    left, top, bottom_margin = 40, 10, 28
    plot_h = height - top - bottom_margin
    plot_w = width - left - 8
    # At least 0..4 so a quiet week gets whole-number ticks rather than 0.25 steps.
    top_value = max(nice_max(max((v for _, v in points), default=0)), 4)
    n = max(len(points), 1)
    slot = plot_w / n
    gap = min(4.0, slot * 0.2)
    # Label at most ~12 bars so dates don't overlap on a 90-day range.
    every = max(1, math.ceil(n / 12))
    bars = []
    for i, (label, value) in enumerate(points):
        h = plot_h * (value / top_value)
        bars.append(
            Bar(
                x=round(left + i * slot + gap / 2, 2),
                y=round(top + plot_h - h, 2),
                width=round(max(slot - gap, 1), 2),
                height=round(h, 2),
                label=label,
                value=value,
                show_label=(i % every == 0),
            )
        )
    ticks = [Tick(y=round(top + plot_h - plot_h * k / 4, 2), label=_fmt(top_value * k / 4)) for k in range(5)]
    return ColumnChart(
        width=width, height=height, plot_left=left, plot_bottom=top + plot_h, bars=bars, ticks=ticks, title=title
    )


@dataclass(frozen=True)
class HBar:
    y: float
    width: float
    label: str
    value: float
    share: float


@dataclass(frozen=True)
class BarList:
    width: int
    height: int
    label_width: int
    bar_height: int
    bars: list[HBar]
    title: str


def bar_list(items: Sequence[tuple[str, float]], *, title: str, width: int = 460) -> BarList:
    """Horizontal bars with their label on the left and count + share on the right (intents, outcomes)."""
    label_w, value_w, row_h, bar_h = 150, 90, 30, 18
    total = sum(v for _, v in items) or 1
    top_value = max((v for _, v in items), default=0) or 1
    plot_w = width - label_w - value_w
    bars = [
        HBar(
            y=i * row_h + (row_h - bar_h) / 2,
            width=round(max(plot_w * v / top_value, 0 if v == 0 else 2), 2),
            label=label,
            value=v,
            share=round(100 * v / total, 1),
        )
        for i, (label, v) in enumerate(items)
    ]
    return BarList(
        width=width, height=max(len(items), 1) * row_h, label_width=label_w, bar_height=bar_h, bars=bars, title=title
    )


def _fmt(value: float) -> str:
    return f"{value:.1f}".rstrip("0").rstrip(".") if value % 1 else f"{int(value)}"
