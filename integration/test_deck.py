"""The deck an eager run publishes, read from where pyflyte-execute wrote it."""

from __future__ import annotations

import re

from integration.workflows import policies


def test_an_eager_run_publishes_one_deck_with_its_summary(dev, flyte):
    backend = dev
    backend.server.fail_executions(1, task_name=policies.flaky.name)
    execution = flyte.execute(
        policies.mixed,
        {"x": 2},
        envs={
            "FLYTE_EAGER_RETRY_POLICY": "exponential",
            "FLYTE_EAGER_RETRY_INITIAL_INTERVAL": "0s",
        },
    )
    assert execution.outputs["o0"] == 2 + 20
    name = execution.id.name
    decks = list((backend.server.state_dir / "data").glob(f"*/*/{name}/*/*/deck.html"))
    assert len(decks) == 1, decks
    page = decks[0].read_text()
    assert page.count(f"Eager run {name}") == 1
    summary = dict(re.findall(r"<tr><td>([a-z ]+)</td><td>([^<]*)</td></tr>", page))
    assert summary["children"] == "3"
    assert summary["succeeded"] == "2"
    assert summary["failed"] == "1"
    assert summary["retried"] == "1"
    assert "refusing 2" in page
    assert "Timeline" in page
