"""Runs the fan-out example end to end on the embedded dev backend and shows what it did.

Starts the dev backend on a free loopback port, registers and runs ``examples/fanout.py``'s
``fanout`` eager workflow with ``FlyteRemote.execute``, prints the result, then lists every
child execution the run launched (children of nested eager tasks included) with the process
that ran it. Stops the backend on the way out.

    python examples/run_demo.py --n 20
"""

from __future__ import annotations

import argparse
import datetime
import hashlib
import pathlib
import sys
import threading
import time

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import fanout  # noqa: E402
from flytekit.configuration import Config, ImageConfig, PlatformConfig, SerializationSettings  # noqa: E402
from flytekit.remote import FlyteRemote  # noqa: E402

from flytekitplugins.eagerqueue.devserver.server import DevServer  # noqa: E402

PROJECT, DOMAIN = "flytesnacks", "development"


def code_version() -> str:
    """A version that changes whenever the example's code does, so edits get registered."""
    digest = hashlib.sha256((HERE / "fanout.py").read_bytes()).hexdigest()
    return f"demo-{digest[:12]}"


def list_children(remote: FlyteRemote, root: str) -> list:
    """Every execution labelled with ``root`` as its eager root, oldest first."""
    from flytekit.models.filters import Equal

    found, token = [], None
    while True:
        page, token = remote.client.list_executions_paginated(
            PROJECT,
            DOMAIN,
            limit=100,
            token=token,
            filters=[
                Equal("execution_tag.key", "eager-root-exec"),
                Equal("execution_tag.value", root),
            ],
        )
        found.extend(page)
        if not token:
            return sorted(found, key=lambda e: e.closure.created_at)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=20, help="children in the fan-out")
    parser.add_argument("--state-dir", default=str(HERE.parent / ".eagerqueue" / "demo"))
    parser.add_argument(
        "--keep-serving", action="store_true", help="keep the backend up to browse its console"
    )
    args = parser.parse_args(argv)

    with DevServer(args.state_dir, port=0, source_root=HERE) as server:
        print(f"dev backend on {server.endpoint}, state in {server.state_dir}")
        remote = FlyteRemote(
            Config(platform=PlatformConfig(endpoint=server.endpoint, insecure=True)),
            default_project=PROJECT,
            default_domain=DOMAIN,
            data_upload_location=str(server.state_dir / "client-uploads"),
        )
        version = code_version()
        settings = SerializationSettings(
            image_config=ImageConfig.auto_default_image(), version=version
        )
        started = time.monotonic()
        execution = remote.execute(
            fanout.fanout,
            inputs={"n": args.n},
            version=version,
            serialization_settings=settings,
        )
        execution = remote.wait(execution, poll_interval=datetime.timedelta(seconds=0.2))
        took = time.monotonic() - started
        root = execution.id.name
        if execution.error is not None:
            print(f"execution {root} failed: {execution.error.message}")
            return 1
        result = execution.outputs["o0"]
        print(
            f"\nfanout(n={args.n}) = {result} (expected {fanout.expected(args.n)}) in {took:.1f}s"
        )
        print(f"root execution: {root}\n")

        children = list_children(remote, root)
        print(f"{'execution':<40} {'launched by':<40} {'entity':<24} {'phase':<10} pid")
        for child in children:
            record = server.store.get_execution(PROJECT, DOMAIN, child.id.name)
            entity = child.spec.launch_plan.name.rsplit(".", 1)[-1]
            print(
                f"{child.id.name:<40} {child.spec.labels.values.get('eager-exec', ''):<40} "
                f"{entity:<24} {_phase(child):<10} {record.pid or '-'}"
            )
        pids = {server.store.get_execution(PROJECT, DOMAIN, c.id.name).pid for c in children}
        print(
            f"\n{len(children)} child executions, run by {len(pids - {None})} separate "
            "pyflyte-execute processes"
        )
        decks = sorted((server.state_dir / "data" / PROJECT / DOMAIN / root).glob("*/*/deck.html"))
        if decks:
            print(f"\ndeck of the run: {decks[-1]}")
        page = f"{server.http_url}/console/projects/{PROJECT}/domains/{DOMAIN}/executions/{root}"
        if args.keep_serving:
            print(f"console of the run: {page}\n(serving until Ctrl-C)")
            try:
                threading.Event().wait()
            except KeyboardInterrupt:
                pass
        else:
            print("(run with --keep-serving to browse the run in the dev backend's console)")
        return 0 if result == fanout.expected(args.n) else 1


def _phase(execution) -> str:
    from flytekit.models.core.execution import WorkflowExecutionPhase

    return WorkflowExecutionPhase.enum_to_string(execution.closure.phase)


if __name__ == "__main__":
    sys.exit(main())
