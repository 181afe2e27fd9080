"""The ``eagerqueue`` command line: ``eagerqueue dev`` runs the dev backend in the foreground."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from collections.abc import Sequence

from flytekitplugins.eagerqueue.devserver.faults import ALLOWED_FAULT_CODES
from flytekitplugins.eagerqueue.devserver.runner import RUNNER_KINDS
from flytekitplugins.eagerqueue.devserver.server import (
    DEFAULT_MAX_PARALLEL,
    DEFAULT_PORT,
    DevServer,
)

READY_MARKER = "EAGERQUEUE_DEV_READY"
DEFAULT_STATE_DIR = "~/.eagerqueue/dev"


def build_parser() -> argparse.ArgumentParser:
    """The argument parser, one subcommand per tool."""
    parser = argparse.ArgumentParser(prog="eagerqueue", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    dev = commands.add_parser("dev", help="run the local dev backend in the foreground")
    dev.add_argument("--port", type=int, default=DEFAULT_PORT, help="gRPC port (0: any free)")
    dev.add_argument("--http-port", type=int, default=0, help="HTTP port (default: any free)")
    dev.add_argument("--state-dir", default=DEFAULT_STATE_DIR, help="state directory")
    dev.add_argument(
        "--source-root",
        action="append",
        help="directory on the PYTHONPATH of non-fast tasks; repeatable (default: .)",
    )
    dev.add_argument(
        "--max-parallel",
        type=int,
        default=DEFAULT_MAX_PARALLEL,
        help="task processes allowed at once",
    )
    dev.add_argument(
        "--runner",
        choices=RUNNER_KINDS,
        default="process",
        help="process: a fresh pyflyte-execute per task (default); fork: fork from a warm helper",
    )
    dev.add_argument("--log-level", default="INFO", help="logging level (default: INFO)")
    faults = dev.add_argument_group("fault injection (also switchable at /_dev/faults)")
    faults.add_argument(
        "--fail-rate", type=float, default=0.0, help="fraction of gRPC calls to fail (0.0-1.0)"
    )
    faults.add_argument(
        "--fail-code",
        choices=ALLOWED_FAULT_CODES,
        default="UNAVAILABLE",
        help="status code of failed calls (default: UNAVAILABLE)",
    )
    faults.add_argument(
        "--fail-methods",
        help="comma-separated methods that may fail, e.g. CreateExecution,GetExecution "
        "(default: all)",
    )
    faults.add_argument(
        "--latency-ms", type=float, default=0.0, help="milliseconds added to every gRPC call"
    )
    faults.add_argument("--seed", type=int, help="seed of the choice of failing calls")
    dev.set_defaults(run=run_dev)
    return parser


def run_dev(args: argparse.Namespace) -> int:
    """Serve until SIGINT or SIGTERM, then stop cleanly."""
    logging.basicConfig(
        level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    server = DevServer(
        args.state_dir,
        port=args.port,
        http_port=args.http_port,
        source_root=args.source_root,
        max_parallel=args.max_parallel,
        runner=args.runner,
    )
    methods = (
        [m.strip() for m in args.fail_methods.split(",") if m.strip()]
        if args.fail_methods
        else None
    )
    server.set_faults(
        rate=args.fail_rate,
        code=args.fail_code,
        methods=methods,
        latency_ms=args.latency_ms,
        seed=args.seed,
    )
    server.start()
    try:
        _print_banner(server)
        while not stop.wait(0.5):
            pass
    finally:
        server.stop()
    return 0


def _print_banner(server: DevServer) -> None:
    lines = [
        f"eagerqueue dev backend: gRPC {server.endpoint}, HTTP {server.http_url}",
        f"state directory: {server.state_dir}",
        "client environment:",
        f"  export FLYTE_PLATFORM_URL={server.endpoint} FLYTE_PLATFORM_INSECURE=True",
        f"config file: {server.config_path}",
        f"  pyflyte --config {server.config_path} run --remote <file.py> <workflow>",
        (
            f"{READY_MARKER} endpoint={server.endpoint} http={server.http_url} "
            f"config={server.config_path}"
        ),
    ]
    print("\n".join(lines), flush=True)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``eagerqueue`` console script."""
    args = build_parser().parse_args(argv)
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())
