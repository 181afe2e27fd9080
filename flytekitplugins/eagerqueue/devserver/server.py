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
from typing import Self

import grpc
from flyteidl.service import admin_pb2_grpc, dataproxy_pb2_grpc

from flytekitplugins.eagerqueue.devserver.http import DevHttpServer
from flytekitplugins.eagerqueue.devserver.runner import Runner, RunnerConfig
from flytekitplugins.eagerqueue.devserver.service import AdminService, DataProxyService
from flytekitplugins.eagerqueue.devserver.stats import RpcStats
from flytekitplugins.eagerqueue.devserver.store import Store, fail_interrupted_executions

logger = logging.getLogger(__name__)

# flyte-sandbox's Admin port, so code written for the sandbox runs unchanged.
DEFAULT_PORT = 30080
# Eager workers call back into the server while other calls are in flight; 64 threads keep a
# fan-out of eager tasks from starving the gRPC server.
GRPC_WORKER_THREADS = 64
# Task processes allowed at once; each pyflyte-execute needs about 80 MB and a CPU burst.
DEFAULT_MAX_PARALLEL = 32


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def write_client_config(path: Path, endpoint: str) -> Path:
    """Write a flytekit config file naming ``endpoint`` without TLS or auth."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"admin:\n  endpoint: dns:///{endpoint}\n  insecure: true\n")
    return path


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
    ) -> None:
        if not allow_remote and not _is_loopback(host):
            raise ValueError(
                f"host {host!r} is not a loopback address; the dev backend runs code on request "
                "without authentication, so pass allow_remote=True to bind it anyway"
            )
        if max_parallel < 1:
            raise ValueError(f"max_parallel must be at least 1, got {max_parallel}")
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
        failed = fail_interrupted_executions(self._store)
        if failed:
            logger.warning("failed %d executions interrupted by a previous server", failed)
        self._http = DevHttpServer(uploads, self._stats, self._host, self._http_port)
        server = grpc.server(futures.ThreadPoolExecutor(max_workers=GRPC_WORKER_THREADS))
        self._bound_port = server.add_insecure_port(f"{self._host}:{self._port}")
        if not self._bound_port:
            raise OSError(f"could not bind gRPC port {self._host}:{self._port}")
        self._runner = Runner(
            self._store,
            RunnerConfig(
                state_dir=self.state_dir,
                endpoint=self.endpoint,
                config_path=write_client_config(self.config_path, self.endpoint),
                source_roots=self._source_roots,
                max_parallel=self._max_parallel,
            ),
        )
        admin = AdminService(self._store, self._runner, self._stats)
        admin_pb2_grpc.add_AdminServiceServicer_to_server(admin, server)
        proxy = DataProxyService(uploads, lambda: self.http_url, self._stats)
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


def _source_roots(
    source_root: str | os.PathLike[str] | Sequence[str | os.PathLike[str]] | None,
) -> tuple[Path, ...]:
    if source_root is None:
        return (Path.cwd(),)
    if isinstance(source_root, (str, os.PathLike)):
        return (Path(source_root).resolve(),)
    return tuple(Path(root).resolve() for root in source_root)
