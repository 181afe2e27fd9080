"""FlyteRemote against a real dev backend: registration, execution, errors and listing."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest
from devpkg import basic
from flytekit.configuration import ImageConfig
from flytekit.exceptions.user import FlyteInvalidInputException
from flytekit.models import filters
from flytekit.models.common import Labels
from flytekit.models.core.execution import WorkflowExecutionPhase
from flytekit.remote import FlyteRemote
from flytekit.tools.translator import Options

from flytekitplugins.eagerqueue.devserver.server import DevServer

from .conftest import DOMAIN, PROJECT, eventually, start_sleeper, unique_name


def test_a_task_runs_and_returns_its_output(run: Callable) -> None:
    execution = run(basic.double, inputs={"x": 21})
    assert execution.closure.phase == WorkflowExecutionPhase.SUCCEEDED
    assert execution.outputs["o0"] == 42


def test_a_workflow_of_two_task_nodes_runs_in_dependency_order(run: Callable) -> None:
    execution = run(basic.double_then_add, inputs={"x": 4, "y": 1})
    assert execution.error is None
    assert execution.outputs["o0"] == 9


def test_a_launch_plan_merges_its_default_and_fixed_inputs(run: Callable) -> None:
    execution = run(basic.add_lp, inputs={})
    assert execution.outputs["o0"] == 5 * 2 + 100
    assert execution.inputs["x"] == 5 and execution.inputs["y"] == 100


def test_a_failing_task_ends_failed_with_the_user_error(run: Callable) -> None:
    execution = run(basic.fail, inputs={"message": "boom from the task"})
    assert execution.closure.phase == WorkflowExecutionPhase.FAILED
    assert "boom from the task" in execution.error.message
    assert execution.error.kind == 1  # USER


def test_a_duplicate_execution_name_attaches_to_the_existing_execution(
    server: DevServer, remote: FlyteRemote, run: Callable
) -> None:
    name = unique_name("dup")
    first = run(basic.double, inputs={"x": 1}, execution_name=name)
    server.reset_rpc_counts()
    second = run(basic.double, inputs={"x": 2}, execution_name=name)
    assert second.id.name == first.id.name
    assert second.outputs["o0"] == 2
    assert server.rpc_counts()["AdminService/CreateExecution"] == 4  # ALREADY_EXISTS + 3 retries


def test_an_invalid_execution_name_is_refused_naming_it(remote: FlyteRemote, version: str) -> None:
    with pytest.raises(FlyteInvalidInputException, match="Bad_Name"):
        remote.execute(
            basic.double,
            inputs={"x": 1},
            version=version,
            execution_name="Bad_Name",
            image_config=ImageConfig.auto_default_image(),
        )


def test_terminate_aborts_a_sleeping_task_and_kills_its_process(
    remote: FlyteRemote, version: str, tmp_path: Path
) -> None:
    execution, pid = start_sleeper(remote, version, tmp_path / "pid")
    remote.terminate(execution, "user cancelled")
    synced = remote.sync_execution(execution)
    assert synced.closure.phase == WorkflowExecutionPhase.ABORTED
    assert synced.closure.abort_metadata.cause == "user cancelled"
    eventually(lambda: not _alive(pid), timeout=10)
    remote.terminate(execution, "again")  # terminal executions accept a repeat


def test_executions_are_listed_by_label_and_phase(remote: FlyteRemote, run: Callable) -> None:
    tag = unique_name("r")
    for value in (tag, tag, "other"):
        options = Options(labels=Labels({"run": value, "team": "dev"}))
        run(basic.double, inputs={"x": 3}, options=options)
    by_label = [
        filters.Equal("execution_tag.key", "run"),
        filters.Equal("execution_tag.value", tag),
    ]
    found, token = remote.client.list_executions_paginated(PROJECT, DOMAIN, filters=by_label)
    assert len(found) == 2 and token == ""
    by_phase = [*by_label, filters.ValueIn("phase", ["QUEUED", "RUNNING"])]
    found, _ = remote.client.list_executions_paginated(PROJECT, DOMAIN, filters=by_phase)
    assert found == []
    mismatched = [
        filters.Equal("execution_tag.key", "team"),
        filters.Equal("execution_tag.value", tag),
    ]
    found, _ = remote.client.list_executions_paginated(PROJECT, DOMAIN, filters=mismatched)
    assert found == []


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True
