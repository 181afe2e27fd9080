"""The deck of an eager run: a summary, a timeline and one row per child.

Rendering works on a :class:`RunSnapshot` copied out of the controller, so it never holds
the controller's lock, and it is linear in the number of children. Input and output values
are left out unless ``eager.deck.show_values`` is true: they can be large or secret.

The timeline is a plotly Gantt chart, one row per child: a grey bar while the child waited
to be launched (admission or a retry's backoff), then a bar coloured by how it ended. It
needs the ``deck`` extra (``pip install flytekitplugins-eagerqueue[deck]``, which brings
flytekitplugins-deck-standard's plotly). deck-standard's own ``GanttChartRenderer`` colours
each row differently and lists every row in its legend, which stops being readable past a
dozen children, so the chart is drawn with plotly express directly, coloured by phase. It
shows the first ``TIMELINE_LIMIT`` children; the table below it lists every child.
"""

from __future__ import annotations

import dataclasses
import html
import time
import typing


@dataclasses.dataclass(frozen=True)
class ChildView:
    """One child as the deck shows it."""

    entity: str
    kind: str
    execution: str
    url: str
    phase: str
    attempts: int
    reattached: bool
    queued_at: float
    launched_at: float
    finished_at: float
    error: str = ""
    inputs: str = ""
    outputs: str = ""

    @property
    def duration(self) -> typing.Optional[float]:
        if self.launched_at and self.finished_at:
            return max(0.0, self.finished_at - self.launched_at)
        return None


@dataclasses.dataclass(frozen=True)
class RunSnapshot:
    """What one eager run did, at one moment."""

    tag: str
    started_at: float
    children: list[ChildView]
    rpc_calls: dict[str, int]

    def summary(self) -> dict[str, typing.Any]:
        """Counts shown on top of the deck."""
        finished = [c for c in self.children if c.duration is not None]
        slowest = max(finished, key=lambda c: c.duration or 0.0, default=None)
        return {
            "children": len(self.children),
            "launched": sum(1 for c in self.children if c.launched_at),
            "succeeded": sum(1 for c in self.children if c.phase == "SUCCEEDED"),
            "failed": sum(1 for c in self.children if c.phase in _FAILED_PHASES),
            "retried": sum(1 for c in self.children if c.attempts > 1),
            "reattached": sum(1 for c in self.children if c.reattached),
            "rpcs": sum(self.rpc_calls.values()),
            "wall_time": time.time() - self.started_at,
            "slowest": slowest.execution if slowest else "",
        }


#: Children drawn on the timeline at most (a chart taller than this is no longer read);
#: the table always lists all of them.
TIMELINE_LIMIT = 200

_TIMELINE_ROW_PIXELS = 14
_PHASE_COLOURS = {
    "WAITING": "#b0b7c3",
    "SUCCEEDED": "#2e7d32",
    "FAILED": "#c62828",
    "TIMED_OUT": "#ad1457",
    "ABORTED": "#ef6c00",
    "RUNNING": "#1565c0",
}

_FAILED_PHASES = frozenset({"FAILED", "ABORTED", "TIMED_OUT"})

_STYLE = """
<style>
  .eq-summary td { padding: 2px 12px 2px 0; }
  .eq-children { border-collapse: collapse; font-family: sans-serif; font-size: 13px; }
  .eq-children th, .eq-children td { border-bottom: 1px solid #ddd; padding: 4px 8px; }
  .eq-children td.error { color: #a00; white-space: pre-wrap; max-width: 40em; }
  .eq-SUCCEEDED { color: #070; } .eq-FAILED, .eq-ABORTED, .eq-TIMED_OUT { color: #a00; }
</style>
"""


def render(snapshot: RunSnapshot, *, show_values: bool = False, timeline: bool = True) -> str:
    """The deck's HTML."""
    summary = snapshot.summary()
    rows = "".join(_summary_row(k, v) for k, v in summary.items())
    head = [
        "entity",
        "execution",
        "phase",
        "attempts",
        "queued",
        "started",
        "finished",
        "duration",
        "error",
    ]
    if show_values:
        head += ["inputs", "outputs"]
    header = "".join(f"<th>{name}</th>" for name in head)
    body = "".join(
        _child_row(child, snapshot.started_at, show_values) for child in snapshot.children
    )
    return (
        f"{_STYLE}<h2>Eager run {html.escape(snapshot.tag)}</h2>"
        f"<table class='eq-summary'>{rows}</table>"
        f"{_timeline(snapshot) if timeline else ''}"
        f"<h3>Children</h3><table class='eq-children'><tr>{header}</tr>{body}</table>"
    )


def _timeline(snapshot: RunSnapshot) -> str:
    started = [c for c in snapshot.children if c.launched_at][:TIMELINE_LIMIT]
    if not started:
        return ""
    try:
        import pandas as pd
        import plotly.express as px
    except ImportError:
        return "<p>Install the deck extra (plotly) to see a timeline of the children.</p>"
    now = time.time()
    bars = []
    for child in started:
        if child.launched_at - child.queued_at > 0.001:
            bars.append((child, "WAITING", child.queued_at, child.launched_at))
        phase = child.phase if child.finished_at else "RUNNING"
        bars.append((child, phase, child.launched_at, child.finished_at or now))
    frame = pd.DataFrame(
        {
            "child": [bar[0].execution for bar in bars],
            "entity": [bar[0].entity for bar in bars],
            "attempts": [bar[0].attempts for bar in bars],
            "phase": [bar[1] for bar in bars],
            "start": pd.to_datetime([bar[2] for bar in bars], unit="s"),
            "finish": pd.to_datetime([bar[3] for bar in bars], unit="s"),
        }
    )
    figure = px.timeline(
        frame,
        x_start="start",
        x_end="finish",
        y="child",
        color="phase",
        color_discrete_map=_PHASE_COLOURS,
        hover_data=["entity", "attempts"],
    )
    figure.update_yaxes(autorange="reversed", title="", tickfont={"size": 9})
    figure.update_layout(
        height=160 + _TIMELINE_ROW_PIXELS * len(started),
        margin={"l": 10, "r": 10, "t": 60, "b": 30},
        legend={"orientation": "h", "yanchor": "bottom", "y": 1.0, "x": 0, "title": ""},
    )
    note = ""
    total = sum(1 for c in snapshot.children if c.launched_at)
    if total > len(started):
        note = f"<p>Timeline of the first {len(started)} of {total} children.</p>"
    chart = figure.to_html(full_html=False, include_plotlyjs=True)
    return f"<h3>Timeline</h3>{note}{chart}"


def _summary_row(key: str, value: typing.Any) -> str:
    shown = f"{value:.2f}s" if key == "wall_time" else value
    return (
        f"<tr><td>{html.escape(key.replace('_', ' '))}</td><td>{html.escape(str(shown))}</td></tr>"
    )


def _offset(stamp: float, origin: float) -> str:
    return f"+{stamp - origin:.2f}s" if stamp else ""


def _child_row(child: ChildView, origin: float, show_values: bool) -> str:
    name = html.escape(child.execution)
    link = f"<a href='{html.escape(child.url)}' target='_blank'>{name}</a>" if child.url else name
    duration = f"{child.duration:.2f}s" if child.duration is not None else ""
    cells = [
        html.escape(child.entity),
        link + (" (re-attached)" if child.reattached else ""),
        f"<span class='eq-{html.escape(child.phase)}'>{html.escape(child.phase)}</span>",
        str(child.attempts),
        _offset(child.queued_at, origin),
        _offset(child.launched_at, origin),
        _offset(child.finished_at, origin),
        duration,
    ]
    row = "".join(f"<td>{cell}</td>" for cell in cells)
    row += f"<td class='error'>{html.escape(child.error)}</td>"
    if show_values:
        row += f"<td>{html.escape(child.inputs)}</td><td>{html.escape(child.outputs)}</td>"
    return f"<tr>{row}</tr>"
