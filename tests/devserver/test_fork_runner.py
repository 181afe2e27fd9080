"""The fork runner: the same executions as the process runner, forked from a warm helper."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from devpkg import basic, eager_wf
from flytekit.models.core.execution import WorkflowExecutionPhase
from flytekit.remote import FlyteRemote

from flytekitplugins.eagerqueue.devserver.server import DevServer

from .conftest import DOMAIN, PROJECT, WFS_ROOT, eventually, start_sleeper, unique_name

PYFLYTE = str(Path(sys.executable).with_name("pyflyte"))


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevServer]:
    state = tmp_path_factory.mktemp("fork_state")
    with DevServer(state, port=0, source_root=WFS_ROOT, runner="fork") as dev:
        yield dev


def test_an_unknown_runner_is_refused_naming_the_choices(tmp_path: Path) -> None:
    with pytest.raises(ValueError) as raised:
        DevServer(tmp_path, runner="thread")
    assert str(raised.value) == "runner must be one of process, fork, got 'thread'"


def test_a_task_runs_in_a_forked_process_and_returns_its_output(run: Callable) -> None:
    execution = run(basic.double, inputs={"x": 21})
    assert execution.closure.phase == WorkflowExecutionPhase.SUCCEEDED
    assert execution.outputs["o0"] == 42


def test_a_workflow_runs_on_forked_task_processes(run: Callable) -> None:
    execution = run(basic.double_then_add, inputs={"x": 4, "y": 1})
    assert execution.outputs["o0"] == 9


def test_a_user_error_in_a_forked_task_fails_the_execution(run: Callable) -> None:
    execution = run(basic.fail, inputs={"message": "boom in a fork"})
    assert execution.closure.phase == WorkflowExecutionPhase.FAILED
    assert "boom in a fork" in execution.error.message
    assert execution.error.kind == 1  # USER


def test_a_forked_task_leads_its_own_process_group_and_terminate_kills_it(
    remote: FlyteRemote, version: str, tmp_path: Path
) -> None:
    execution, pid = start_sleeper(remote, version, tmp_path / "pid")
    assert os.getpgid(pid) == pid
    remote.terminate(execution, "user cancelled")
    assert remote.sync_execution(execution).closure.phase == WorkflowExecutionPhase.ABORTED
    eventually(lambda: not _alive(pid), timeout=10)


def test_an_eager_task_calls_back_from_a_forked_process(run: Callable) -> None:
    execution = run(eager_wf.sum_of_squares, inputs={"a": 3, "b": 4}, timeout=120)
    assert execution.error is None, execution.error
    assert execution.outputs["o0"] == 25


def test_a_fast_registered_workflow_runs_in_forked_processes(
    server: DevServer, remote: FlyteRemote
) -> None:
    name = unique_name("fork-pyf")
    command = [PYFLYTE, "--config", str(server.config_path), "run", "--remote", "--name", name]
    command += ["fast_wf.py", "greet_wf", "--name", "fork"]
    env = {k: v for k, v in os.environ.items() if not k.startswith("FLYTE")}
    done = subprocess.run(command, cwd=WFS_ROOT, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    execution = remote.fetch_execution(project=PROJECT, domain=DOMAIN, name=name)
    execution = remote.wait(execution, timeout=timedelta(seconds=60))
    assert execution.outputs["o0"] == "HELLO FORK"
    extracted = list(server.state_dir.glob(f"data/{PROJECT}/{DOMAIN}/{name}/*/0/wd/fast_wf.py"))
    assert len(extracted) == 2, "each node should have unpacked the code archive in its own cwd"


def test_fail_executions_kills_a_forked_task_too(server: DevServer, run: Callable) -> None:
    prefix = unique_name("doomed")
    server.fail_executions(1, name_prefix=prefix)
    execution = run(basic.double, inputs={"x": 2}, execution_name=f"{prefix}-a")
    assert execution.error.code == "SYSTEM:ProcessKilled"
    assert run(basic.double, inputs={"x": 2}, execution_name=f"{prefix}-b").outputs["o0"] == 4


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_a_library_a_task_imported_is_loaded_in_the_next_fork(run: Callable) -> None:
    before = run(basic.module_loaded_before_import, inputs={"name": "wave"})
    assert before.outputs["o0"] is False
    assert run(basic.import_wave, inputs={}).outputs["o0"] is True
    after = run(basic.module_loaded_before_import, inputs={"name": "wave"})
    assert after.outputs["o0"] is True


def test_task_code_is_never_preloaded_so_edits_take_effect(run: Callable) -> None:
    run(basic.double, inputs={"x": 1})
    execution = run(basic.module_loaded_before_import, inputs={"name": "devpkg.eager_wf"})
    assert execution.outputs["o0"] is False
