"""Server-rendered SVG charts: no scripts, no external resources, every label escaped.

Why server-side: the page must work with a strict Content-Security-Policy and no JavaScript, and the data
is small (bounded series), so a polyline and a few rectangles are all a chart needs.
"""

from __future__ import annotations

import datetime

from appliance.markup import escape
from appliance.stats import Chart

WIDTH, HEIGHT, MARGIN = 640, 240, 40
COLOURS = ("#c0392b", "#2471a3", "#229954", "#b9770e", "#7d3c98", "#566573")


def _time_label(t: float) -> str:
    return datetime.datetime.fromtimestamp(t, datetime.UTC).strftime("%m-%d %H:%M")


def cumulative_chart(chart: Chart, title: str) -> str:
    """Each endpoint's total as a step curve over fixed time buckets: flat where nothing happened, rising
    within the bucket where connections came (a straight line between sampled points drew ramps instead)."""
    head = (
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
        f'aria-label="{escape(title)}"><title>{escape(title)}</title>'
        f'<rect width="{WIDTH}" height="{HEIGHT}" fill="#fff" stroke="#ccc"/>'
    )
    if not any(chart.series.values()):
        return head + f'<text x="{WIDTH // 2}" y="{HEIGHT // 2}" text-anchor="middle">no connections yet</text></svg>'
    t0, t1 = chart.start, chart.end
    top = max(rows[-1][2] for rows in chart.series.values() if rows)
    span = (t1 - t0) or 1.0
    plot_w, plot_h = WIDTH - 2 * MARGIN, HEIGHT - 2 * MARGIN

    def xy(t: float, n: int) -> str:
        return f"{MARGIN + (t - t0) / span * plot_w:.1f},{HEIGHT - MARGIN - n / top * plot_h:.1f}"

    parts = [head]
    parts.append(
        f'<text x="{MARGIN}" y="{MARGIN - 8}" font-size="11">{top}</text>'
        f'<text x="{MARGIN}" y="{HEIGHT - 8}" font-size="11">{escape(_time_label(t0))}</text>'
        f'<text x="{WIDTH // 2}" y="{HEIGHT - 8}" font-size="11" text-anchor="middle">'
        f"one step: {escape(_duration(chart.width))}</text>"
        f'<text x="{WIDTH - MARGIN}" y="{HEIGHT - 8}" font-size="11" text-anchor="end">'
        f"{escape(_time_label(t1))}</text>"
        f'<line x1="{MARGIN}" y1="{HEIGHT - MARGIN}" x2="{WIDTH - MARGIN}" y2="{HEIGHT - MARGIN}" stroke="#999"/>'
        f'<line x1="{MARGIN}" y1="{MARGIN}" x2="{MARGIN}" y2="{HEIGHT - MARGIN}" stroke="#999"/>'
    )
    for index, (name, rows) in enumerate(chart.series.items()):
        colour = COLOURS[index % len(COLOURS)]
        if rows:
            coords, before = [xy(t0, 0)], 0
            for start, end, total in rows:
                rise_from = xy(start, before)
                coords += [xy(end, total)] if rise_from == coords[-1] else [rise_from, xy(end, total)]
                before = total
            coords.append(xy(t1, before))
            parts.append(f'<polyline fill="none" stroke="{colour}" stroke-width="2" points="{" ".join(coords)}"/>')
        legend_y = MARGIN + 14 * index
        parts.append(
            f'<rect x="{WIDTH - MARGIN - 110}" y="{legend_y - 9}" width="10" height="10" fill="{colour}"/>'
            f'<text x="{WIDTH - MARGIN - 95}" y="{legend_y}" font-size="11">'
            f"{escape(name)} ({rows[-1][2] if rows else 0})</text>"
        )
    parts.append("</svg>")
    return "".join(parts)


def _duration(seconds: float) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{seconds / size:g} {unit}"
    return f"{seconds:g} s"


def bar_chart(values: dict[str, int], title: str) -> str:
    rows = list(values.items())
    bar_h = 18
    height = max(60, 2 * MARGIN // 2 + bar_h * len(rows) + 20)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {height}" role="img" '
        f'aria-label="{escape(title)}"><title>{escape(title)}</title>'
        f'<rect width="{WIDTH}" height="{height}" fill="#fff" stroke="#ccc"/>'
    ]
    if not rows:
        parts.append(f'<text x="{WIDTH // 2}" y="35" text-anchor="middle">no refused connections yet</text></svg>')
        return "".join(parts)
    top = max(n for _, n in rows) or 1
    label_w = 190
    for index, (label, n) in enumerate(rows):
        y = 15 + index * bar_h
        w = (WIDTH - label_w - 70) * n / top
        parts.append(
            f'<text x="{label_w - 6}" y="{y + 12}" font-size="12" text-anchor="end">{escape(label)}</text>'
            f'<rect x="{label_w}" y="{y}" width="{w:.1f}" height="{bar_h - 4}" fill="{COLOURS[0]}"/>'
            f'<text x="{label_w + w + 6:.1f}" y="{y + 12}" font-size="12">{n}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)
