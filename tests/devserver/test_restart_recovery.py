"""A server killed with SIGKILL and restarted on its state picks up what was running."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path

import pytest
from devpkg import basic
from flyteidl.admin import execution_pb2
from flyteidl.core import literals_pb2
from flytekit.configuration import Config, ImageConfig, PlatformConfig
from flytekit.models.core.execution import WorkflowExecutionPhase
from flytekit.remote import FlyteRemote

from flytekitplugins.eagerqueue.devserver.processes import process_start_time
from flytekitplugins.eagerqueue.devserver.server import DevServer
from flytekitplugins.eagerqueue.devserver.store import RESTART_ERROR_MESSAGE, Phase, Store

from .conftest import DOMAIN, PROJECT, WFS_ROOT, eventually, make_remote, unique_name


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextmanager
def _cli_server(state: Path, port: int) -> Iterator[subprocess.Popen[str]]:
    """``eagerqueue dev`` as a child process, ready when entered, killed when left."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("FLYTE")}
    command = [sys.executable, "-m", "flytekitplugins.eagerqueue.devserver", "dev"]
    command += ["--port", str(port), "--state-dir", str(state), "--source-root", str(WFS_ROOT)]
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env
    )
    try:
        line = ""
        while not line.startswith("EAGERQUEUE_DEV_READY"):
            line = process.stdout.readline()
            assert line, "the dev backend exited before it was ready"
        yield process
    finally:
        if process.poll() is None:
            process.terminate()
            process.wait(15)


def _remote(port: int, uploads: Path) -> FlyteRemote:
    return FlyteRemote(
        Config(platform=PlatformConfig(endpoint=f"127.0.0.1:{port}", insecure=True)),
        default_project=PROJECT,
        default_domain=DOMAIN,
        data_upload_location=str(uploads),
    )


def _kill_if_alive(pid: int) -> None:
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def test_a_task_running_when_the_server_was_killed_is_adopted_and_succeeds_once(
    tmp_path: Path,
) -> None:
    state, port, marker = tmp_path / "state", _free_port(), tmp_path / "runs"
    name = unique_name("adopt")
    with _cli_server(state, port) as first:
        _remote(port, tmp_path / "uploads").execute(
            basic.append_pid_and_sleep,
            inputs={"seconds": 3.0, "marker": str(marker)},
            version=f"v{uuid.uuid4().hex[:8]}",
            execution_name=name,
            image_config=ImageConfig.auto_default_image(),
        )
        eventually(lambda: marker.exists() and marker.read_text().endswith("\n"), timeout=30)
        first.send_signal(signal.SIGKILL)
        first.wait()
    pid = int(marker.read_text())
    try:
        with _cli_server(state, port):
            remote = _remote(port, tmp_path / "uploads")
            execution = remote.fetch_execution(project=PROJECT, domain=DOMAIN, name=name)
            assert execution.closure.phase == WorkflowExecutionPhase.RUNNING
            done = remote.wait(
                execution, timeout=timedelta(seconds=60), poll_interval=timedelta(seconds=0.2)
            )
            assert done.closure.phase == WorkflowExecutionPhase.SUCCEEDED, done.error
            assert done.outputs["o0"] == "slept 3.0"
        assert marker.read_text() == f"{pid}\n"
    finally:
        _kill_if_alive(pid)


def _orphan(state: Path, name: str, spec: execution_pb2.ExecutionSpec) -> tuple[Store, int]:
    """Record a RUNNING task execution the way a dead server would have left it."""
    store = Store(state / "state.db")
    record = store.create_execution(PROJECT, DOMAIN, name, spec.SerializeToString(), b"", [])
    store.mark_running(record.id)
    return store, record.id


def _task_spec() -> execution_pb2.ExecutionSpec:
    spec = execution_pb2.ExecutionSpec()
    target = spec.launch_plan
    target.resource_type, target.project, target.domain = 1, PROJECT, DOMAIN  # TASK
    target.name, target.version = "devpkg.basic.double", "v1"
    return spec


def test_a_task_whose_process_died_while_the_server_was_down_fails_with_the_restart_error(
    tmp_path: Path,
) -> None:
    state = tmp_path / "state"
    attempt = tmp_path / "attempt"
    attempt.mkdir()
    store, execution_id = _orphan(state, "died", _task_spec())
    process = subprocess.Popen(["sleep", "30"], start_new_session=True)
    store.set_process(
        execution_id, process.pid, process.pid, process_start_time(process.pid), attempt
    )
    store.close()
    process.kill()
    process.wait()
    with DevServer(state, port=0) as server:
        found = server.store.get_execution(PROJECT, DOMAIN, "died")
    assert found.phase == Phase.Value("FAILED")
    assert RESTART_ERROR_MESSAGE.encode() in found.error
    assert b"DevBackendRestarted" in found.error


def test_a_task_that_finished_while_the_server_was_down_is_finished_from_its_outputs(
    tmp_path: Path,
) -> None:
    state = tmp_path / "state"
    attempt = tmp_path / "attempt"
    attempt.mkdir()
    outputs = literals_pb2.LiteralMap()
    outputs.literals["o0"].scalar.primitive.integer = 14
    (attempt / "outputs.pb").write_bytes(outputs.SerializeToString())
    store, execution_id = _orphan(state, "finished", _task_spec())
    process = subprocess.Popen(["true"])
    start = process_start_time(process.pid)
    process.wait()
    store.set_process(execution_id, process.pid, process.pid, start, attempt)
    store.close()
    with DevServer(state, port=0) as server:
        found = server.store.get_execution(PROJECT, DOMAIN, "finished")
    assert found.phase == Phase.Value("SUCCEEDED")
    assert literals_pb2.LiteralMap.FromString(found.outputs) == outputs


def test_a_reused_pid_is_neither_adopted_nor_killed(tmp_path: Path) -> None:
    state = tmp_path / "state"
    stranger = subprocess.Popen(["sleep", "30"], start_new_session=True)
    try:
        store, execution_id = _orphan(state, "reused", _task_spec())
        wrong_start = process_start_time(stranger.pid) - 1
        store.set_process(execution_id, stranger.pid, stranger.pid, wrong_start, tmp_path)
        store.close()
        with DevServer(state, port=0) as server:
            found = server.store.get_execution(PROJECT, DOMAIN, "reused")
        assert found.phase == Phase.Value("FAILED")
        assert stranger.poll() is None
    finally:
        stranger.kill()
        stranger.wait()


@pytest.mark.parametrize("marked_running", [False, True])
def test_a_task_that_never_started_a_process_runs_after_restart(
    tmp_path: Path, marked_running: bool
) -> None:
    state = tmp_path / "state"
    version = f"v{uuid.uuid4().hex[:8]}"
    with DevServer(state, port=0, source_root=WFS_ROOT) as server:
        remote = make_remote(server, tmp_path / "uploads")
        remote.register_task(
            basic.double,
            serialization_settings=_settings(version),
            version=version,
        )
    spec = _task_spec()
    spec.launch_plan.version = version
    inputs = literals_pb2.LiteralMap()
    inputs.literals["x"].scalar.primitive.integer = 6
    store = Store(state / "state.db")
    record = store.create_execution(
        PROJECT, DOMAIN, "queued", spec.SerializeToString(), inputs.SerializeToString(), []
    )
    if marked_running:  # the server died between marking it running and spawning it
        assert store.mark_running(record.id)
    store.close()
    with DevServer(state, port=0, source_root=WFS_ROOT) as server:
        eventually(
            lambda: server.store.get_execution(PROJECT, DOMAIN, "queued").is_terminal, timeout=60
        )
        found = server.store.get_execution(PROJECT, DOMAIN, "queued")
    assert found.phase == Phase.Value("SUCCEEDED"), found.error
    assert (
        literals_pb2.LiteralMap.FromString(found.outputs).literals["o0"].scalar.primitive.integer
        == 12
    )


def _settings(version: str):
    from flytekit.configuration import SerializationSettings

    return SerializationSettings(image_config=ImageConfig.auto_default_image(), version=version)
