"""Restarting on the same state, upload safety, the HTTP counters and the CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from datetime import timedelta
from pathlib import Path

import grpc
import pytest
from devpkg import basic
from flyteidl.admin import execution_pb2
from flyteidl.service import admin_pb2_grpc, dataproxy_pb2, dataproxy_pb2_grpc
from flytekit.configuration import ImageConfig
from flytekit.models.core.execution import WorkflowExecutionPhase

from flytekitplugins.eagerqueue.devserver.server import DevServer
from flytekitplugins.eagerqueue.devserver.store import RESTART_ERROR_MESSAGE, Phase, Store

from .conftest import DOMAIN, PROJECT, WFS_ROOT, make_remote, unique_name


def test_a_restarted_server_serves_finished_executions(tmp_path: Path) -> None:
    state = tmp_path / "state"
    name = unique_name("keep")
    with DevServer(state, port=0, source_root=WFS_ROOT) as first:
        remote = make_remote(first, tmp_path / "uploads")
        execution = remote.execute(
            basic.double,
            inputs={"x": 8},
            version="v1",
            execution_name=name,
            image_config=ImageConfig.auto_default_image(),
        )
        remote.wait(execution, poll_interval=timedelta(seconds=0.3))
    with DevServer(state, port=0, source_root=WFS_ROOT) as second:
        remote = make_remote(second, tmp_path / "uploads")
        again = remote.fetch_execution(project=PROJECT, domain=DOMAIN, name=name)
        assert again.closure.phase == WorkflowExecutionPhase.SUCCEEDED
        assert again.outputs["o0"] == 16


def test_executions_left_running_by_a_dead_server_are_failed_on_restart(tmp_path: Path) -> None:
    state = tmp_path / "state"
    store = Store(state / "state.db")
    record = store.create_execution(PROJECT, DOMAIN, "orphan", b"", b"", [])
    store.mark_running(record.id)
    store.close()
    with DevServer(state, port=0) as server:
        found = server.store.get_execution(PROJECT, DOMAIN, "orphan")
        assert found.phase == Phase.Value("FAILED")
        assert RESTART_ERROR_MESSAGE.encode() in found.error


@pytest.fixture
def dev(tmp_path: Path):
    with DevServer(tmp_path / "state", port=0) as server:
        yield server


def _upload_request(filename: str, root: str = "") -> dataproxy_pb2.CreateUploadLocationRequest:
    return dataproxy_pb2.CreateUploadLocationRequest(
        project=PROJECT, domain=DOMAIN, filename=filename, filename_root=root, content_md5=b"x" * 16
    )


def test_upload_locations_are_plain_paths_under_the_state_dir(dev: DevServer) -> None:
    with grpc.insecure_channel(dev.endpoint) as channel:
        stub = dataproxy_pb2_grpc.DataProxyServiceStub(channel)
        response = stub.CreateUploadLocation(_upload_request("code.tar.gz"))
    assert not response.native_url.startswith("file:")
    assert Path(response.native_url).is_relative_to(dev.state_dir / "uploads")
    request = urllib.request.Request(response.signed_url, data=b"payload", method="PUT")
    with urllib.request.urlopen(request) as answer:
        assert answer.status == 200
    assert Path(response.native_url).read_bytes() == b"payload"


@pytest.mark.parametrize(
    ("filename", "root"),
    [("../../etc/x", ""), ("/etc/x", ""), ("ok.txt", "../.."), ("a\x00b", "")],
)
def test_upload_locations_that_leave_the_state_dir_are_refused(
    dev: DevServer, filename: str, root: str
) -> None:
    with grpc.insecure_channel(dev.endpoint) as channel:
        stub = dataproxy_pb2_grpc.DataProxyServiceStub(channel)
        with pytest.raises(grpc.RpcError) as raised:
            stub.CreateUploadLocation(_upload_request(filename, root))
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT


def test_an_upload_put_with_path_traversal_is_refused_and_writes_nothing(
    dev: DevServer, tmp_path: Path
) -> None:
    before = set(tmp_path.rglob("*"))
    for path in ("/upload/../../etc/x", "/upload/%2e%2e/%2e%2e/x", "/upload/a/../../../x"):
        request = urllib.request.Request(dev.http_url + path, data=b"evil", method="PUT")
        with pytest.raises(urllib.error.HTTPError) as raised:
            urllib.request.urlopen(request)
        assert raised.value.code in (400, 404)
    written = {p for p in set(tmp_path.rglob("*")) - before if p.is_file()}
    assert not [p for p in written if not p.is_relative_to(dev.state_dir)]
    assert not list((dev.state_dir / "uploads").rglob("x"))
    assert not Path("/etc/x").exists()


def test_rpc_counts_are_served_over_http_and_can_be_reset(dev: DevServer) -> None:
    with grpc.insecure_channel(dev.endpoint) as channel:
        stub = admin_pb2_grpc.AdminServiceStub(channel)
        request = execution_pb2.WorkflowExecutionGetRequest()
        request.id.project, request.id.domain, request.id.name = PROJECT, DOMAIN, "missing"
        with pytest.raises(grpc.RpcError) as raised:
            stub.GetExecution(request)
    assert raised.value.code() == grpc.StatusCode.NOT_FOUND
    assert "missing" in raised.value.details()
    with urllib.request.urlopen(dev.http_url + "/_dev/stats") as answer:
        assert json.load(answer) == {"AdminService/GetExecution": 1}
    reset = urllib.request.Request(dev.http_url + "/_dev/stats/reset", data=b"", method="POST")
    urllib.request.urlopen(reset).close()
    assert dev.rpc_counts() == {}


def test_a_non_loopback_host_is_refused_without_allow_remote(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="allow_remote=True"):
        DevServer(tmp_path, host="0.0.0.0")


def test_the_cli_prints_a_ready_line_and_stops_on_sigterm(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FLYTE")}
    command = [sys.executable, "-m", "flytekitplugins.eagerqueue.devserver", "dev", "--port", "0"]
    process = subprocess.Popen(
        [*command, "--state-dir", str(tmp_path / "state")],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env=env,
    )
    try:
        ready = ""
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            line = process.stdout.readline()
            if line.startswith("EAGERQUEUE_DEV_READY"):
                ready = line
                break
        fields = dict(part.split("=", 1) for part in ready.split()[1:])
        assert fields["endpoint"].startswith("127.0.0.1:")
        config = Path(fields["config"]).read_text()
        assert f"dns:///{fields['endpoint']}" in config and "insecure: true" in config
        with urllib.request.urlopen(fields["http"] + "/_dev/stats") as answer:
            assert answer.status == 200
        process.terminate()
        assert process.wait(15) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
