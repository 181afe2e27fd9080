"""Eager tasks calling entities registered earlier, through reference_task and
reference_launch_plan."""

import dataclasses

import pytest

from integration.helpers import children_of, succeeded
from integration.workflows import references, targets


def register_targets(flyte) -> None:
    backend = flyte.backend
    settings = dataclasses.replace(
        backend.registration.serialization_settings(targets.VERSION),
        project=backend.project,
        domain=backend.domain,
    )
    flyte.remote.register_task(
        targets.triple, serialization_settings=settings, version=targets.VERSION
    )
    flyte.remote.register_launch_plan(
        targets.offset_plan,
        version=targets.VERSION,
        project=backend.project,
        domain=backend.domain,
        serialization_settings=settings,
    )


def assert_children_ran_the_targets(flyte, execution) -> None:
    children = children_of(flyte.remote, execution.id.name)
    launched = sorted((c.spec.launch_plan.name, c.spec.launch_plan.version) for c in children)
    assert launched == [
        (targets.OFFSET_PLAN_NAME, targets.VERSION),
        (targets.TRIPLE_NAME, targets.VERSION),
    ]


@pytest.mark.xfail(
    strict=True,
    reason="flytekit 1.16: a fetched FlyteTask/FlyteLaunchPlan called inside @eager runs "
    "RemoteEntity.execute (AssertionError: Remotely fetched entities cannot be run locally) "
    "instead of being handed to the controller",
)
def test_entities_fetched_inside_an_eager_run_as_children_at_their_own_version(flyte):
    register_targets(flyte)

    execution = succeeded(flyte.execute(references.by_fetched_entities, {"x": 2}))

    assert execution.outputs["o0"] == [6, 13]
    assert_children_ran_the_targets(flyte, execution)


@pytest.mark.xfail(
    strict=True,
    reason="flytekit 1.16: ReferenceEntity.__call__ runs the entity locally inside @eager "
    "(NotImplementedError: Remote reference entities cannot be run locally) instead of "
    "handing it to the controller",
)
def test_reference_task_and_reference_launch_plan_run_as_children_of_an_eager(flyte):
    register_targets(flyte)

    execution = succeeded(flyte.execute(references.by_reference, {"x": 2}))

    assert execution.outputs["o0"] == [6, 13]
    assert_children_ran_the_targets(flyte, execution)
