"""Print end-to-end figures of the dev backend's runners and per-RPC handler costs.

Run with ``python tests/devserver/bench_runners.py``; it starts its own servers on free
loopback ports and a temporary state directory, and prints one line per figure.
"""

from __future__ import annotations

import sys
import tempfile
import time
import uuid
from concurrent import futures
from datetime import timedelta
from pathlib import Path

from flytekit.configuration import Config, ImageConfig, PlatformConfig
from flytekit.remote import FlyteRemote

WFS_ROOT = Path(__file__).parent / "wfs"
sys.path.insert(0, str(WFS_ROOT))

from devpkg import basic  # noqa: E402

from flytekitplugins.eagerqueue.devserver.server import DevServer  # noqa: E402

FAN_OUT = 50


def _remote(server: DevServer, uploads: Path) -> FlyteRemote:
    return FlyteRemote(
        Config(platform=PlatformConfig(endpoint=server.endpoint, insecure=True)),
        default_project="flytesnacks",
        default_domain="development",
        data_upload_location=str(uploads),
    )


def _wait(remote: FlyteRemote, execution: object) -> object:
    return remote.wait(
        execution, timeout=timedelta(seconds=600), poll_interval=timedelta(seconds=0.05)
    )


def bench_runner(kind: str, root: Path) -> None:
    with DevServer(root / kind, port=0, source_root=WFS_ROOT, runner=kind) as server:
        remote = _remote(server, root / "uploads")
        version = f"v{uuid.uuid4().hex[:8]}"
        image = ImageConfig.auto_default_image()
        first = remote.execute(basic.double, inputs={"x": 1}, version=version, image_config=image)
        _wait(remote, first)
        singles = []
        for x in range(5):
            started = time.monotonic()
            execution = remote.execute(basic.double, inputs={"x": x}, version=version)
            done = _wait(remote, execution)
            assert done.outputs["o0"] == 2 * x
            singles.append(time.monotonic() - started)
        print(f"{kind}: trivial task end to end, median of 5: {sorted(singles)[2]:.3f} s")
        started = time.monotonic()
        with futures.ThreadPoolExecutor(FAN_OUT) as pool:
            launched = list(
                pool.map(
                    lambda x: remote.execute(basic.double, inputs={"x": x}, version=version),
                    range(FAN_OUT),
                )
            )
            done = list(pool.map(lambda e: _wait(remote, e), launched))
        assert sorted(e.outputs["o0"] for e in done) == [2 * x for x in range(FAN_OUT)]
        print(f"{kind}: fan-out of {FAN_OUT} trivial tasks: {time.monotonic() - started:.2f} s")


def bench_rpcs(root: Path) -> None:
    from flyteidl.admin import common_pb2, execution_pb2

    from flytekitplugins.eagerqueue.devserver.service import AdminService
    from flytekitplugins.eagerqueue.devserver.stats import RpcStats

    with DevServer(root / "rpc", port=0) as server:
        store = server.store
        for index in range(1000):
            labels = {"eager-exec": f"parent-{index % 10}", "team": "bench"}
            store.create_execution(
                "flytesnacks", "development", f"e{index}", b"", b"", labels.items()
            )
        admin = AdminService(store, None, RpcStats())  # the two handlers need no runner
        get = execution_pb2.WorkflowExecutionGetRequest()
        get.id.project, get.id.domain, get.id.name = "flytesnacks", "development", "e500"
        listing = common_pb2.ResourceListRequest(
            filters="value_in(execution_tag.key,eager-exec)+value_in(execution_tag.value,parent-3)"
            "+value_in(phase,UNDEFINED;QUEUED;RUNNING)",
            limit=100,
        )
        listing.id.project, listing.id.domain = "flytesnacks", "development"
        for label, call, request, rounds in (
            ("GetExecution", admin.GetExecution, get, 2000),
            (
                "ListExecutions (label filter, 100 of 1000 match)",
                admin.ListExecutions,
                listing,
                300,
            ),
        ):
            call(request, None)
            started = time.perf_counter()
            for _ in range(rounds):
                call(request, None)
            cost = (time.perf_counter() - started) / rounds * 1e6
            print(f"server-side {label}: {cost:.0f} us per call")


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        bench_rpcs(root)
        for kind in sys.argv[1:] or ("process", "fork"):
            bench_runner(kind, root)


if __name__ == "__main__":
    main()
