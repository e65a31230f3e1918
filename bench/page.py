"""The report as one self-contained HTML page: inline SVG bars per hop, the day's timeline through Airflow.

No dependency and nothing fetched: the page is written next to latest.json and
opens from the file system. Every chart comes from :func:`bench.report.charts`, so
the page shows the same figures and ratios as the printed table; our bar is blue,
the peers' grey, COPY (the limit) dark. Text is escaped (``html.escape``): labels
carry process and table names.
"""

from __future__ import annotations

from html import escape
from typing import Any

from bench.report import charts, goals, memory_lines, ratios

WIDTH, LABEL_WIDTH, BAR_HEIGHT, GAP = 900, 300, 22, 8
COLOURS = {"ours": "#2f6fdf", "peer": "#9aa3ad", "copy": "#3b3f44"}
# Timeline colours: waiting in the queue, running, and a sensor's poke that found nothing yet.
QUEUED, RUNNING, RESCHEDULED = "#f2c14e", "#2f9e62", "#d9534f"


def _bar_colour(label: str, is_ours: bool) -> str:
    if is_ours:
        return COLOURS["ours"]
    return COLOURS["copy"] if label.startswith("COPY") else COLOURS["peer"]


def _number(value: float, unit: str) -> str:
    return f"{value:,.2f} {unit}" if unit == "s" else f"{value:,.0f} {unit}"


def bar_chart(chart: dict[str, Any]) -> str:
    """One hop: a horizontal bar per path, its value and its ratio to ours written beside it."""
    bars = chart["bars"]
    top = max((value for _, value, _ in bars), default=0) or 1
    ours = next((value for _, value, is_ours in bars if is_ours), None)
    height = len(bars) * (BAR_HEIGHT + GAP) + GAP
    span = WIDTH - LABEL_WIDTH - 230
    rows = []
    for index, (label, value, is_ours) in enumerate(bars):
        y = GAP + index * (BAR_HEIGHT + GAP)
        length = max(value / top * span, 1)
        note = f"  (ours / this: {ours / value:.2f})" if not is_ours and ours and value else ""
        shown = escape(_number(value, chart["unit"]) + note)
        rows.append(
            f'<text x="{LABEL_WIDTH - 8}" y="{y + 16}" text-anchor="end">{escape(label)}</text>'
            f'<rect x="{LABEL_WIDTH}" y="{y}" width="{length:.1f}" height="{BAR_HEIGHT}"'
            f' fill="{_bar_colour(label, is_ours)}"/>'
            f'<text x="{LABEL_WIDTH + length + 6:.1f}" y="{y + 16}">{shown}</text>'
        )
    better = "longer is better" if chart["higher_is_better"] else "shorter is better"
    return (
        f"<h2>{escape(chart['title'])} <small>({escape(chart['unit'])}, {better})</small></h2>"
        f'<svg width="{WIDTH}" height="{height}" role="img">{"".join(rows)}</svg>'
    )


def _tick_step(span: float) -> float:
    for step in (0.5, 1, 2, 5, 10, 30, 60, 120, 300):
        if span / step <= 12:
            return step
    return 600


def timeline_chart(result: dict[str, Any]) -> str:
    """The day through Airflow: each task instance queued -> started -> ended; a sensor's rescheduled pokes in red."""
    rows = result.get("airflow_timeline") or []
    if not rows:
        return "<h2>The day through Airflow</h2><p>Not run (<code>--no-airflow</code>).</p>"
    total = result["airflow_day_seconds"]
    span = WIDTH - LABEL_WIDTH - 20
    scale = span / max(total, 1)
    height = len(rows) * (BAR_HEIGHT + GAP) + GAP + 24
    axis_y = height - 18
    step = _tick_step(total)
    shapes = []
    for tick in (step * i for i in range(int(total / step) + 1)):
        x = LABEL_WIDTH + tick * scale
        shapes.append(
            f'<line x1="{x:.1f}" y1="0" x2="{x:.1f}" y2="{axis_y}" stroke="#e3e6ea"/>'
            f'<text x="{x:.1f}" y="{axis_y + 14}" text-anchor="middle">{tick:g} s</text>'
        )
    for index, row in enumerate(rows):
        y = GAP + index * (BAR_HEIGHT + GAP)
        label = f"{row['dag'].removeprefix('daily-')} / {row['task']}"
        shapes.append(f'<text x="{LABEL_WIDTH - 8}" y="{y + 16}" text-anchor="end">{escape(label)}</text>')
        queued, started, ended = row["queued"], row["started"], row["ended"]
        if queued is not None and started is not None:
            shapes.append(
                f'<rect x="{LABEL_WIDTH + queued * scale:.1f}" y="{y}" width="{max((started - queued) * scale, 1):.1f}"'
                f' height="{BAR_HEIGHT}" fill="{QUEUED}"/>'
            )
        if started is not None and ended is not None:
            shapes.append(
                f'<rect x="{LABEL_WIDTH + started * scale:.1f}" y="{y}" width="{max((ended - started) * scale, 1):.1f}"'
                f' height="{BAR_HEIGHT}" fill="{RUNNING}"/>'
            )
        for change in result.get("airflow_states", []):
            if (change["dag"], change["task"], change["state"]) == (row["dag"], row["task"], "up_for_reschedule"):
                x = LABEL_WIDTH + change["at"] * scale
                shapes.append(f'<rect x="{x:.1f}" y="{y}" width="3" height="{BAR_HEIGHT}" fill="{RESCHEDULED}"/>')
    end = LABEL_WIDTH + total * scale
    shapes.append(f'<line x1="{end:.1f}" y1="0" x2="{end:.1f}" y2="{axis_y}" stroke="#3b3f44" stroke-dasharray="4"/>')
    legend = (
        f'<p class="legend"><span style="background:{QUEUED}"></span>queued '
        f'<span style="background:{RUNNING}"></span>running '
        f'<span style="background:{RESCHEDULED}"></span>a sensor\'s poke found nothing yet (rescheduled) '
        f"&mdash; dashed: step 2's result files in place, {total:.2f} s after the trigger</p>"
    )
    return (
        f"<h2>The day through Airflow, trigger to result: {total:.2f} s</h2>{legend}"
        f'<svg width="{WIDTH}" height="{height}" role="img">{"".join(shapes)}</svg>'
    )


def memory_chart(result: dict[str, Any]) -> str:
    """Each job's largest process at every scale (flat is the goal)."""
    bars = [
        (f"{job} @ SCALE {entry['scale']} ({figure['largest_process']})", figure["peak_rss_mb"], False)
        for job in result["memory"][0]["jobs"]
        for entry in result["memory"]
        for figure in [entry["jobs"][job]]
    ]
    return bar_chart({"title": "Each job's largest process", "unit": "MB", "higher_is_better": False, "bars": bars})


STYLE = """
body { font: 14px system-ui, sans-serif; margin: 24px 32px; color: #1d2127; max-width: 960px; }
h1 { font-size: 22px; } h2 { font-size: 16px; margin: 28px 0 6px; } small { color: #5f6670; font-weight: normal; }
svg text { font: 12px system-ui, sans-serif; fill: #1d2127; }
ul { padding-left: 18px; } li { margin: 2px 0; } code { background: #f1f3f5; padding: 0 3px; }
.legend span { display: inline-block; width: 12px; height: 12px; margin: 0 4px 0 12px; vertical-align: -2px; }
"""


def page(result: dict[str, Any]) -> str:
    """The whole HTML document."""
    items = "".join(f"<li>{escape(line)}</li>" for line in goals(result))
    ratio_items = "".join(f"<li>{escape(line)}</li>" for line in ratios(result))
    memory_items = "".join(f"<li>{escape(line)}</li>" for line in memory_lines(result))
    body = "".join(bar_chart(chart) for chart in charts(result))
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        f"<title>Northwind daily ELT: benchmark {escape(result['taken_at'])}</title><style>{STYLE}</style></head><body>"
        f"<h1>Benchmark, SCALE={result['scale']}, {escape(result['taken_at'])}</h1>"
        f"<p>{escape(result['machine'])}. Ours in blue, the peers in grey, COPY (the limit) in black; "
        f"every figure from the same run (<code>make bench</code>, docs/performance.md).</p>"
        f"<h2>Goals</h2><ul>{items}</ul>{body}{timeline_chart(result)}{memory_chart(result)}"
        f"<ul>{memory_items}</ul><h2>Every ratio</h2><ul>{ratio_items}</ul></body></html>\n"
    )
