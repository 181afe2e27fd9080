"""Faults on the dev backend: nothing lost, nothing launched twice, nothing orphaned.

These cases inject faults through the dev backend (failing RPCs, killed processes, a killed
server), so they run only with ``--backend=dev``.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time

import pytest
from flytekit.configuration import Config, PlatformConfig
from flytekit.remote import FlyteRemote

from integration.conftest import REPO_ROOT
from integration.helpers import assert_eventually
from integration.workflows import resilience

RUNNING, SUCCEEDED, FAILED, ABORTED = 2, 4, 6, 7
TERMINAL = {4, 6, 7, 8}


def store_record(backend, name):
    return backend.server.store.get_execution(backend.project, backend.domain, name)


def children(backend, parent):
    return backend.server.store.eager_children(backend.project, backend.domain, parent)


def launch(flyte, entity, inputs):
    """Starts ``entity`` without waiting; returns its execution name."""
    registration = flyte.backend.registration
    name = flyte.name()
    flyte.started.append(name)
    flyte.remote.execute(
        entity,
        inputs=inputs,
        execution_name=name,
        version=registration.version,
        image_config=registration.image_config,
        serialization_settings=registration.serialization_settings(),
    )
    return name


def wait_terminal(backend, name, timeout=240):
    return assert_eventually(
        lambda: (r := store_record(backend, name)).phase in TERMINAL and r,
        timeout=timeout,
        message=f"{name} did not finish",
    )


def output_of(record):
    from flyteidl.core import literals_pb2

    outputs = literals_pb2.LiteralMap()
    outputs.ParseFromString(record.outputs)
    return outputs.literals["o0"].scalar.primitive.integer


def test_a_fan_out_of_100_with_20_percent_of_rpcs_unavailable_ends_correct(dev, flyte):
    name = launch(flyte, resilience.fan, {"n": 100})
    dev.server.set_faults(rate=0.2, code="UNAVAILABLE", seed=7)
    record = wait_terminal(dev, name, timeout=400)
    injected = dev.server.fault_counts()
    dev.server.clear_faults()
    assert record.phase == SUCCEEDED, dev.logs(name)
    assert output_of(record) == sum(range(100))
    kids = children(dev, name)
    assert len(kids) == 100
    assert len({k.name for k in kids}) == 100
    assert sum(injected["rpc"].values()) > 20


def test_sigterm_to_a_parent_aborts_its_three_running_children_within_ten_seconds(dev, flyte):
    name = launch(flyte, resilience.hold, {"n": 3, "seconds": 120.0})
    kids = assert_eventually(
        lambda: (
            (k := children(dev, name)) and len(k) == 3 and all(c.phase == RUNNING for c in k) and k
        ),
        timeout=120,
        message="three running children",
    )
    parent_pid = store_record(dev, name).pid
    os.kill(parent_pid, signal.SIGTERM)
    signalled = time.monotonic()
    assert_eventually(
        lambda: all(store_record(dev, k.name).phase == ABORTED for k in kids),
        timeout=10,
        message="children aborted after SIGTERM to the parent",
    )
    assert time.monotonic() - signalled < 10
    parent = wait_terminal(dev, name, timeout=30)
    assert parent.phase == FAILED


def test_a_parent_killed_and_retried_relaunches_no_child(dev, flyte):
    name = launch(flyte, resilience.retried_hold, {"n": 4, "seconds": 6.0})
    kids = assert_eventually(
        lambda: (k := children(dev, name)) and len(k) == 4 and k,
        timeout=120,
        message="four children launched",
    )
    first_pid = store_record(dev, name).pid
    os.kill(first_pid, signal.SIGKILL)
    record = wait_terminal(dev, name, timeout=240)
    assert record.phase == SUCCEEDED, dev.logs(name)
    assert output_of(record) == 0 + 1 + 2 + 3
    after = children(dev, name)
    assert sorted(k.name for k in after) == sorted(k.name for k in kids)


def test_a_launch_failure_caught_by_user_code_leaves_the_controller_usable(dev, flyte):
    execution = flyte.execute(resilience.survives_a_failed_launch, {"x": 5})
    assert execution.outputs["o0"] == 5
    assert len(children(dev, execution.id.name)) == 1


# ---------------------------------------------------------------------------- server restart


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_server(state_dir, port):
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "flytekitplugins.eagerqueue.devserver",
            "dev",
            "--port",
            str(port),
            "--state-dir",
            str(state_dir),
            "--source-root",
            str(REPO_ROOT),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    for line in process.stdout:
        if line.startswith("EAGERQUEUE_DEV_READY"):
            return process
    raise AssertionError(f"dev backend did not start (exit {process.wait()})")


def test_the_backend_killed_and_restarted_mid_run_loses_and_duplicates_nothing(backend, tmp_path):
    if backend.kind != "dev":
        pytest.skip("killing the backend needs the dev backend (--backend=dev)")
    from flytekit.configuration import ImageConfig, SerializationSettings

    from flytekitplugins.eagerqueue.devserver.store import Store

    port = free_port()
    server = start_server(tmp_path, port)
    try:
        remote = FlyteRemote(
            Config(platform=PlatformConfig(endpoint=f"127.0.0.1:{port}", insecure=True)),
            default_project="flytesnacks",
            default_domain="development",
            data_upload_location=str(tmp_path / "uploads-client"),
        )
        version = f"restart-{int(time.time())}"
        execution = remote.execute(
            resilience.hold,
            inputs={"n": 6, "seconds": 4.0},
            version=version,
            serialization_settings=SerializationSettings(
                image_config=ImageConfig.auto_default_image(), version=version
            ),
        )
        name = execution.id.name
        store = Store(tmp_path / "state.db")
        try:
            assert_eventually(
                lambda: len(store_children(store, name)) == 6,
                timeout=120,
                message="six children launched",
            )
        finally:
            store.close()
        server.send_signal(signal.SIGKILL)
        server.wait()
        time.sleep(2.0)  # the parent's controller sees Admin gone for a while
        server = start_server(tmp_path, port)
        record = assert_eventually(
            lambda: (
                (e := remote.client.get_execution(execution.id)).closure.phase in TERMINAL and e
            ),
            timeout=240,
            message="the parent finished after the restart",
        )
        assert record.closure.phase == SUCCEEDED
        final = remote.fetch_execution(name=name)
        assert final.outputs["o0"] == sum(range(6))
        store = Store(tmp_path / "state.db")
        try:
            kids = store_children(store, name)
        finally:
            store.close()
        assert len(kids) == 6
        assert all(k.phase == SUCCEEDED for k in kids)
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=30)


def store_children(store, parent):
    return store.eager_children("flytesnacks", "development", parent)
