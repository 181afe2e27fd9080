"""``examples/fanout.py``, run the two ways users run it: ``pyflyte run`` and FlyteRemote."""

import collections
import importlib
import re

from flytekit.core.utils import _dnsify

from integration.helpers import (
    ADMIN_NAME,
    EAGER_EXEC_LABEL,
    EAGER_ROOT_LABEL,
    INPUTS_LABEL,
    children_of,
    descendants_of,
    entity_of,
    labels_of,
    succeeded,
)

fanout = importlib.import_module("examples.fanout")

N = 20
# 20 squares, the add_pair workflow and the nested scale eager task.
DIRECT_CHILDREN = {"square": N, "add_pair": 1, "scale": 1}
# ... and the three multiply children of scale.
DESCENDANTS = {**DIRECT_CHILDREN, "multiply": 3}


def assert_children_of_the_fanout_run(flyte, root: str) -> None:
    children = children_of(flyte.remote, root)
    tree = descendants_of(flyte.remote, root)

    assert collections.Counter(entity_of(c) for c in children) == DIRECT_CHILDREN
    assert collections.Counter(entity_of(e) for e in tree) == DESCENDANTS
    names = [e.id.name for e in tree]
    assert len(set(names)) == len(names) == sum(DESCENDANTS.values())
    assert all(ADMIN_NAME.fullmatch(name) for name in names), names
    prefix = _dnsify(f"e-fanout-{root[:5]}")
    for child in children:
        labels = labels_of(child)
        assert labels[EAGER_EXEC_LABEL] == root
        assert labels[EAGER_ROOT_LABEL] == root
        assert re.fullmatch(r"[0-9a-f]{40}", labels[INPUTS_LABEL]), labels
        assert re.fullmatch(rf"{re.escape(prefix)}-[0-9a-f]{{20}}", child.id.name), child.id.name
    scale = next(c for c in children if entity_of(c) == "scale")
    for grandchild in children_of(flyte.remote, scale.id.name):
        assert labels_of(grandchild)[EAGER_ROOT_LABEL] == root
        assert labels_of(grandchild)[INPUTS_LABEL]


def test_pyflyte_run_remote_runs_the_example_with_this_controller(flyte):
    name = flyte.name("pyflyte")
    registration = flyte.backend.registration
    flyte.started.append(name)
    flyte.pyflyte(
        "run",
        "--remote",
        "--project",
        flyte.backend.project,
        "--domain",
        flyte.backend.domain,
        "--name",
        name,
        *registration.pyflyte_image_args(),
        "examples/fanout.py",
        "fanout",
        "--n",
        str(N),
    )

    execution = succeeded(flyte.wait(flyte.backend.fetch(name)))

    assert execution.outputs["o0"] == fanout.expected(N) == 2843
    assert_children_of_the_fanout_run(flyte, name)


def test_flyteremote_execute_runs_the_example_with_this_controller(flyte):
    execution = succeeded(flyte.execute(fanout.fanout, {"n": N}))

    assert execution.outputs["o0"] == 2843
    assert_children_of_the_fanout_run(flyte, execution.id.name)
