"""A few cases run under both controllers: this package's and flytekit's stock one.

``FLYTE_EAGER_CONTROLLER`` reaches the eager task's process through the execution's
environment. The stock controller polls every 2 s and launches about one child a second,
so only small cases run under it.
"""

import pytest

from integration.helpers import INPUTS_LABEL, children_of, labels_of, phase_of, succeeded
from integration.workflows import basics


@pytest.fixture(params=["eagerqueue", "flytekit"])
def controller(request) -> str:
    return request.param


def run_under(flyte, controller, entity, inputs=None):
    return flyte.execute(entity, inputs, envs={"FLYTE_EAGER_CONTROLLER": controller})


def assert_launched_by(flyte, controller, execution):
    """Only this package's controller labels children with their inputs' digest."""
    children = children_of(flyte.remote, execution.id.name)
    assert children, f"{execution.id.name} has no children"
    labelled = [INPUTS_LABEL in labels_of(c) for c in children]
    assert labelled == [controller == "eagerqueue"] * len(children)
    return children


def test_a_small_fan_out_succeeds_under_either_controller(flyte, controller):
    execution = succeeded(run_under(flyte, controller, basics.fan_out, {"n": 3}))

    assert execution.outputs["o0"] == [0, 1, 4]
    assert len(assert_launched_by(flyte, controller, execution)) == 3


def test_a_short_chain_succeeds_under_either_controller(flyte, controller):
    execution = succeeded(run_under(flyte, controller, basics.chain, {"start": 0, "steps": 2}))

    assert execution.outputs["o0"] == 2
    assert len(assert_launched_by(flyte, controller, execution)) == 2


def test_falsy_results_survive_either_controller(flyte, controller):
    execution = succeeded(run_under(flyte, controller, basics.falsy_results))

    assert execution.outputs["zero"] == 0
    assert execution.outputs["empty_text"] == ""
    assert execution.outputs["empty_list"] == []
    assert execution.outputs["false"] is False
    assert execution.outputs["nothing_is_none"] is True
    assert len(assert_launched_by(flyte, controller, execution)) == 5


def test_a_caught_child_failure_is_an_eager_exception_under_either_controller(flyte, controller):
    message = f"planned failure {flyte.prefix}"
    execution = succeeded(
        run_under(flyte, controller, basics.catches_failure, {"message": message})
    )

    seen = execution.outputs["o0"]
    assert seen.startswith("caught EagerException: "), seen
    assert "integration.workflows.basics.explode" in seen
    if controller == "eagerqueue":
        # The stock controller quotes a truncated repr of the error, which cuts the message.
        assert message in seen
    [child] = assert_launched_by(flyte, controller, execution)
    assert phase_of(child) == "FAILED"
