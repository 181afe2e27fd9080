"""Running executions: task containers as local processes, workflows node by node.

Each execution runs on its own thread; a workflow runs its ready nodes concurrently on a pool
sized to its node count. Task attempts are ``pyflyte-execute`` (or ``pyflyte-fast-execute``)
processes started from the task template's container args, each in its own process group and
working directory, with the environment a Flyte pod gets. A semaphore bounds how many of those
processes run at once; an execution waiting for it stays QUEUED.

Two launchers start those processes: the process runner starts a fresh interpreter per attempt,
exactly as a pod would; the fork runner (``forkserver.py``) forks it from a helper that has
flytekit imported already. Nothing past ``_run_process`` knows which one ran a task.

Every task process's pid, start time and attempt directory are recorded, so that a server
restarted on the same state can adopt processes that outlived its predecessor
(:func:`recover_interrupted_executions`).
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import secrets
import signal
import string
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from concurrent import futures
from dataclasses import dataclass, field
from pathlib import Path

from flyteidl.admin import execution_pb2
from flyteidl.core import (
    compiler_pb2,
    errors_pb2,
    literals_pb2,
    tasks_pb2,
)
from flyteidl.core import execution_pb2 as core_execution_pb2
from flyteidl.core import workflow_pb2 as core_wf

from flytekitplugins.eagerqueue.devserver import catalog
from flytekitplugins.eagerqueue.devserver.errors import (
    AlreadyExistsError,
    InvalidArgumentError,
)
from flytekitplugins.eagerqueue.devserver.faults import (
    INJECTED_KILL_CODE,
    INJECTED_KILL_DELAY_SECONDS,
    FaultInjector,
)
from flytekitplugins.eagerqueue.devserver.forkserver import ForkServerClient
from flytekitplugins.eagerqueue.devserver.processes import (
    AdoptedProcess,
    TaskProcess,
    process_matches,
    process_start_time,
)
from flytekitplugins.eagerqueue.devserver.store import (
    RESTART_ERROR_MESSAGE,
    ExecutionRecord,
    Phase,
    Store,
)

logger = logging.getLogger(__name__)

ErrorKind = core_execution_pb2.ExecutionError.ErrorKind
QUEUED = Phase.Value("QUEUED")
RUNNING = Phase.Value("RUNNING")
SUCCEEDED = Phase.Value("SUCCEEDED")
FAILED = Phase.Value("FAILED")
ABORTED = Phase.Value("ABORTED")

# Real Admin's rule for execution names (a DNS-1123 label that starts with a letter).
EXECUTION_NAME_PATTERN = re.compile(r"^[a-z][a-z0-9-]*$")
EXECUTION_NAME_MAX_LENGTH = 63
# Generated names look like Admin's: a letter then 19 lowercase letters or digits.
_GENERATED_NAME_LENGTH = 19
# Seconds between SIGTERM and SIGKILL of a terminated task's process group; pyflyte-execute
# needs a moment to forward the signal and exit.
DEFAULT_KILL_GRACE_SECONDS = 2.0
# How often a launch-plan node checks its child execution; local and cheap.
_CHILD_POLL_SECONDS = 0.1
# Lines of a task's log quoted in the error of a process that died without an error document.
_LOG_TAIL_LINES = 30
RUNNER_KINDS = ("process", "fork")

_TEMPLATE_VARIABLE = re.compile(r"\{\{\s*[.$]([A-Za-z_]+)\s*\}\}")
_WORKFLOW_INPUT_NODES = frozenset({"", "start-node"})


def validate_execution_name(name: str) -> str:
    """Return ``name``, or a generated name when it is empty.

    Raises:
        InvalidArgumentError: naming the name when it breaks Admin's naming rule.
    """
    if not name:
        alphabet = string.ascii_lowercase + string.digits
        return "a" + "".join(secrets.choice(alphabet) for _ in range(_GENERATED_NAME_LENGTH))
    if len(name) > EXECUTION_NAME_MAX_LENGTH:
        raise InvalidArgumentError(
            f"execution name {name!r} is {len(name)} characters long; "
            f"at most {EXECUTION_NAME_MAX_LENGTH} are allowed"
        )
    if not EXECUTION_NAME_PATTERN.match(name):
        raise InvalidArgumentError(
            f"execution name {name!r} is invalid: it must match {EXECUTION_NAME_PATTERN.pattern}"
        )
    return name


def derive_child_name(parent: str, node_id: str) -> str:
    """A valid, deterministic execution name for a launch-plan node of ``parent``."""
    candidate = re.sub(r"[^a-z0-9-]", "-", f"{parent}-{node_id}".lower())
    if len(candidate) <= EXECUTION_NAME_MAX_LENGTH:
        return candidate
    digest = hashlib.md5(candidate.encode()).hexdigest()[:12]
    return f"{candidate[: EXECUTION_NAME_MAX_LENGTH - 13]}-{digest}"


def substitute_template_variables(arg: str, values: dict[str, str]) -> str:
    """Replace ``{{.Input}}``-style variables (any case, ``.`` or ``$``) known in ``values``."""

    def replace(match: re.Match[str]) -> str:
        return values.get(match[1].lower(), match[0])

    return _TEMPLATE_VARIABLE.sub(replace, arg)


def rewrite_dest_dir(args: list[str], workdir: Path) -> list[str]:
    """Point ``pyflyte-fast-execute --dest-dir`` at the attempt's working directory.

    ``pyflyte register`` defaults it to ``/root``, which a laptop does not have.
    """
    if not args or os.path.basename(args[0]) != "pyflyte-fast-execute":
        return args
    rewritten = list(args)
    end = rewritten.index("--") if "--" in rewritten else len(rewritten)
    for index in range(1, end):
        if rewritten[index] == "--dest-dir" and index + 1 < end:
            rewritten[index + 1] = str(workdir)
        elif rewritten[index].startswith("--dest-dir="):
            rewritten[index] = f"--dest-dir={workdir}"
    return rewritten


def system_error(message: str, code: str = "DevBackendError") -> core_execution_pb2.ExecutionError:
    """An ExecutionError of kind SYSTEM."""
    return core_execution_pb2.ExecutionError(code=code, message=message, kind=ErrorKind.SYSTEM)


def _not_supported(what: str) -> NodeResult:
    return NodeResult.failed(
        system_error(f"{what} is not supported by the dev backend", code="NotSupported")
    )


@dataclass(frozen=True)
class NodeResult:
    """The outcome of a task attempt, a node or a whole workflow."""

    phase: int
    outputs: literals_pb2.LiteralMap | None = None
    error: core_execution_pb2.ExecutionError | None = None
    retryable: bool = False

    @classmethod
    def failed(
        cls, error: core_execution_pb2.ExecutionError, retryable: bool = False
    ) -> NodeResult:
        """A FAILED result carrying ``error``."""
        return cls(FAILED, error=error, retryable=retryable)


@dataclass(frozen=True)
class RunnerConfig:
    """Settings of the runner.

    Attributes:
        state_dir: root of all execution data (``<state_dir>/data/...``).
        endpoint: the gRPC endpoint workers call back into (``127.0.0.1:<port>``).
        config_path: generated flytekit config naming that endpoint, given to workers.
        source_roots: directories put on PYTHONPATH of tasks that are not fast-registered.
        max_parallel: how many task processes may run at once.
        kill_grace_seconds: seconds between SIGTERM and SIGKILL on terminate.
        runner: ``"process"`` starts every task attempt as a fresh interpreter, exactly as a
            pod would; ``"fork"`` forks it from a helper process that has flytekit imported
            already, which is much cheaper for short tasks.
    """

    state_dir: Path
    endpoint: str
    config_path: Path
    source_roots: tuple[Path, ...]
    max_parallel: int = 32
    kill_grace_seconds: float = DEFAULT_KILL_GRACE_SECONDS
    runner: str = "process"

    def __post_init__(self) -> None:
        if self.runner not in RUNNER_KINDS:
            raise ValueError(
                f"runner must be one of {', '.join(RUNNER_KINDS)}, got {self.runner!r}"
            )


@dataclass
class _Run:
    """A live execution: its record, the processes it owns and whether it was aborted."""

    record: ExecutionRecord
    spec: execution_pb2.ExecutionSpec
    workflow_name: str = ""
    aborted: threading.Event = field(default_factory=threading.Event)
    processes: set[TaskProcess] = field(default_factory=set)
    lock: threading.Lock = field(default_factory=threading.Lock)
    started: bool = False
    thread: threading.Thread | None = None

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.record.project, self.record.domain, self.record.name)


@dataclass(frozen=True)
class _Graph:
    """What a workflow run needs to look up: task templates and sub-workflows by id."""

    tasks: dict[catalog.IdKey, tasks_pb2.TaskTemplate]
    sub_workflows: dict[catalog.IdKey, core_wf.WorkflowTemplate]

    @classmethod
    def from_closure(cls, closure: compiler_pb2.CompiledWorkflowClosure) -> _Graph:
        tasks = {catalog.id_key(t.template.id): t.template for t in closure.tasks}
        subs = {catalog.id_key(w.template.id): w.template for w in closure.sub_workflows}
        return cls(tasks, subs)


class Runner:
    """Starts, runs, terminates and stops executions recorded in a :class:`Store`."""

    def __init__(
        self, store: Store, config: RunnerConfig, faults: FaultInjector | None = None
    ) -> None:
        self._store = store
        self._config = config
        self._faults = faults
        self._slots = threading.BoundedSemaphore(config.max_parallel)
        self._runs: dict[tuple[str, str, str], _Run] = {}
        self._lock = threading.Lock()
        self._stopping = False
        self._launcher = _make_launcher(config)

    # Launching.

    def launch(
        self,
        project: str,
        domain: str,
        name: str,
        spec: execution_pb2.ExecutionSpec,
        inputs: literals_pb2.LiteralMap,
        parent_name: str | None = None,
    ) -> ExecutionRecord:
        """Validate, record and start an execution of a task or launch plan.

        Raises:
            InvalidArgumentError: on a bad name, target or inputs.
            NotFoundError: when the task or launch plan is not registered.
            AlreadyExistsError: when the name is taken.
        """
        name = validate_execution_name(name)
        target = spec.launch_plan
        if target.resource_type == catalog.ResourceType.TASK:
            catalog.task_template(self._store, target)
            merged, workflow_name = inputs, ""
        elif target.resource_type == catalog.ResourceType.LAUNCH_PLAN:
            lp_spec = catalog.launch_plan_spec(self._store, target)
            catalog.compile_workflow(self._store, lp_spec.workflow_id)
            merged = catalog.merge_launch_plan_inputs(lp_spec, inputs)
            workflow_name = lp_spec.workflow_id.name
        else:
            raise InvalidArgumentError(
                f"spec.launch_plan must name a TASK or LAUNCH_PLAN, got {catalog.describe(target)}"
            )
        tags = [(k, v) for k, v in spec.labels.values.items()] + [(t, "") for t in spec.tags]
        record = self._store.create_execution(
            project,
            domain,
            name,
            spec.SerializeToString(),
            merged.SerializeToString(),
            tags,
            parent_name=parent_name,
        )
        self._start(_Run(record, spec, workflow_name))
        return record

    def _start(self, run: _Run, work: Callable[[], NodeResult] | None = None) -> None:
        """Run ``work`` (by default the execution's target) on the execution's own thread."""
        with self._lock:
            if self._stopping:
                self._store.finish(run.record.id, ABORTED, abort_cause="dev backend stopped")
                return
            self._runs[run.key] = run
        run.thread = threading.Thread(
            target=self._execute, args=(run, work), name=f"exec-{run.record.name}", daemon=True
        )
        run.thread.start()
        logger.info("execution %s/%s/%s %s", *run.key, "queued" if work is None else "adopted")

    # Picking up after a previous server.

    def resume(self, record: ExecutionRecord) -> None:
        """Start a recorded QUEUED task execution that a previous server never started."""
        spec = execution_pb2.ExecutionSpec.FromString(record.spec)
        self._start(_Run(record, spec))

    def adopt(self, record: ExecutionRecord, process: AdoptedProcess, directory: Path) -> None:
        """Watch a task process a previous server started, and finish the execution from it."""
        spec = execution_pb2.ExecutionSpec.FromString(record.spec)
        run = _Run(record, spec, started=True)
        run.processes.add(process)

        def watch() -> NodeResult:
            process.wait()
            with run.lock:
                run.processes.discard(process)
            if run.aborted.is_set():
                return NodeResult(ABORTED)
            return read_task_result(directory, None)

        self._start(run, watch)

    def _mark_started(self, run: _Run) -> bool:
        """Move the execution to RUNNING the first time work starts; False if it was aborted."""
        with run.lock:
            if run.started:
                return not run.aborted.is_set()
            run.started = True
        if self._store.mark_running(run.record.id):
            logger.info("execution %s/%s/%s running", *run.key)
            return True
        run.aborted.set()
        return False

    def _execute(self, run: _Run, work: Callable[[], NodeResult] | None) -> None:
        try:
            result = work() if work is not None else self._execute_target(run)
        except Exception as exc:
            logger.exception("execution %s/%s/%s crashed", *run.key)
            result = NodeResult.failed(system_error(f"dev backend crashed: {exc!r}"))
        finally:
            with self._lock:
                self._runs.pop(run.key, None)
        if run.aborted.is_set() or result.phase == ABORTED:
            return
        outputs = result.outputs.SerializeToString() if result.outputs is not None else None
        error = result.error.SerializeToString() if result.error is not None else None
        if self._store.finish(run.record.id, result.phase, outputs=outputs, error=error):
            logger.info("execution %s/%s/%s %s", *run.key, Phase.Name(result.phase))

    def _execute_target(self, run: _Run) -> NodeResult:
        inputs = literals_pb2.LiteralMap.FromString(run.record.inputs)
        target = run.spec.launch_plan
        if target.resource_type == catalog.ResourceType.TASK:
            template = catalog.task_template(self._store, target)
            return self._run_task(run, template, inputs, "n0")
        lp_spec = catalog.launch_plan_spec(self._store, target)
        closure = catalog.compile_workflow(self._store, lp_spec.workflow_id)
        if not self._mark_started(run):
            return NodeResult(ABORTED)
        graph = _Graph.from_closure(closure)
        return self._run_workflow(run, closure.primary.template, graph, inputs, "")

    # Tasks.

    def _run_task(
        self,
        run: _Run,
        template: tasks_pb2.TaskTemplate,
        inputs: literals_pb2.LiteralMap,
        node: str,
    ) -> NodeResult:
        attempts = template.metadata.retries.retries + 1
        result = NodeResult(ABORTED)
        for attempt in range(attempts):
            result = self._run_task_attempt(run, template, inputs, node, attempt)
            if result.phase == SUCCEEDED or not result.retryable or run.aborted.is_set():
                return result
            logger.info(
                "execution %s/%s/%s node %s attempt %d failed; retrying", *run.key, node, attempt
            )
        return result

    def _attempt_dir(self, run: _Run, node: str, attempt: int) -> Path:
        project, domain, name = run.key
        path = self._config.state_dir / "data" / project / domain / name / node / str(attempt)
        (path / "wd").mkdir(parents=True, exist_ok=True)
        (path / "raw").mkdir(parents=True, exist_ok=True)
        return path

    def _run_task_attempt(
        self,
        run: _Run,
        template: tasks_pb2.TaskTemplate,
        inputs: literals_pb2.LiteralMap,
        node: str,
        attempt: int,
    ) -> NodeResult:
        if not template.HasField("container"):
            return _not_supported(f"task type {template.type!r} without a container")
        directory = self._attempt_dir(run, node, attempt)
        (directory / "inputs.pb").write_bytes(inputs.SerializeToString())
        (directory / "task.pb").write_bytes(template.SerializeToString())
        values = self._template_values(run, directory, node, attempt)
        args = [
            substitute_template_variables(a, values)
            for a in [*template.container.command, *template.container.args]
        ]
        args = rewrite_dest_dir(args, directory / "wd")
        env = self._task_env(run, template, attempt, fast=_is_fast(args))
        with self._slots:
            if run.aborted.is_set() or not self._mark_started(run):
                return NodeResult(ABORTED)
            injected = self._faults is not None and self._faults.claim_execution(
                template.id.name, run.record.name
            )
            kill_after = INJECTED_KILL_DELAY_SECONDS if injected else None
            rc = self._run_process(run, args, directory, env, kill_after)
        if run.aborted.is_set():
            return NodeResult(ABORTED)
        if injected:
            logger.info("execution %s/%s/%s killed by an injected fault", *run.key)
            return NodeResult.failed(
                system_error(
                    "injected fault (fail_executions): the dev backend killed the task process "
                    f"with SIGKILL {INJECTED_KILL_DELAY_SECONDS} s after it started",
                    code=INJECTED_KILL_CODE,
                )
            )
        return read_task_result(directory, rc)

    def _template_values(
        self, run: _Run, directory: Path, node: str, attempt: int
    ) -> dict[str, str]:
        return {
            "input": str(directory / "inputs.pb"),
            "inputprefix": str(directory),
            "outputprefix": str(directory),
            "rawoutputdataprefix": str(directory / "raw"),
            "checkpointoutputprefix": str(directory / "checkpoint"),
            "prevcheckpointprefix": "",
            "perretryuniquekey": f"{run.record.name}-{node}-{attempt}",
            "tasktemplatepath": str(directory / "task.pb"),
        }

    def _task_env(
        self, run: _Run, template: tasks_pb2.TaskTemplate, attempt: int, fast: bool
    ) -> dict[str, str]:
        project, domain, name = run.key
        env = {k: v for k, v in os.environ.items() if k != "_FLYTECTL_CONFIG_PYFLYTE_OVERRIDE"}
        env["PATH"] = os.pathsep.join([os.path.dirname(sys.executable), env.get("PATH", "")])
        if not fast and self._config.source_roots:
            roots = [str(root) for root in self._config.source_roots]
            env["PYTHONPATH"] = os.pathsep.join([*roots, *filter(None, [env.get("PYTHONPATH")])])
        task_id = template.id
        env.update(
            {
                "FLYTE_INTERNAL_EXECUTION_PROJECT": project,
                "FLYTE_INTERNAL_EXECUTION_DOMAIN": domain,
                "FLYTE_INTERNAL_EXECUTION_ID": name,
                "FLYTE_INTERNAL_EXECUTION_WORKFLOW": run.workflow_name or task_id.name,
                "FLYTE_INTERNAL_EXECUTION_LAUNCHPLAN": run.spec.launch_plan.name,
                "FLYTE_INTERNAL_TASK_PROJECT": task_id.project,
                "FLYTE_INTERNAL_TASK_DOMAIN": task_id.domain,
                "FLYTE_INTERNAL_TASK_NAME": task_id.name,
                "FLYTE_INTERNAL_TASK_VERSION": task_id.version,
                "FLYTE_ATTEMPT_NUMBER": str(attempt),
            }
        )
        env.update({pair.key: pair.value for pair in template.container.env})
        env.update({pair.key: pair.value for pair in run.spec.envs.values})
        env["FLYTE_PLATFORM_URL"] = self._config.endpoint
        env["FLYTE_PLATFORM_INSECURE"] = "True"
        env["FLYTECTL_CONFIG"] = str(self._config.config_path)
        return env

    def _run_process(
        self,
        run: _Run,
        args: list[str],
        directory: Path,
        env: dict[str, str],
        kill_after: float | None = None,
    ) -> int | None:
        """Run one task process to completion and return its exit code (127 if not found).

        With ``kill_after``, the process group is killed with SIGKILL that many seconds after
        the start (an injected fault).
        """
        log_path = directory / "task.log"
        try:
            process = self._launcher.spawn(args, directory / "wd", env, log_path)
        except OSError as exc:
            with open(log_path, "ab") as log:
                log.write(f"could not start {args[:1]}: {exc}\n".encode())
            return 127
        with run.lock:
            run.processes.add(process)
        start_time = process_start_time(process.pid)
        self._store.set_process(run.record.id, process.pid, process.pid, start_time, directory)
        if run.aborted.is_set():
            self._kill(process)
        try:
            if kill_after is not None:
                time.sleep(kill_after)
                _signal_group(process.pid, signal.SIGKILL)
            return process.wait()
        finally:
            with run.lock:
                run.processes.discard(process)

    # Workflows.

    def _run_workflow(
        self,
        run: _Run,
        template: core_wf.WorkflowTemplate,
        graph: _Graph,
        inputs: literals_pb2.LiteralMap,
        prefix: str,
    ) -> NodeResult:
        nodes = {n.id: n for n in template.nodes if n.id not in ("start-node", "end-node")}
        depends = {node_id: _dependencies(node) & nodes.keys() for node_id, node in nodes.items()}
        outputs: dict[str, literals_pb2.LiteralMap] = {key: inputs for key in _WORKFLOW_INPUT_NODES}
        failure: NodeResult | None = None
        pending = set(nodes)
        running: dict[futures.Future[NodeResult], str] = {}
        with futures.ThreadPoolExecutor(max_workers=max(1, len(nodes))) as pool:
            while pending or running:
                if failure is None and not run.aborted.is_set():
                    for node_id in sorted(n for n in pending if depends[n] <= outputs.keys()):
                        pending.discard(node_id)
                        future = pool.submit(
                            self._run_node, run, nodes[node_id], graph, outputs, prefix
                        )
                        running[future] = node_id
                if not running:
                    break
                done, _ = futures.wait(running, return_when=futures.FIRST_COMPLETED)
                for future in done:
                    node_id = running.pop(future)
                    result = future.result()
                    if result.phase == SUCCEEDED:
                        outputs[node_id] = result.outputs or literals_pb2.LiteralMap()
                    elif failure is None:
                        failure = result
        if run.aborted.is_set():
            return NodeResult(ABORTED)
        if failure is not None:
            self._run_failure_node(run, template, graph, outputs, prefix)
            return failure
        if pending:
            return NodeResult.failed(
                system_error(f"nodes {sorted(pending)} could not be scheduled")
            )
        try:
            return NodeResult(SUCCEEDED, outputs=resolve_bindings(template.outputs, outputs))
        except InvalidArgumentError as exc:
            return NodeResult.failed(system_error(exc.message))

    def _run_failure_node(
        self,
        run: _Run,
        template: core_wf.WorkflowTemplate,
        graph: _Graph,
        outputs: dict[str, literals_pb2.LiteralMap],
        prefix: str,
    ) -> None:
        if not template.HasField("failure_node") or run.aborted.is_set():
            return
        node = template.failure_node
        result = self._run_node(run, node, graph, outputs, prefix)
        logger.info(
            "execution %s/%s/%s failure node %s %s", *run.key, node.id, Phase.Name(result.phase)
        )

    def _run_node(
        self,
        run: _Run,
        node: core_wf.Node,
        graph: _Graph,
        outputs: dict[str, literals_pb2.LiteralMap],
        prefix: str,
    ) -> NodeResult:
        try:
            inputs = resolve_bindings(node.inputs, outputs)
        except InvalidArgumentError as exc:
            return NodeResult.failed(system_error(f"node {node.id}: {exc.message}"))
        kind = node.WhichOneof("target")
        if kind == "task_node":
            template = graph.tasks.get(catalog.id_key(node.task_node.reference_id))
            if template is None:
                template = catalog.task_template(self._store, node.task_node.reference_id)
            return self._run_task(run, template, inputs, prefix + node.id)
        if kind == "workflow_node" and node.workflow_node.HasField("sub_workflow_ref"):
            sub = graph.sub_workflows.get(catalog.id_key(node.workflow_node.sub_workflow_ref))
            if sub is None:
                return NodeResult.failed(system_error(f"sub-workflow of node {node.id} is missing"))
            return self._run_workflow(run, sub, graph, inputs, f"{prefix}{node.id}-")
        if kind == "workflow_node":
            return self._run_launch_plan_node(run, node, inputs, prefix)
        return _not_supported(f"{kind or 'empty'} node {node.id!r}")

    def _run_launch_plan_node(
        self, run: _Run, node: core_wf.Node, inputs: literals_pb2.LiteralMap, prefix: str
    ) -> NodeResult:
        project, domain, parent = run.key
        name = derive_child_name(parent, prefix + node.id)
        spec = execution_pb2.ExecutionSpec()
        spec.launch_plan.CopyFrom(node.workflow_node.launchplan_ref)
        spec.metadata.mode = execution_pb2.ExecutionMetadata.CHILD_WORKFLOW
        spec.metadata.nesting = run.spec.metadata.nesting + 1
        spec.envs.CopyFrom(run.spec.envs)
        try:
            self.launch(project, domain, name, spec, inputs, parent_name=parent)
        except AlreadyExistsError:
            logger.info("execution %s/%s/%s exists; waiting for it", project, domain, name)
        while not run.aborted.is_set():
            child = self._store.get_execution(project, domain, name)
            if child.is_terminal:
                return _result_of(child)
            time.sleep(_CHILD_POLL_SECONDS)
        return NodeResult(ABORTED)

    # Terminating.

    def terminate(self, project: str, domain: str, name: str, cause: str) -> None:
        """Abort an execution and, recursively, every active execution it launched.

        Terminal executions are left as they are, so repeating the call is harmless.

        Raises:
            NotFoundError: when the execution does not exist.
        """
        record = self._store.get_execution(project, domain, name)
        if not record.is_terminal and self._store.finish(record.id, ABORTED, abort_cause=cause):
            logger.info("execution %s/%s/%s aborted", project, domain, name)
        with self._lock:
            run = self._runs.get((project, domain, name))
        if run is not None:
            self._abort_run(run)
        for child in self._store.find_active_children(name):
            self.terminate(
                child.project, child.domain, child.name, f"parent {name} aborted: {cause}"
            )

    def _abort_run(self, run: _Run) -> None:
        run.aborted.set()
        with run.lock:
            processes = list(run.processes)
        for process in processes:
            self._kill(process)

    def _kill(self, process: TaskProcess) -> None:
        """SIGTERM the process group now and SIGKILL it after the grace period."""
        _signal_group(process.pid, signal.SIGTERM)

        def escalate() -> None:
            try:
                process.wait(self._config.kill_grace_seconds)
            except subprocess.TimeoutExpired:
                pass
            _signal_group(process.pid, signal.SIGKILL)

        threading.Thread(target=escalate, name=f"kill-{process.pid}", daemon=True).start()

    def stop(self, timeout: float = 10.0) -> None:
        """Abort every live execution, kill its processes and wait for its thread to end."""
        with self._lock:
            self._stopping = True
            runs = list(self._runs.values())
        for run in runs:
            self._store.finish(run.record.id, ABORTED, abort_cause="dev backend stopped")
            self._abort_run(run)
        deadline = time.monotonic() + timeout
        for run in runs:
            if run.thread is not None:
                run.thread.join(max(0.0, deadline - time.monotonic()))
        self._launcher.close()


class _ProcessLauncher:
    """Starts each task attempt as a fresh process, as a Flyte pod would."""

    def spawn(self, args: list[str], cwd: Path, env: dict[str, str], log_path: Path) -> TaskProcess:
        with open(log_path, "wb") as log:
            return subprocess.Popen(
                args,
                cwd=cwd,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def close(self) -> None:
        pass


def _make_launcher(config: RunnerConfig) -> _ProcessLauncher | ForkServerClient:
    if config.runner == "fork":
        return ForkServerClient(config.state_dir / "forkserver.log")
    return _ProcessLauncher()


def recover_interrupted_executions(store: Store, runner: Runner) -> dict[str, int]:
    """Pick up the executions a previous server process left active.

    - A task execution whose process still runs (same pid and start time as recorded) is
      adopted: watched until it exits, then finished from its ``error.pb``/``outputs.pb``.
    - A task execution whose process is gone but left ``error.pb`` or ``outputs.pb`` is
      finished from those files.
    - A QUEUED task execution that never started a process is started now, and so is a
      RUNNING one whose process was never recorded: the server died between marking it
      running and starting it. (Should it have died in the instant between starting the
      process and recording it, that attempt runs twice, as a retried pod would.)
    - Anything else, including every workflow execution (those are driven by threads of the
      server that died), is FAILED with a SYSTEM error so that a retry policy may relaunch
      it; a surviving process of it is killed.

    Returns how many executions took each path, e.g. ``{"adopted": 1, "failed": 2}``.
    """
    outcomes: Counter[str] = Counter()
    for record in store.active_executions():
        outcome = _recover(store, runner, record)
        outcomes[outcome] += 1
        logger.info(
            "execution %s/%s/%s %s after restart",
            record.project,
            record.domain,
            record.name,
            outcome,
        )
    return dict(outcomes)


def _recover(store: Store, runner: Runner, record: ExecutionRecord) -> str:
    try:
        spec = execution_pb2.ExecutionSpec.FromString(record.spec)
        is_task = spec.launch_plan.resource_type == catalog.ResourceType.TASK
    except Exception:
        is_task = False
    alive = record.pid is not None and process_matches(record.pid, record.process_start)
    directory = Path(record.attempt_dir) if record.attempt_dir else None

    if is_task and record.pid is None and record.phase in (QUEUED, RUNNING):
        if record.phase == QUEUED or store.requeue_unstarted(record.id):
            runner.resume(record)
            return "restarted"
    if is_task and alive and directory is not None:
        runner.adopt(record, AdoptedProcess(record.pid, record.process_start), directory)
        return "adopted"
    left_files = directory is not None and any(
        (directory / name).exists() for name in ("error.pb", "outputs.pb")
    )
    if is_task and not alive and left_files:
        result = read_task_result(directory, None)
        outputs = result.outputs.SerializeToString() if result.outputs is not None else None
        error = result.error.SerializeToString() if result.error is not None else None
        store.finish(record.id, result.phase, outputs=outputs, error=error)
        return "finished"

    if alive:
        _signal_group(record.pgid or record.pid, signal.SIGKILL)
    error = system_error(RESTART_ERROR_MESSAGE, code="DevBackendRestarted")
    store.finish(record.id, FAILED, error=error.SerializeToString())
    return "failed"


def _is_fast(args: list[str]) -> bool:
    return bool(args) and os.path.basename(args[0]) == "pyflyte-fast-execute"


def _signal_group(pgid: int, signum: int) -> None:
    try:
        os.killpg(pgid, signum)
    except (ProcessLookupError, PermissionError):
        pass


def _dependencies(node: core_wf.Node) -> set[str]:
    """Ids of the nodes ``node`` waits for: explicit upstreams and promise sources."""
    found = set(node.upstream_node_ids)
    for binding in node.inputs:
        _collect_promises(binding.binding, found)
    return found - _WORKFLOW_INPUT_NODES


def _collect_promises(data: literals_pb2.BindingData, found: set[str]) -> None:
    kind = data.WhichOneof("value")
    if kind == "promise":
        found.add(data.promise.node_id)
    elif kind == "collection":
        for item in data.collection.bindings:
            _collect_promises(item, found)
    elif kind == "map":
        for item in data.map.bindings.values():
            _collect_promises(item, found)


def resolve_bindings(
    bindings: list[literals_pb2.Binding], outputs: dict[str, literals_pb2.LiteralMap]
) -> literals_pb2.LiteralMap:
    """Build a LiteralMap from bindings, reading promises from finished nodes' outputs.

    Raises:
        InvalidArgumentError: for a promise whose node or variable is unknown, or a binding
            shape the dev backend does not handle.
    """
    result = literals_pb2.LiteralMap()
    for binding in bindings:
        result.literals[binding.var].CopyFrom(_resolve(binding.binding, outputs))
    return result


def _resolve(
    data: literals_pb2.BindingData, outputs: dict[str, literals_pb2.LiteralMap]
) -> literals_pb2.Literal:
    kind = data.WhichOneof("value")
    if kind == "scalar":
        return literals_pb2.Literal(scalar=data.scalar)
    if kind == "collection":
        items = [_resolve(item, outputs) for item in data.collection.bindings]
        return literals_pb2.Literal(collection=literals_pb2.LiteralCollection(literals=items))
    if kind == "map":
        entries = {key: _resolve(item, outputs) for key, item in data.map.bindings.items()}
        return literals_pb2.Literal(map=literals_pb2.LiteralMap(literals=entries))
    if kind == "promise":
        return _resolve_promise(data.promise, outputs)
    raise InvalidArgumentError(f"{kind or 'empty'} bindings are not supported by the dev backend")


def _resolve_promise(
    promise: core_wf.OutputReference, outputs: dict[str, literals_pb2.LiteralMap]
) -> literals_pb2.Literal:
    if promise.attr_path:
        raise InvalidArgumentError(
            "attribute access on promises is not supported by the dev backend"
        )
    source = outputs.get(promise.node_id)
    if source is None:
        raise InvalidArgumentError(f"promise refers to unknown node {promise.node_id!r}")
    if promise.var not in source.literals:
        raise InvalidArgumentError(f"node {promise.node_id!r} has no output {promise.var!r}")
    return source.literals[promise.var]


def read_task_result(directory: Path, returncode: int | None) -> NodeResult:
    """Interpret what a finished task process left behind: error.pb first, then outputs.pb.

    ``returncode`` is None for a process this server did not start (its code is unknown).
    """
    error_path = directory / "error.pb"
    if error_path.exists():
        container_error = errors_pb2.ErrorDocument.FromString(error_path.read_bytes()).error
        kind = container_error.origin or ErrorKind.USER
        error = core_execution_pb2.ExecutionError(
            code=container_error.code,
            message=container_error.message,
            kind=kind,
            error_uri=str(error_path),
        )
        recoverable = container_error.kind == errors_pb2.ContainerError.RECOVERABLE
        return NodeResult.failed(error, retryable=recoverable)
    if (directory / "futures.pb").exists():
        return _not_supported("dynamic tasks (the task returned futures.pb)")
    outputs_path = directory / "outputs.pb"
    if outputs_path.exists():
        return NodeResult(
            SUCCEEDED, outputs=literals_pb2.LiteralMap.FromString(outputs_path.read_bytes())
        )
    tail = _log_tail(directory / "task.log")
    code = "an unknown code" if returncode is None else f"code {returncode}"
    message = f"task process exited with {code} without writing outputs:\n{tail}"
    return NodeResult.failed(system_error(message, code="ProcessFailed"), retryable=True)


def _log_tail(path: Path) -> str:
    try:
        lines = path.read_text(errors="replace").splitlines()
    except OSError:
        return ""
    return "\n".join(lines[-_LOG_TAIL_LINES:])


def _result_of(record: ExecutionRecord) -> NodeResult:
    outputs = literals_pb2.LiteralMap.FromString(record.outputs) if record.outputs else None
    error = core_execution_pb2.ExecutionError.FromString(record.error) if record.error else None
    if record.phase == ABORTED:
        error = system_error(f"child execution {record.name} was aborted", code="ChildAborted")
        return NodeResult.failed(error)
    return NodeResult(record.phase, outputs=outputs, error=error)


__all__ = [
    "NodeResult",
    "Runner",
    "RunnerConfig",
    "derive_child_name",
    "read_task_result",
    "recover_interrupted_executions",
    "resolve_bindings",
    "rewrite_dest_dir",
    "substitute_template_variables",
    "validate_execution_name",
]
