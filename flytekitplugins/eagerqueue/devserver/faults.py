"""Fault injection: failing gRPC calls, adding latency and killing task processes on purpose.

Tests and benchmarks switch faults on and off while the backend runs (``DevServer.set_faults``,
``POST /_dev/faults``, ``eagerqueue dev --fail-rate``), and read back how many faults were
injected. An injected RPC failure is answered with a real gRPC status before the handler runs,
so the request has no effect; an injected execution failure starts the task process and then
kills it with SIGKILL, the way a node losing its pod looks to Flyte.
"""

from __future__ import annotations

import dataclasses
import random
import threading
import time
from collections import Counter
from dataclasses import dataclass

import grpc
from flyteidl.service import admin_pb2_grpc, dataproxy_pb2_grpc

# Codes a fault may answer with: the transient ones a Flyte client meets on a real cluster.
# UNKNOWN is excluded on purpose: flytekit answers it by starting an interactive login.
ALLOWED_FAULT_CODES = (
    "UNAVAILABLE",
    "DEADLINE_EXCEEDED",
    "RESOURCE_EXHAUSTED",
    "INTERNAL",
    "ABORTED",
)
# Seconds an injected execution failure lets the task process run before killing it: long
# enough that the process really started, short enough to keep tests quick.
INJECTED_KILL_DELAY_SECONDS = 0.2
INJECTED_KILL_CODE = "SYSTEM:ProcessKilled"


def _rpc_names(service: str, base: type) -> set[str]:
    methods = {name for name in dir(base) if not name.startswith("_")}
    return methods | {f"{service}/{name}" for name in methods}


# Names a fault may target: ``CreateExecution`` or ``AdminService/CreateExecution``.
KNOWN_METHODS = frozenset(
    _rpc_names("AdminService", admin_pb2_grpc.AdminServiceServicer)
    | _rpc_names("DataProxyService", dataproxy_pb2_grpc.DataProxyServiceServicer)
)


@dataclass(frozen=True)
class FaultConfig:
    """Which gRPC calls fail, with what code, and how much latency every call gets.

    Attributes:
        rate: fraction of matching calls that fail, from 0.0 (none) to 1.0 (all).
        code: gRPC status name of the injected failures, one of ``ALLOWED_FAULT_CODES``.
        methods: method names such as ``"CreateExecution"`` (or ``"AdminService/GetTask"``)
            that may fail; None means every AdminService and DataProxyService method.
        latency_ms: milliseconds added before every call, failing or not.
        seed: seed of the random choice of failing calls; None draws a fresh one.
    """

    rate: float = 0.0
    code: str = "UNAVAILABLE"
    methods: tuple[str, ...] | None = None
    latency_ms: float = 0.0
    seed: int | None = None

    def __post_init__(self) -> None:
        if not 0.0 <= self.rate <= 1.0:
            raise ValueError(f"rate must be between 0.0 and 1.0, got {self.rate!r}")
        if self.code not in ALLOWED_FAULT_CODES:
            raise ValueError(
                f"code must be one of {', '.join(ALLOWED_FAULT_CODES)}, got {self.code!r}"
            )
        if self.latency_ms < 0:
            raise ValueError(f"latency_ms must not be negative, got {self.latency_ms!r}")
        if self.methods is not None:
            if isinstance(self.methods, str):
                raise ValueError(
                    f"methods must be a list of method names, got the string {self.methods!r}"
                )
            object.__setattr__(self, "methods", tuple(self.methods))
            unknown = [m for m in self.methods if m not in KNOWN_METHODS]
            if unknown:
                raise ValueError(
                    f"methods {unknown!r} are not AdminService or DataProxyService methods; "
                    "use names such as 'CreateExecution' or 'AdminService/GetExecution'"
                )

    def matches(self, method: str) -> bool:
        """Whether ``method`` (``"<Service>/<Method>"``) is one this config may fail."""
        if self.methods is None:
            return True
        return method in self.methods or method.rsplit("/", 1)[-1] in self.methods

    def to_json(self) -> dict[str, object]:
        """The config as JSON-ready values, with the same keys ``set_faults`` takes."""
        value = dataclasses.asdict(self)
        value["methods"] = list(self.methods) if self.methods is not None else None
        return value


@dataclass
class _ExecutionFault:
    """A pending order to kill the next ``remaining`` matching task executions."""

    remaining: int
    task_name: str | None
    name_prefix: str | None

    def matches(self, task_name: str, execution_name: str) -> bool:
        if self.task_name is not None and task_name != self.task_name:
            return False
        return self.name_prefix is None or execution_name.startswith(self.name_prefix)


class FaultInjector:
    """Thread-safe holder of the current faults and of the count of faults injected."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._config = FaultConfig()
        self._random = random.Random()
        self._rpc_counts: Counter[str] = Counter()
        self._execution_count = 0
        self._execution_faults: list[_ExecutionFault] = []

    def configure(self, config: FaultConfig) -> None:
        """Replace the RPC faults (execution faults and counts are kept)."""
        with self._lock:
            self._config = config
            self._random = random.Random(config.seed)

    def clear(self) -> None:
        """Switch every fault off, including pending execution failures."""
        with self._lock:
            self._config = FaultConfig()
            self._execution_faults.clear()

    def fail_executions(
        self, count: int, task_name: str | None = None, name_prefix: str | None = None
    ) -> None:
        """Kill the next ``count`` task executions matching the task name and name prefix."""
        if isinstance(count, bool) or not isinstance(count, int) or count < 1:
            raise ValueError(f"count must be a positive integer, got {count!r}")
        with self._lock:
            self._execution_faults.append(_ExecutionFault(count, task_name, name_prefix))

    # Called by the backend.

    def before_call(self, method: str) -> grpc.StatusCode | None:
        """Delay the call if latency is set; the status to fail it with, or None."""
        with self._lock:
            config = self._config
            fail = (
                config.rate > 0 and config.matches(method) and self._random.random() < config.rate
            )
            if fail:
                self._rpc_counts[method] += 1
        if config.latency_ms:
            time.sleep(config.latency_ms / 1000)
        return grpc.StatusCode[config.code] if fail else None

    def claim_execution(self, task_name: str, execution_name: str) -> bool:
        """Whether this task execution is one to kill; counts it when it is."""
        with self._lock:
            for fault in self._execution_faults:
                if fault.matches(task_name, execution_name):
                    fault.remaining -= 1
                    if fault.remaining == 0:
                        self._execution_faults.remove(fault)
                    self._execution_count += 1
                    return True
        return False

    # Reading back.

    def counts(self) -> dict[str, object]:
        """Faults injected so far: ``{"rpc": {"AdminService/GetTask": 2}, "executions": 1}``."""
        with self._lock:
            return {
                "rpc": dict(sorted(self._rpc_counts.items())),
                "executions": self._execution_count,
            }

    def snapshot(self) -> dict[str, object]:
        """The config, pending execution failures and counts, as JSON-ready values."""
        with self._lock:
            pending = [dataclasses.asdict(fault) for fault in self._execution_faults]
            config = self._config.to_json()
        return {"config": config, "pending_executions": pending, "counts": self.counts()}


__all__ = [
    "ALLOWED_FAULT_CODES",
    "INJECTED_KILL_CODE",
    "INJECTED_KILL_DELAY_SECONDS",
    "KNOWN_METHODS",
    "FaultConfig",
    "FaultInjector",
]
