"""The deck: summary numbers, what it shows and what it keeps out."""

import asyncio
import re

import pytest

from flytekitplugins.eagerqueue import deck
from flytekitplugins.eagerqueue.errors import ChildFailedError

from .conftest import run
from .entities import double, greet
from .fakes import FakeAdmin


def summary_of(html):
    return dict(re.findall(r"<tr><td>([a-z ]+)</td><td>([^<]*)</td></tr>", html))


def test_the_summary_counts_a_retried_and_a_failed_child(make_controller):
    admin = FakeAdmin(hold=True)

    def script(execution):
        if execution.request.entity is greet:
            admin.fail(execution.name, "no greeting")
            return
        x = execution.request.inputs["x"].scalar.primitive.integer
        if x == 1 and "-a1-" not in execution.name:
            admin.fail(execution.name, "lost node", system=True)
        else:
            admin.finish(execution.name, x * 2)

    admin.launch_hook = script
    controller = make_controller(
        admin, retry_policy="exponential", retry_initial_interval=0, retry_max_interval=0
    )

    async def main():
        results = await asyncio.gather(
            controller.add(double, {"x": 0}),
            controller.add(double, {"x": 1}),
            controller.add(greet, {"name": "secret-value"}),
            return_exceptions=True,
        )
        return results

    results = run(main())
    assert results[:2] == [0, 2]
    assert isinstance(results[2], ChildFailedError)
    html = controller.render_html()
    summary = summary_of(html)
    assert summary["children"] == "3"
    assert summary["launched"] == "3"
    assert summary["succeeded"] == "2"
    assert summary["failed"] == "1"
    assert summary["retried"] == "1"
    assert "no greeting" in html
    assert "secret-value" not in html


def test_values_are_shown_only_when_asked_for(admin, make_controller):
    controller = make_controller(admin, deck_show_values=True)
    run(controller.add(greet, {"name": "<ada>"}))
    html = controller.render_html()
    assert "&lt;ada&gt;" in html
    assert "<ada>" not in html


def test_the_timeline_is_limited_and_says_so():
    views = [
        deck.ChildView(
            entity="t",
            kind="task",
            execution=f"e-{i}",
            url="",
            phase="SUCCEEDED",
            attempts=1,
            reattached=False,
            queued_at=1.0,
            launched_at=1.0 + i,
            finished_at=2.0 + i,
        )
        for i in range(deck.TIMELINE_LIMIT + 5)
    ]
    pytest.importorskip("plotly", reason="the deck extra (plotly) is not installed")
    html = deck.render(deck.RunSnapshot("run", 0.0, views, {}))
    assert f"Timeline of the first {deck.TIMELINE_LIMIT} of {deck.TIMELINE_LIMIT + 5}" in html
    assert html.count("<tr><td>t</td>") == deck.TIMELINE_LIMIT + 5
