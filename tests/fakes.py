"""A scripted, in-memory Admin behind the controller's AdminClient protocol.

Executions live in a dict. A *script* decides what each launched execution does: the
default one succeeds at once with outputs computed by the test's function. Tests can also
hold executions running and finish them by hand, inject transient failures per call, and
count calls per method.
"""

from __future__ import annotations

import collections
import dataclasses
import threading
import time
import typing

from flyteidl.core import execution_pb2
from flytekit.core.context_manager import FlyteContextManager
from flytekit.core.type_engine import TypeEngine
from flytekit.models.literals import LiteralMap

from flytekitplugins.eagerqueue.admin import ChildState, LaunchRequest, Phase
from flytekitplugins.eagerqueue.errors import TransientAdminError


@dataclasses.dataclass
class FakeExecution:
    name: str
    request: LaunchRequest
    phase: int = Phase.RUNNING
    outputs: typing.Optional[LiteralMap] = None
    error_code: str = ""
    error_message: str = ""
    error_kind: int = 0
    created_at: float = dataclasses.field(default_factory=time.time)
    updated_at: float = dataclasses.field(default_factory=time.time)

    def state(self) -> ChildState:
        return ChildState(
            name=self.name,
            phase=self.phase,
            labels=dict(self.request.labels),
            error_code=self.error_code,
            error_message=self.error_message,
            error_kind=self.error_kind,
            created_at=self.created_at,
            updated_at=self.updated_at,
        )


def python_inputs(request: LaunchRequest) -> dict[str, typing.Any]:
    """The Python values of a launch request's literals, by the entity's declared types."""
    ctx = FlyteContextManager.current_context()
    types = request.entity.python_interface.inputs
    return {
        name: TypeEngine.to_python_value(ctx, literal, types[name])
        for name, literal in request.inputs.items()
    }


def outputs_of(entity: typing.Any, value: typing.Any) -> LiteralMap:
    """A LiteralMap holding ``value`` as the entity's single output (or none)."""
    outputs = entity.python_interface.outputs
    if not outputs:
        return LiteralMap(literals={})
    ctx = FlyteContextManager.current_context()
    ((name, python_type),) = outputs.items()
    literal_type = TypeEngine.to_literal_type(python_type)
    return LiteralMap(literals={name: TypeEngine.to_literal(ctx, value, python_type, literal_type)})


class FakeAdmin:
    """In-memory AdminClient.

    Args:
        compute: maps (entity name, python inputs) to the child's result; used by the
            default script to succeed every child at once.
        hold: when true, launched executions stay RUNNING until a test finishes them.
    """

    def __init__(self, compute=None, hold: bool = False, labels_indexed: bool = True):
        self.executions: dict[str, FakeExecution] = {}
        self.calls: collections.Counter[str] = collections.Counter()
        self.compute = compute
        self.hold = hold
        self.labels_indexed = labels_indexed
        self.fail_next: collections.defaultdict[str, int] = collections.defaultdict(int)
        self.launch_hook: typing.Optional[typing.Callable[[FakeExecution], None]] = None
        self.terminated: list[str] = []
        self.lock = threading.Lock()

    # -- scripting helpers

    def finish(self, name: str, value: typing.Any = None) -> None:
        with self.lock:
            execution = self.executions[name]
            execution.outputs = outputs_of(execution.request.entity, value)
            execution.phase = Phase.SUCCEEDED
            execution.updated_at = time.time()

    def fail(self, name: str, message: str = "boom", system: bool = False, code: str = "") -> None:
        with self.lock:
            execution = self.executions[name]
            execution.phase = Phase.FAILED
            execution.error_message = message
            execution.error_code = code or ("SYSTEM:Unknown" if system else "USER:ValueError")
            execution.error_kind = (
                execution_pb2.ExecutionError.SYSTEM if system else execution_pb2.ExecutionError.USER
            )
            execution.updated_at = time.time()

    def running(self) -> list[str]:
        with self.lock:
            return [n for n, e in self.executions.items() if e.phase == Phase.RUNNING]

    async def until_running(self, count: int = 1) -> list[str]:
        """Waits (in the caller's event loop) until ``count`` executions are running."""
        import asyncio

        while len(self.running()) < count:
            await asyncio.sleep(0.01)
        return self.running()

    def _maybe_fail(self, method: str) -> None:
        self.calls[method] += 1
        if self.fail_next[method] > 0:
            self.fail_next[method] -= 1
            raise TransientAdminError(method, "UNAVAILABLE", ConnectionError("injected"))

    # -- AdminClient

    def launch(self, request: LaunchRequest) -> ChildState:
        self._maybe_fail("launch")
        with self.lock:
            existing = self.executions.get(request.name)
            if existing is not None:
                return existing.state()
            execution = FakeExecution(name=request.name, request=request)
            self.executions[request.name] = execution
        if self.launch_hook is not None:
            self.launch_hook(execution)
        elif not self.hold and self.compute is not None:
            value = self.compute(request.entity.name, python_inputs(request))
            self.finish(request.name, value)
        return self.executions[request.name].state()

    def list_finished(self, parent_tag, stop_at):
        self._maybe_fail("list_finished")
        if not self.labels_indexed:
            return []
        with self.lock:
            found = [
                e.state()
                for e in self.executions.values()
                if e.request.labels.get("eager-exec") == parent_tag and e.phase != Phase.RUNNING
            ]
        return sorted(found, key=lambda s: s.updated_at, reverse=True)

    def lists_children(self, parent_tag: str) -> bool:
        self.calls["lists_children"] += 1
        return self.labels_indexed and any(
            e.request.labels.get("eager-exec") == parent_tag for e in self.executions.values()
        )

    def get_state(self, name: str) -> ChildState:
        self._maybe_fail("get_state")
        with self.lock:
            return self.executions[name].state()

    def get_outputs(self, name: str) -> LiteralMap:
        self._maybe_fail("get_outputs")
        with self.lock:
            return self.executions[name].outputs

    def get_inputs(self, name: str) -> dict:
        self._maybe_fail("get_inputs")
        return dict(self.executions[name].request.inputs)

    def terminate(self, name: str, cause: str) -> None:
        self._maybe_fail("terminate")
        with self.lock:
            self.terminated.append(name)
            execution = self.executions.get(name)
            if execution is not None and execution.phase == Phase.RUNNING:
                execution.phase = Phase.ABORTED
                execution.error_message = cause
                execution.updated_at = time.time()

    def console_url(self, name: str) -> str:
        return f"http://console.invalid/executions/{name}"
