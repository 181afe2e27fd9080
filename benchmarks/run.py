"""Benchmark: flytekit's stock eager controller against this package's, in one run.

Runs the same trivial eager workflows on the embedded dev backend under both controllers
and prints one table:

* fan-out wall time of ``fan(n)`` under each controller, and the stock/ours ratio;
* the backend alone: the same ``n`` executions created directly, with no controller;
* Admin RPCs per child, by method (counted by the dev backend, registration included);
* overhead per child of a sequential chain: the gap between one child finishing and the
  next being created, which is all controller (detect, fetch outputs, launch);
* controller CPU per reconcile tick with thousands of children in flight (in-process,
  against an in-memory Admin that holds children running);
* deck rendering CPU for 5,000 children;
* the time the plugin adds to ``import flytekit``.

    python benchmarks/run.py                 # the full table (several minutes)
    python benchmarks/run.py --smoke         # small sizes, to check it still works
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import concurrent.futures
import os
import pathlib
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import typing

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from flytekit.configuration import (  # noqa: E402
    Config,
    ImageConfig,
    PlatformConfig,
    SerializationSettings,
)
from flytekit.remote import FlyteRemote  # noqa: E402

from benchmarks import bench_wfs  # noqa: E402
from flytekitplugins.eagerqueue.devserver.server import DevServer  # noqa: E402

PROJECT, DOMAIN = "flytesnacks", "development"
TERMINAL = {4, 6, 7, 8}  # SUCCEEDED, FAILED, ABORTED, TIMED_OUT (core WorkflowExecution.Phase)


class Bench:
    """A dev backend, a client, and helpers that read timings from the backend's store."""

    def __init__(self, server: DevServer, version: str):
        self.server = server
        self.version = version
        self.remote = FlyteRemote(
            Config(platform=PlatformConfig(endpoint=server.endpoint, insecure=True)),
            default_project=PROJECT,
            default_domain=DOMAIN,
            data_upload_location=str(server.state_dir / "client-uploads"),
        )
        self.ss = SerializationSettings(
            image_config=ImageConfig.auto_default_image(), version=version
        )

    def record(self, name: str):
        return self.server.store.get_execution(PROJECT, DOMAIN, name)

    def wait(self, name: str, timeout: float = 3600) -> typing.Any:
        """Waits on the store (no RPC, so the counts stay the controller's)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            record = self.record(name)
            if record.phase in TERMINAL:
                return record
            time.sleep(0.05)
        raise TimeoutError(f"{name} did not finish within {timeout}s")

    def children(self, parent: str) -> list:
        return self.server.store.eager_children(PROJECT, DOMAIN, parent)

    def run_eager(self, entity, inputs: dict, controller: str, **settings: str) -> dict:
        envs = {"FLYTE_EAGER_CONTROLLER": controller, **settings}
        self.server.reset_rpc_counts()
        started = time.monotonic()
        execution = retrying(
            lambda: self.remote.execute(
                entity,
                inputs=inputs,
                version=self.version,
                serialization_settings=self.ss,
                envs=envs,
            )
        )
        record = self.wait(execution.id.name)
        wall = time.monotonic() - started
        counts = self.server.rpc_counts()
        if record.phase != 4:
            raise RuntimeError(f"{controller}: {execution.id.name} ended in phase {record.phase}")
        return {
            "name": execution.id.name,
            "wall": wall,
            "record": record,
            "children": self.children(execution.id.name),
            "rpcs": counts,
        }

    def backend_alone(self, n: int) -> float:
        """Seconds the backend needs for an eager fan-out's executions, with no controller.

        The same 1 + ``n`` executions an eager fan-out makes: one trivial task standing in
        for the parent, then, once it finished, the ``n`` children created at once.
        """
        task = retrying(
            lambda: self.remote.fetch_task(name=bench_wfs.noop.name, version=self.version)
        )
        tag = f"alone{int(time.time() * 1000) % 10**9}"

        def create(i: int) -> str:
            name = f"{tag}-{i}" if i >= 0 else f"{tag}-parent"
            retrying(lambda: self.remote.execute(task, inputs={"i": i}, execution_name=name))
            return name

        started = time.monotonic()
        self.wait(create(-1))
        with concurrent.futures.ThreadPoolExecutor(max_workers=16) as pool:
            names = list(pool.map(create, range(n)))
        for name in names:
            self.wait(name)
        return time.monotonic() - started


def retrying(call: typing.Callable[[], typing.Any], attempts: int = 20) -> typing.Any:
    """The benchmark's own client rides out injected faults too."""
    from flytekitplugins.eagerqueue.admin import transient_code

    for attempt in range(attempts):
        try:
            return call()
        except Exception as err:  # noqa: BLE001
            if transient_code(err) is None or attempt == attempts - 1:
                raise
            time.sleep(0.05 * (attempt + 1))


PER_CHILD_METHODS = ("CreateExecution", "GetExecution", "GetExecutionData")


def split_rpcs(counts: dict, n: int) -> str:
    """RPCs that scale with children, per child, and the ones that do not, in total."""
    short = {method.split("/")[-1]: count for method, count in counts.items()}
    per = sum(short.get(m, 0) for m in PER_CHILD_METHODS) / n
    lists = short.get("ListExecutions", 0)
    rest = sum(short.values()) - per * n - lists
    return f"{per:.2f} per child + {lists} ListExecutions + {rest:.0f} registration, in all"


def per_child(counts: dict, n: int) -> tuple[float, str]:
    total = sum(counts.values())
    by_method = ", ".join(
        f"{method.split('/')[-1]} {count / n:.2f}"
        for method, count in sorted(counts.items(), key=lambda kv: -kv[1])
        if count / n >= 0.05
    )
    return total / n, by_method


def chain_overhead(run: dict) -> tuple[float, float]:
    """Mean and max gap between a child finishing and the next child being created."""
    kids = run["children"]
    gaps = [
        b.created_at - a.finished_at for a, b in zip(kids, kids[1:], strict=False) if a.finished_at
    ]
    return statistics.mean(gaps), max(gaps)


def first_launch_delay(run: dict) -> float:
    return run["children"][0].created_at - run["record"].started_at


# ---------------------------------------------------------------------------- in-process


class HeldAdmin:
    """In-memory Admin that keeps children running and finishes a few per poll."""

    def __init__(self, finish_per_poll: int):
        from flytekit.models.literals import Literal, LiteralMap, Primitive, Scalar

        self.finish_per_poll = finish_per_poll
        self.running: collections.deque[str] = collections.deque()
        self.finished: dict = {}
        self.order: list[str] = []
        self.launched = 0
        self.lock = threading.Lock()
        self.outputs = LiteralMap({"o0": Literal(scalar=Scalar(primitive=Primitive(integer=1)))})
        self.release = threading.Event()

    def launch(self, request):
        from flytekitplugins.eagerqueue.admin import ChildState, Phase

        with self.lock:
            self.running.append(request.name)
            self.launched += 1
        return ChildState(request.name, Phase.RUNNING, dict(request.labels), created_at=time.time())

    def list_finished(self, parent_tag, stop_at):
        from flytekitplugins.eagerqueue.admin import ChildState, Phase

        if self.release.is_set():
            with self.lock:
                for _ in range(min(self.finish_per_poll, len(self.running))):
                    name = self.running.popleft()
                    self.order.append(name)
                    self.finished[name] = ChildState(
                        name, Phase.SUCCEEDED, {}, updated_at=time.time()
                    )
        page = []
        with self.lock:
            newest_first = reversed(self.order)
            for name in newest_first:
                page.append(self.finished[name])
                if stop_at(self.finished[name]):
                    break
        return page

    def lists_children(self, parent_tag):
        return True

    def get_outputs(self, name):
        return self.outputs

    def console_url(self, name):
        return ""


def tick_cpu(in_flight: int, finish_per_poll: int = 10, window: float = 2.0) -> dict:
    """Controller CPU per reconcile tick with ``in_flight`` children running."""
    from flytekitplugins.eagerqueue.controller import Controller
    from flytekitplugins.eagerqueue.settings import Settings

    admin = HeldAdmin(finish_per_poll)
    controller = Controller(
        remote=None,
        ss=SerializationSettings(image_config=ImageConfig.auto_default_image(), version="v1"),
        tag="bench-parent",
        root_tag="bench-parent",
        exec_prefix="e-bench",
        settings=Settings(
            max_in_flight=in_flight,
            launch_rate=1e6,
            launch_burst=in_flight,
            poll_interval_min=0.01,
            poll_interval_max=0.01,
        ),
        admin=admin,
    )
    loop = asyncio.new_event_loop()
    threading.Thread(target=loop.run_forever, daemon=True).start()

    async def add_all():
        return await asyncio.gather(
            *(controller.add(bench_wfs.noop, {"i": i}) for i in range(in_flight))
        )

    future = asyncio.run_coroutine_threadsafe(add_all(), loop)
    while admin.launched < in_flight:
        time.sleep(0.05)
    clock = time.pthread_getcpuclockid(controller._thread.ident)
    admin.release.set()
    cpu0, ticks0 = time.clock_gettime(clock), controller.ticks
    time.sleep(window)
    cpu1, ticks1 = time.clock_gettime(clock), controller.ticks
    admin.finish_per_poll = in_flight
    future.result(timeout=120)
    controller.close()
    loop.call_soon_threadsafe(loop.stop)
    ticks = max(1, ticks1 - ticks0)
    return {"cpu_ms_per_tick": (cpu1 - cpu0) * 1000 / ticks, "ticks": ticks}


def deck_cpu(children: int) -> tuple[float, float]:
    """CPU seconds of the first deck render (which imports plotly) and of a second one."""
    from flytekitplugins.eagerqueue import deck

    now = time.time()
    views = [
        deck.ChildView(
            entity="benchmarks.bench_wfs.noop",
            kind="task",
            execution=f"e-bench-{i:020x}",
            url=f"http://127.0.0.1/console/executions/e-bench-{i:020x}",
            phase="SUCCEEDED" if i % 10 else "FAILED",
            attempts=1 + (i % 3 == 0),
            reattached=False,
            queued_at=now,
            launched_at=now + i * 0.01,
            finished_at=now + i * 0.01 + 0.5,
            error="" if i % 10 else "USER:ValueError: boom",
        )
        for i in range(children)
    ]
    snapshot = deck.RunSnapshot(tag="bench", started_at=now, children=views, rpc_calls={})
    samples = []
    for _ in range(2):
        started = time.process_time()
        deck.render(snapshot)
        samples.append(time.process_time() - started)
    return samples[0], samples[1]


def import_cost(runs: int) -> float:
    """Median milliseconds the plugin adds to ``import flytekit`` (from -X importtime)."""
    samples = []
    for _ in range(runs):
        out = subprocess.run(
            [sys.executable, "-X", "importtime", "-c", "import flytekit"],
            capture_output=True,
            text=True,
            check=True,
        ).stderr
        total = 0
        for line in out.splitlines():
            match = re.match(r"import time:\s+(\d+) \|\s+(\d+) \|( *)(\S+)", line)
            if match and match.group(4).startswith("flytekitplugins.eagerqueue"):
                depth = len(match.group(3))
                if depth == min_depth(out):
                    total += int(match.group(2))
        samples.append(total / 1000)
    return statistics.median(samples)


def min_depth(out: str) -> int:
    depths = [len(m.group(1)) for m in re.finditer(r"\|( *)flytekitplugins\.eagerqueue", out)]
    return min(depths) if depths else 0


# ---------------------------------------------------------------------------- main


class Rows(list):
    """The table's rows, each also printed as soon as it is measured."""

    def append(self, row: tuple[str, str, str]) -> None:
        print(f"  {row[0]}: stock {row[1]} | ours {row[2]}", flush=True)
        super().append(row)


def main(argv: typing.Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=200, help="children of the fan-out")
    parser.add_argument(
        "--stock-n", type=int, default=200, help="fan-out size run under stock (default: --n)"
    )
    parser.add_argument("--chain", type=int, default=20, help="length of the sequential chain")
    parser.add_argument("--stock-chain", type=int, default=5, help="chain length under stock")
    parser.add_argument("--in-flight", type=int, default=5000, help="children held in flight")
    parser.add_argument("--runner", default="fork", help="dev backend runner: fork or process")
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, to check it runs")
    parser.add_argument("--write", metavar="PATH", help="also write the table to PATH")
    parser.add_argument(
        "--process-n", type=int, default=50, help="fan-out on the process runner (0: skip)"
    )
    args = parser.parse_args(argv)
    if args.smoke:
        args.n, args.stock_n, args.chain, args.stock_chain, args.in_flight = 8, 3, 3, 2, 300
        args.process_n = 0

    rows = Rows()
    with tempfile.TemporaryDirectory(prefix="eagerqueue-bench-") as state:
        server = start_server(state, args.runner)
        try:
            bench = Bench(server, version=f"bench-{int(time.time())}")
            measure_backend(bench, args, rows)
        finally:
            server.stop()
    if args.process_n:
        with tempfile.TemporaryDirectory(prefix="eagerqueue-bench-process-") as state:
            server = start_server(state, "process")
            try:
                bench = Bench(server, version=f"bench-p-{int(time.time())}")
                measure_process_runner(bench, args.process_n, rows)
            finally:
                server.stop()

    tick = tick_cpu(args.in_flight)
    rows.append(
        (
            f"controller CPU per tick, {args.in_flight} in flight",
            "-",
            f"{tick['cpu_ms_per_tick']:.2f} ms ({tick['ticks']} ticks)",
        )
    )
    cold, warm = deck_cpu(5000)
    rows.append(
        (
            "deck render CPU, 5000 children",
            "-",
            f"{warm * 1000:.0f} ms ({cold * 1000:.0f} ms with the plotly import)",
        )
    )
    rows.append(
        ("added to `import flytekit`", "-", f"{import_cost(5 if args.smoke else 9):.1f} ms")
    )
    table = render_table(rows, args)
    print(table)
    if args.write:
        pathlib.Path(args.write).write_text(table)
        print(f"written to {args.write}")
    return 0


def start_server(state: str, runner: str) -> DevServer:
    try:
        return DevServer(state, port=0, source_root=ROOT, runner=runner).start()
    except TypeError:
        print(f"(this dev backend has no {runner!r} runner; using the process runner)")
        return DevServer(state, port=0, source_root=ROOT).start()


def measure_backend(bench: Bench, args: argparse.Namespace, rows: list) -> None:
    ours = bench.run_eager(bench_wfs.fan, {"n": args.n}, "eagerqueue")
    assert len(ours["children"]) == args.n, len(ours["children"])
    unthrottled = bench.run_eager(
        bench_wfs.fan,
        {"n": args.n},
        "eagerqueue",
        FLYTE_EAGER_LAUNCH_RATE="1000",
        FLYTE_EAGER_DECK_TIMELINE="false",
    )
    alone = bench.backend_alone(args.n)
    stock_small = bench.run_eager(bench_wfs.fan, {"n": args.stock_n}, "flytekit")
    if args.stock_n == args.n:
        stock_wall, how = stock_small["wall"], "measured"
    else:
        # Stock admits 60 launches per sliding minute on its only thread: every further
        # block of 60 children costs it another minute.
        blocks = -(-args.n // 60) - -(-args.stock_n // 60)
        stock_wall = stock_small["wall"] + 60.0 * blocks
        how = f"extrapolated from {args.stock_n} children"
    rows.append(
        (
            f"fan-out of {args.n}, wall",
            f"{stock_wall:.1f} s ({how})",
            f"{ours['wall']:.1f} s ({stock_wall / ours['wall']:.1f}x faster)",
        )
    )
    rows.append(
        (
            f"fan-out of {args.n}, wall, launch_rate=1000/s, deck.timeline=false",
            "-",
            f"{unthrottled['wall']:.1f} s ({stock_wall / unthrottled['wall']:.1f}x faster)",
        )
    )
    rows.append(
        (
            f"backend alone: the same 1 + {args.n} executions, no controller",
            "-",
            f"{alone:.1f} s; ours reaches {alone / ours['wall']:.2f} of its rate with "
            f"defaults, {alone / unthrottled['wall']:.2f} tuned as above",
        )
    )
    stock_rpc, stock_methods = per_child(stock_small["rpcs"], args.stock_n)
    ours_rpc, ours_methods = per_child(ours["rpcs"], args.n)
    rows.append(("Admin RPCs per child (all methods)", f"{stock_rpc:.2f}", f"{ours_rpc:.2f}"))
    rows.append(("  by method", stock_methods, ours_methods))
    rows.append(
        (
            "  children-bound vs constant",
            split_rpcs(stock_small["rpcs"], args.stock_n),
            split_rpcs(ours["rpcs"], args.n),
        )
    )

    chain_ours = bench.run_eager(bench_wfs.chain, {"n": args.chain}, "eagerqueue")
    chain_stock = bench.run_eager(bench_wfs.chain, {"n": args.stock_chain}, "flytekit")
    mean_o, max_o = chain_overhead(chain_ours)
    mean_s, max_s = chain_overhead(chain_stock)
    rows.append(
        (
            f"chain overhead per child (stock {args.stock_chain}, ours {args.chain})",
            f"{mean_s * 1000:.0f} ms (max {max_s * 1000:.0f})",
            f"{mean_o * 1000:.0f} ms (max {max_o * 1000:.0f})",
        )
    )
    rows.append(
        (
            "first child launched after eager start",
            f"{first_launch_delay(chain_stock) * 1000:.0f} ms",
            f"{first_launch_delay(chain_ours) * 1000:.0f} ms",
        )
    )
    rows.append(
        (
            "Admin RPCs, chain",
            split_rpcs(chain_stock["rpcs"], args.stock_chain),
            split_rpcs(chain_ours["rpcs"], args.chain),
        )
    )


def measure_process_runner(bench: Bench, n: int, rows: list) -> None:
    """Ours against the backend alone when every task is its own pyflyte-execute process."""
    ours = bench.run_eager(bench_wfs.fan, {"n": n}, "eagerqueue")
    alone = bench.backend_alone(n)
    rows.append(
        (
            f"fan-out of {n}, process runner (a pyflyte-execute per task)",
            "-",
            f"{ours['wall']:.1f} s; backend alone {alone:.1f} s; ours reaches "
            f"{alone / ours['wall']:.2f} of its rate",
        )
    )


def render_table(rows: list, args: argparse.Namespace) -> str:
    command = "python benchmarks/run.py " + " ".join(sys.argv[1:])
    lines = [
        "",
        f"eagerqueue benchmark: `{command.strip()}`",
        f"(dev backend runner={args.runner}, {os.cpu_count()} cores, "
        f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())})",
        "",
        "| measure | flytekit stock | eagerqueue |",
        "|---|---|---|",
    ]
    lines += [f"| {measure} | {stock} | {ours} |" for measure, stock, ours in rows]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
