"""Fault injection: failing and delaying RPCs, killing task processes, and counting both."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator

import grpc
import pytest
from devpkg import basic
from flyteidl.admin import common_pb2, execution_pb2
from flyteidl.service import admin_pb2_grpc
from flytekit.models.core.execution import WorkflowExecutionPhase

from flytekitplugins.eagerqueue.devserver.faults import FaultConfig
from flytekitplugins.eagerqueue.devserver.server import DevServer

from .conftest import DOMAIN, PROJECT

ALLOWED = "UNAVAILABLE, DEADLINE_EXCEEDED, RESOURCE_EXHAUSTED, INTERNAL, ABORTED"


@pytest.fixture
def faults_off(server: DevServer) -> Iterator[DevServer]:
    server.clear_faults()
    yield server
    server.clear_faults()


@pytest.fixture
def stub(server: DevServer) -> Iterator[admin_pb2_grpc.AdminServiceStub]:
    with grpc.insecure_channel(server.endpoint) as channel:
        yield admin_pb2_grpc.AdminServiceStub(channel)


def _get_request(name: str = "missing") -> execution_pb2.WorkflowExecutionGetRequest:
    request = execution_pb2.WorkflowExecutionGetRequest()
    request.id.project, request.id.domain, request.id.name = PROJECT, DOMAIN, name
    return request


def _list_request() -> common_pb2.ResourceListRequest:
    request = common_pb2.ResourceListRequest(limit=1)
    request.id.project, request.id.domain = PROJECT, DOMAIN
    return request


def _code_of(call: Callable[[], object]) -> grpc.StatusCode:
    try:
        call()
    except grpc.RpcError as exc:
        return exc.code()
    return grpc.StatusCode.OK


class TestFaultConfig:
    def test_a_code_outside_the_transient_ones_is_refused_naming_the_allowed_ones(self) -> None:
        with pytest.raises(ValueError) as raised:
            FaultConfig(rate=0.5, code="UNKNOWN")
        assert str(raised.value) == f"code must be one of {ALLOWED}, got 'UNKNOWN'"

    def test_a_rate_above_one_is_refused(self) -> None:
        with pytest.raises(ValueError) as raised:
            FaultConfig(rate=1.5)
        assert str(raised.value) == "rate must be between 0.0 and 1.0, got 1.5"

    def test_negative_latency_is_refused(self) -> None:
        with pytest.raises(ValueError, match="latency_ms must not be negative, got -1"):
            FaultConfig(latency_ms=-1)

    def test_a_single_string_of_methods_is_refused(self) -> None:
        with pytest.raises(ValueError, match="must be a list of method names"):
            FaultConfig(methods="GetExecution")

    def test_an_unknown_method_name_is_refused_naming_it(self) -> None:
        with pytest.raises(ValueError) as raised:
            FaultConfig(methods=["CreateExecution", "CreateExecutions"])
        assert str(raised.value) == (
            "methods ['CreateExecutions'] are not AdminService or DataProxyService methods; "
            "use names such as 'CreateExecution' or 'AdminService/GetExecution'"
        )

    def test_set_faults_refuses_unknown_codes_before_changing_anything(
        self, faults_off: DevServer
    ) -> None:
        with pytest.raises(ValueError, match="ABORTED"):
            faults_off.set_faults(rate=1.0, code="NOT_FOUND")
        assert faults_off.fault_counts() == {"rpc": {}, "executions": 0}


def test_a_full_rate_on_one_method_fails_only_that_method_with_the_chosen_code(
    faults_off: DevServer, stub: admin_pb2_grpc.AdminServiceStub
) -> None:
    before = faults_off.fault_counts()["rpc"].get("AdminService/GetExecution", 0)
    faults_off.set_faults(rate=1.0, code="RESOURCE_EXHAUSTED", methods=["GetExecution"])
    assert _code_of(lambda: stub.GetExecution(_get_request())) == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert _code_of(lambda: stub.ListExecutions(_list_request())) == grpc.StatusCode.OK
    assert faults_off.fault_counts()["rpc"]["AdminService/GetExecution"] == before + 1
    faults_off.clear_faults()
    assert _code_of(lambda: stub.GetExecution(_get_request())) == grpc.StatusCode.NOT_FOUND


def test_a_seeded_rate_fails_the_same_calls_every_time_and_never_answers_unknown(
    faults_off: DevServer, stub: admin_pb2_grpc.AdminServiceStub
) -> None:
    outcomes = []
    for _ in range(2):
        faults_off.set_faults(rate=0.5, code="INTERNAL", seed=7)
        outcomes.append([_code_of(lambda: stub.ListExecutions(_list_request())) for _ in range(40)])
    assert outcomes[0] == outcomes[1]
    assert set(outcomes[0]) == {grpc.StatusCode.OK, grpc.StatusCode.INTERNAL}
    assert 8 <= outcomes[0].count(grpc.StatusCode.INTERNAL) <= 32


def test_latency_is_added_to_every_call(
    faults_off: DevServer, stub: admin_pb2_grpc.AdminServiceStub
) -> None:
    faults_off.set_faults(latency_ms=150)
    started = time.monotonic()
    assert _code_of(lambda: stub.ListExecutions(_list_request())) == grpc.StatusCode.OK
    assert time.monotonic() - started >= 0.15


def _http(server: DevServer, method: str, path: str, body: object = None) -> tuple[int, dict]:
    data = json.dumps(body).encode() if body is not None else b""
    request = urllib.request.Request(server.http_url + path, data=data, method=method)
    try:
        with urllib.request.urlopen(request) as answer:
            return answer.status, json.load(answer)
    except urllib.error.HTTPError as exc:
        return exc.code, json.load(exc)


def test_faults_are_switched_on_read_and_cleared_over_http(
    faults_off: DevServer, stub: admin_pb2_grpc.AdminServiceStub
) -> None:
    config = {"rate": 1.0, "code": "ABORTED", "methods": ["ListExecutions"], "seed": 3}
    status, answer = _http(faults_off, "POST", "/_dev/faults", config)
    assert status == 200
    assert answer["config"] == {**config, "latency_ms": 0.0}
    assert _code_of(lambda: stub.ListExecutions(_list_request())) == grpc.StatusCode.ABORTED
    status, answer = _http(faults_off, "GET", "/_dev/faults")
    assert answer["counts"]["rpc"]["AdminService/ListExecutions"] >= 1
    status, answer = _http(faults_off, "DELETE", "/_dev/faults")
    assert status == 200 and answer["config"]["rate"] == 0.0
    assert _code_of(lambda: stub.ListExecutions(_list_request())) == grpc.StatusCode.OK


def test_a_bad_fault_request_over_http_answers_400_with_the_reason(faults_off: DevServer) -> None:
    status, answer = _http(faults_off, "POST", "/_dev/faults", {"rate": 1, "code": "UNKNOWN"})
    assert status == 400 and ALLOWED in answer["error"]
    status, answer = _http(faults_off, "POST", "/_dev/fail-executions", {"count": 0})
    assert status == 400 and "count must be a positive integer" in answer["error"]
    status, answer = _http(faults_off, "POST", "/_dev/faults", {"rate": 1, "colour": "red"})
    assert status == 400 and "colour" in answer["error"]


def test_fail_executions_kills_the_next_matching_task_as_a_system_failure(
    faults_off: DevServer, run: Callable
) -> None:
    status, answer = _http(
        faults_off,
        "POST",
        "/_dev/fail-executions",
        {"count": 1, "task_name": "devpkg.basic.double"},
    )
    assert status == 200 and answer["pending_executions"][0]["remaining"] == 1
    before = faults_off.fault_counts()["executions"]
    other = run(basic.add, inputs={"a": 1, "b": 2})
    assert other.outputs["o0"] == 3
    killed = run(basic.double, inputs={"x": 5})
    assert killed.closure.phase == WorkflowExecutionPhase.FAILED
    assert killed.error.code == "SYSTEM:ProcessKilled"
    assert killed.error.kind == 2  # SYSTEM
    assert "injected fault" in killed.error.message
    record = faults_off.store.get_execution(PROJECT, DOMAIN, killed.id.name)
    assert record.pid is not None and _gone(record.pid)
    again = run(basic.double, inputs={"x": 5})
    assert again.outputs["o0"] == 10
    assert faults_off.fault_counts()["executions"] == before + 1


def _gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


def test_the_cli_takes_its_faults_from_flags(tmp_path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FLYTE")}
    command = [sys.executable, "-m", "flytekitplugins.eagerqueue.devserver", "dev", "--port", "0"]
    flags = ["--fail-rate", "1", "--fail-code", "DEADLINE_EXCEEDED", "--seed", "1"]
    flags += ["--fail-methods", "GetExecution, ListExecutions", "--latency-ms", "5"]
    process = subprocess.Popen(
        [*command, "--state-dir", str(tmp_path / "state"), *flags],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env=env,
    )
    try:
        line = ""
        while not line.startswith("EAGERQUEUE_DEV_READY"):
            line = process.stdout.readline()
            assert line, "the dev backend exited before it was ready"
        fields = dict(part.split("=", 1) for part in line.split()[1:])
        with urllib.request.urlopen(fields["http"] + "/_dev/faults") as answer:
            config = json.load(answer)["config"]
        assert config == {
            "rate": 1.0,
            "code": "DEADLINE_EXCEEDED",
            "methods": ["GetExecution", "ListExecutions"],
            "latency_ms": 5.0,
            "seed": 1,
        }
        with grpc.insecure_channel(fields["endpoint"]) as channel:
            cli_stub = admin_pb2_grpc.AdminServiceStub(channel)
            code = _code_of(lambda: cli_stub.GetExecution(_get_request()))
        assert code == grpc.StatusCode.DEADLINE_EXCEEDED
    finally:
        process.terminate()
        process.wait(15)
