"""``pyflyte register``, then launching the registered launch plan with FlyteRemote."""

import uuid

from integration.helpers import children_of, entity_of, succeeded

LAUNCH_PLAN = "integration.workflows.registered.sum_of_cubes"


def test_a_registered_eager_workflow_runs_from_its_launch_plan(flyte):
    version = f"reg-{uuid.uuid4().hex[:10]}"
    backend = flyte.backend
    # No --destination-dir: the dev backend points the default (/root) at each attempt's
    # working directory, and images built for a cluster keep the code in /root.
    output = flyte.pyflyte(
        "register",
        "--project",
        backend.project,
        "--domain",
        backend.domain,
        "--version",
        version,
        *backend.registration.pyflyte_image_args(),
        "integration/workflows/registered.py",
    )
    assert "sum_of_cubes" in output

    plan = flyte.remote.fetch_launch_plan(name=LAUNCH_PLAN, version=version)
    # The workflow flytekit registers for an eager task declares every input required
    # (the function's default for ``n`` is not carried over), so both runs pass ``n``.
    with_three = flyte.remote.execute(plan, inputs={"n": 3}, execution_name=flyte.name("three"))
    flyte.started.append(with_three.id.name)
    with_input = flyte.remote.execute(plan, inputs={"n": 4}, execution_name=flyte.name("four"))
    flyte.started.append(with_input.id.name)

    assert succeeded(flyte.wait(with_three)).outputs["o0"] == 1 + 8 + 27
    assert succeeded(flyte.wait(with_input)).outputs["o0"] == 1 + 8 + 27 + 64
    children = children_of(flyte.remote, with_input.id.name)
    assert sorted(entity_of(c) for c in children) == ["cube"] * 4
    assert {c.spec.launch_plan.version for c in children} == {version}
