"""Eager workflows of the common shapes, each child a real execution on the backend."""

from integration.helpers import (
    EAGER_EXEC_LABEL,
    EAGER_ROOT_LABEL,
    children_of,
    descendants_of,
    entity_of,
    labels_of,
    phase_of,
    succeeded,
)
from integration.workflows import basics


def test_a_fan_out_gathers_every_child_result_in_call_order(flyte):
    execution = succeeded(flyte.execute(basics.fan_out, {"n": 6}))

    assert execution.outputs["o0"] == [0, 1, 4, 9, 16, 25]
    children = children_of(flyte.remote, execution.id.name)
    assert sorted(entity_of(c) for c in children) == ["square"] * 6
    assert len({c.id.name for c in children}) == 6


def test_a_chain_of_awaits_runs_each_child_after_the_previous_one_finished(flyte):
    execution = succeeded(flyte.execute(basics.chain, {"start": 5, "steps": 4}))

    assert execution.outputs["o0"] == 9
    children = children_of(flyte.remote, execution.id.name)
    assert len(children) == 4
    for earlier, later in zip(children, children[1:], strict=False):
        assert later.closure.created_at >= earlier.closure.updated_at, (
            f"{later.id.name} was created before {earlier.id.name} finished"
        )


def test_calls_of_a_plain_task_block_and_return_values_directly(flyte):
    execution = succeeded(flyte.execute(basics.sync_chain, {"start": 1, "steps": 3}))

    assert execution.outputs["o0"] == 4
    assert [entity_of(c) for c in children_of(flyte.remote, execution.id.name)] == ["add"] * 3


def test_three_levels_of_eager_tasks_label_every_descendant_with_the_root(flyte):
    execution = succeeded(flyte.execute(basics.outermost, {"x": 4}))
    root = execution.id.name

    assert execution.outputs["o0"] == 4 * 4 + 1 + 10
    tree = descendants_of(flyte.remote, root)
    by_entity = {entity_of(e): e for e in tree}
    assert sorted(by_entity) == ["innermost", "middle", "square"]
    assert all(labels_of(e)[EAGER_ROOT_LABEL] == root for e in tree)
    assert labels_of(by_entity["middle"])[EAGER_EXEC_LABEL] == root
    assert labels_of(by_entity["innermost"])[EAGER_EXEC_LABEL] == by_entity["middle"].id.name
    assert labels_of(by_entity["square"])[EAGER_EXEC_LABEL] == by_entity["innermost"].id.name
    assert [c.id.name for c in children_of(flyte.remote, root)] == [by_entity["middle"].id.name]


def test_a_sub_workflow_and_a_launch_plan_with_a_default_input_run_as_children(flyte):
    execution = succeeded(flyte.execute(basics.through_workflows, {"a": 5}))

    assert execution.outputs["o0"] == [6, 15]
    children = children_of(flyte.remote, execution.id.name)
    # flytekit hands a launch plan called inside @eager to the controller as its workflow,
    # with the plan's defaults already merged into the inputs; its stock controller does the
    # same. So both children run the workflow's default launch plan.
    assert [entity_of(c) for c in children] == ["add_workflow", "add_workflow"]
    assert all(phase_of(c) == "SUCCEEDED" for c in children)


def test_a_file_and_a_dataclass_pass_between_children(flyte):
    text = f"written by {flyte.prefix}"
    execution = succeeded(
        flyte.execute(basics.pass_values, {"text": text, "point": basics.Point(x=1, y=2)})
    )

    assert execution.outputs["o0"] == text
    assert execution.outputs.get("o1", as_type=basics.Point) == basics.Point(x=4, y=5)
    entities = sorted(entity_of(c) for c in children_of(flyte.remote, execution.id.name))
    assert entities == ["read_text", "shift", "shift", "write_text"]


def test_falsy_results_and_no_result_reach_the_caller_unchanged(flyte):
    execution = succeeded(flyte.execute(basics.falsy_results))

    outputs = execution.outputs
    assert outputs["zero"] == 0
    assert outputs["empty_text"] == ""
    assert outputs["empty_list"] == []
    assert outputs["false"] is False
    assert outputs["nothing_is_none"] is True
    assert len(children_of(flyte.remote, execution.id.name)) == 5


def test_an_eager_task_without_outputs_succeeds_after_its_children(flyte):
    execution = succeeded(flyte.execute(basics.no_outputs, {"n": 3}))

    assert len(execution.outputs) == 0
    children = children_of(flyte.remote, execution.id.name)
    assert [phase_of(c) for c in children] == ["SUCCEEDED"] * 3
    assert all(c.closure.updated_at <= execution.closure.updated_at for c in children)
