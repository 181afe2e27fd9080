"""``asyncio.as_completed`` hands results over in the order children finish."""

from integration.helpers import children_of, succeeded
from integration.workflows import basics


def test_as_completed_yields_children_in_the_order_they_finish(flyte):
    # Gaps of 2.5 s between finishes dwarf the jitter of starting processes on a busy host.
    execution = succeeded(flyte.execute(basics.completion_order, {"delays": [5.0, 0.0, 2.5]}))

    assert execution.outputs["o0"] == ["after-0s", "after-2.5s", "after-5s"]
    assert len(children_of(flyte.remote, execution.id.name)) == 3
