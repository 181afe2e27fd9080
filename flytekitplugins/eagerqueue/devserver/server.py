"""The dev backend: a loopback Flyte Admin that really runs tasks, on one laptop.

Example::

    with DevServer(state_dir, port=0, source_root="src") as server:
        remote = FlyteRemote(
            Config(platform=PlatformConfig(endpoint=server.endpoint, insecure=True)),
            default_project="flytesnacks",
            default_domain="development",
        )
"""

from __future__ import annotations

import ipaddress
import logging
import os
from collections.abc import Sequence
from concurrent import futures
from pathlib import Path

import grpc
from flyteidl.service import admin_pb2_grpc, dataproxy_pb2_grpc
from typing_extensions import Self

from flytekitplugins.eagerqueue.devserver.faults import FaultConfig, FaultInjector
from flytekitplugins.eagerqueue.devserver.http import DevHttpServer
from flytekitplugins.eagerqueue.devserver.runner import (
    RUNNER_KINDS,
    Runner,
    RunnerConfig,
    recover_interrupted_executions,
)
from flytekitplugins.eagerqueue.devserver.service import AdminService, DataProxyService
from flytekitplugins.eagerqueue.devserver.stats import RpcStats
from flytekitplugins.eagerqueue.devserver.store import Store

logger = logging.getLogger(__name__)

# flyte-sandbox's Admin port, so code written for the sandbox runs unchanged.
DEFAULT_PORT = 30080
# Eager workers call back into the server while other calls are in flight; 64 threads keep a
# fan-out of eager tasks from starving the gRPC server.
GRPC_WORKER_THREADS = 64
# Task processes allowed at once; each pyflyte-execute needs about 80 MB and a CPU burst.
DEFAULT_MAX_PARALLEL = 32


# flytekit's channels ping every 30 s even when idle; gRPC servers refuse pings more often
# than every 5 minutes by default and answer GOAWAY "too_many_pings", which drops the
# connection of a long-running eager task. Accept pings as often as every 10 s.
_KEEPALIVE_OPTIONS = [
    ("grpc.keepalive_permit_without_calls", 1),
    ("grpc.http2.min_recv_ping_interval_without_data_ms", 10_000),
    ("grpc.http2.max_ping_strikes", 0),
]


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def write_client_config(
    path: Path,
    endpoint: str,
    console_url: str | None = None,
    eager: dict | None = None,
) -> Path:
    """Write a flytekit config file naming ``endpoint`` without TLS or auth.

    ``console_url`` (``http://127.0.0.1:<http port>``) becomes ``console.endpoint``, which
    ``FlyteRemote.generate_console_url`` uses instead of ``http://<endpoint>``, the gRPC port.
    ``eager`` is written as the file's ``eager:`` section, which task processes read.
    """
    import yaml

    path.parent.mkdir(parents=True, exist_ok=True)
    document: dict = {"admin": {"endpoint": f"dns:///{endpoint}", "insecure": True}}
    if console_url:
        document["console"] = {"endpoint": console_url}
    if eager:
        document["eager"] = eager
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    return path


def user_eager_section() -> dict | None:
    """The ``eager:`` section of the flytekit config file this process finds, if any.

    Tasks on the dev backend read the generated config file instead of the user's, so the
    server carries this section over: settings chosen in the user's config file then apply
    to the eager runs it executes, as they would in a pod built with that file.
    """
    from flytekit.configuration.file import get_config_file

    found = get_config_file(None)
    section = (found.yaml_config or {}).get("eager") if found is not None else None
    return section if isinstance(section, dict) else None


class DevServer:
    """Admin and DataProxy over gRPC, an HTTP upload endpoint, and a local runner.

    Args:
        state_dir: directory holding ``state.db``, uploads and execution data; reused on
            restart.
        port: gRPC port; 0 picks a free one.
        host: address to bind; must be loopback unless ``allow_remote`` is True.
        http_port: port of the HTTP endpoint; 0 (the default) picks a free one.
        source_root: directory (or directories) put on the PYTHONPATH of tasks that are not
            fast-registered; defaults to the current directory.
        max_parallel: how many task processes may run at once.
        allow_remote: permit a non-loopback ``host``.
        runner: ``"process"`` (the default) runs every task attempt as a fresh
            ``pyflyte-execute`` process, as a Flyte pod would; ``"fork"`` forks attempts from a
            helper that has flytekit imported already, for fast benchmarks.

    Faults (failing RPCs, latency, killed task processes) can be switched on before or after
    ``start`` with :meth:`set_faults` and :meth:`fail_executions`.
    """

    def __init__(
        self,
        state_dir: str | os.PathLike[str],
        port: int = DEFAULT_PORT,
        host: str = "127.0.0.1",
        http_port: int = 0,
        source_root: str | os.PathLike[str] | Sequence[str | os.PathLike[str]] | None = None,
        max_parallel: int = DEFAULT_MAX_PARALLEL,
        allow_remote: bool = False,
        runner: str = "process",
    ) -> None:
        if not allow_remote and not _is_loopback(host):
            raise ValueError(
                f"host {host!r} is not a loopback address; the dev backend runs code on request "
                "without authentication, so pass allow_remote=True to bind it anyway"
            )
        if max_parallel < 1:
            raise ValueError(f"max_parallel must be at least 1, got {max_parallel}")
        if runner not in RUNNER_KINDS:
            raise ValueError(f"runner must be one of {', '.join(RUNNER_KINDS)}, got {runner!r}")
        self._runner_kind = runner
        self._faults = FaultInjector()
        self.state_dir = Path(state_dir).expanduser().resolve()
        self._port = port
        self._host = host
        self._http_port = http_port
        self._source_roots = _source_roots(source_root)
        self._max_parallel = max_parallel
        self._stats = RpcStats()
        self._store: Store | None = None
        self._runner: Runner | None = None
        self._grpc: grpc.Server | None = None
        self._http: DevHttpServer | None = None
        self._bound_port: int | None = None

    # Lifecycle.

    def start(self) -> DevServer:
        """Open the state, bind both servers and begin serving; returns once ready."""
        if self._grpc is not None:
            raise RuntimeError("the dev server is already started")
        self.state_dir.mkdir(parents=True, exist_ok=True)
        uploads = self.state_dir / "uploads"
        uploads.mkdir(exist_ok=True)
        self._store = Store(self.state_dir / "state.db")
        self._http = DevHttpServer(
            uploads, self._stats, self._host, self._http_port, faults=self._faults
        )
        server = grpc.server(
            futures.ThreadPoolExecutor(max_workers=GRPC_WORKER_THREADS),
            options=_KEEPALIVE_OPTIONS,
        )
        self._bound_port = server.add_insecure_port(f"{self._host}:{self._port}")
        if not self._bound_port:
            raise OSError(f"could not bind gRPC port {self._host}:{self._port}")
        self._runner = Runner(
            self._store,
            RunnerConfig(
                state_dir=self.state_dir,
                endpoint=self.endpoint,
                config_path=write_client_config(
                    self.config_path, self.endpoint, self.http_url, user_eager_section()
                ),
                source_roots=self._source_roots,
                max_parallel=self._max_parallel,
                runner=self._runner_kind,
            ),
            self._faults,
        )
        recovered = recover_interrupted_executions(self._store, self._runner)
        if recovered:
            logger.warning("executions left active by a previous server: %s", recovered)
        admin = AdminService(self._store, self._runner, self._stats, self._faults)
        admin_pb2_grpc.add_AdminServiceServicer_to_server(admin, server)
        proxy = DataProxyService(uploads, lambda: self.http_url, self._stats, self._faults)
        dataproxy_pb2_grpc.add_DataProxyServiceServicer_to_server(proxy, server)
        self._http.start()
        server.start()
        self._grpc = server
        logger.info("dev backend serving on %s (http %s)", self.endpoint, self.http_url)
        return self

    def stop(self) -> None:
        """Abort live executions, kill their processes and shut both servers down."""
        if self._runner is not None:
            self._runner.stop()
        if self._grpc is not None:
            self._grpc.stop(grace=1).wait()
            self._grpc = None
        if self._http is not None:
            self._http.stop()
            self._http = None
        if self._store is not None:
            self._store.close()
            self._store = None
        self._runner = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # Addresses.

    @property
    def port(self) -> int:
        """The bound gRPC port."""
        if self._bound_port is None:
            raise RuntimeError("the dev server is not started")
        return self._bound_port

    @property
    def endpoint(self) -> str:
        """``127.0.0.1:<port>``, as flytekit's ``PlatformConfig.endpoint`` takes it."""
        return f"{self._host}:{self.port}"

    @property
    def http_url(self) -> str:
        """``http://127.0.0.1:<port>`` of the HTTP endpoint."""
        if self._http is None:
            raise RuntimeError("the dev server is not started")
        return self._http.url

    @property
    def config_path(self) -> Path:
        """A generated flytekit config naming this server (``pyflyte --config <path>``)."""
        return self.state_dir / "config.yaml"

    @property
    def store(self) -> Store:
        """The open state store (for inspection in tests)."""
        if self._store is None:
            raise RuntimeError("the dev server is not started")
        return self._store

    # Counters.

    def rpc_counts(self) -> dict[str, int]:
        """Calls per method since start or the last reset, e.g. ``{"AdminService/GetTask": 2}``."""
        return self._stats.snapshot()

    def reset_rpc_counts(self) -> None:
        """Zero every RPC counter."""
        self._stats.reset()

    # Faults.

    def set_faults(
        self,
        rate: float = 0.0,
        code: str = "UNAVAILABLE",
        methods: list[str] | None = None,
        latency_ms: float = 0.0,
        seed: int | None = None,
    ) -> None:
        """Fail a fraction of gRPC calls and delay every call, from now on.

        Args:
            rate: fraction of matching calls answered with ``code`` before the handler runs.
            code: one of UNAVAILABLE, DEADLINE_EXCEEDED, RESOURCE_EXHAUSTED, INTERNAL, ABORTED.
            methods: method names such as ``"CreateExecution"``; None means every
                AdminService and DataProxyService method.
            latency_ms: milliseconds added to every call.
            seed: seed of the choice of failing calls, for repeatable runs.

        Raises:
            ValueError: naming the argument that is out of range or not allowed.
        """
        config = FaultConfig(rate, code, methods, latency_ms, seed)
        self._faults.configure(config)
        logger.info("fault injection set to %s", config)

    def clear_faults(self) -> None:
        """Stop injecting faults, including pending :meth:`fail_executions` orders."""
        self._faults.clear()

    def fail_executions(
        self, count: int, task_name: str | None = None, name_prefix: str | None = None
    ) -> None:
        """Kill the next ``count`` matching task executions shortly after their process starts.

        Each one ends FAILED with a SYSTEM error coded ``SYSTEM:ProcessKilled``. ``task_name``
        is the registered task name (``"pkg.module.task"``); ``name_prefix`` matches the
        execution name; both None match every task execution.
        """
        self._faults.fail_executions(count, task_name, name_prefix)

    def fault_counts(self) -> dict[str, object]:
        """Faults injected so far: ``{"rpc": {"AdminService/GetTask": 2}, "executions": 1}``."""
        return self._faults.counts()


def _source_roots(
    source_root: str | os.PathLike[str] | Sequence[str | os.PathLike[str]] | None,
) -> tuple[Path, ...]:
    if source_root is None:
        return (Path.cwd(),)
    if isinstance(source_root, (str, os.PathLike)):
        return (Path(source_root).resolve(),)
    return tuple(Path(root).resolve() for root in source_root)
