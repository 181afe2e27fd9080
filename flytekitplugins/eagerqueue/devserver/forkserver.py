"""The fork runner: task attempts forked from a helper that has flytekit imported already.

A fresh ``pyflyte-execute`` spends most of a trivial task's 0.6 s importing flytekit. The fork
server is one long-lived helper process, started with ``subprocess`` (never forked from the
gRPC server, whose threads a fork would leave in an undefined state), that imports flytekit
once and then forks a child per task attempt. The child does what a new ``pyflyte-execute``
process would: it starts its own session, points stdin at /dev/null and stdout and stderr at
the attempt's log, changes to the attempt's working directory, replaces its environment and
``sys.argv``, puts ``PYTHONPATH`` on ``sys.path`` and calls flytekit's entrypoint command in
process. It writes ``outputs.pb`` or ``error.pb`` where a fresh process would.

Installed libraries a task imports are learned: each child reports, as it exits, the modules
it imported from the standard library or site-packages, and the helper imports them too, so
the next child starts with them loaded. Modules from anywhere else (the task's own code, a
source root, an unpacked code archive) are never imported by the helper.

``pyflyte-fast-execute`` runs in process as well: the child downloads the code archive and
then runs the inner ``pyflyte-execute`` command itself instead of starting an interpreter for
it. The helper never imports task code, so every child imports the user's modules afresh and
an edited module takes effect on the next run. Any other command is ``exec``-ed in the child.

The helper talks to the server over its stdin and stdout, one JSON object per line:
``{"id", "args", "cwd", "env", "log"}`` asks for a child; the answers are ``{"id", "pid"}``
once it runs, ``{"id", "error"}`` if it could not be forked, and ``{"id", "exit"}`` with the
exit code once it has been reaped. Closing stdin stops the helper and leaves running children
alone, so a server that dies does not take its tasks with it.
"""

from __future__ import annotations

import importlib
import itertools
import json
import logging
import os
import select
import shutil
import signal
import subprocess
import sys
import sysconfig
import threading
import time
import traceback
from pathlib import Path

from flytekitplugins.eagerqueue.devserver.processes import AdoptedProcess, process_start_time

logger = logging.getLogger(__name__)

# Seconds a spawn request waits for the helper to fork; its first request also waits for the
# helper to import flytekit (about a second, longer on a loaded machine).
SPAWN_TIMEOUT_SECONDS = 60.0
# Seconds the helper's select waits before reaping children anyway; SIGCHLD normally wakes it.
_REAP_INTERVAL_SECONDS = 1.0
_READ_BYTES = 1 << 16
# Most modules a child reports; enough for a heavy library, small enough to stay cheap.
_MAX_LEARNED_MODULES = 5000
# Where children leave their import reports: the helper's working directory (the state dir).
_HELPER_DIR = "."


class ForkedProcess:
    """A task process forked by the helper; looks like ``subprocess.Popen`` to the runner."""

    def __init__(self, request_id: int) -> None:
        self.request_id = request_id
        self.pid = 0
        self.returncode: int | None = None
        self._spawned = threading.Event()
        self._exited = threading.Event()
        self._spawn_error: str | None = None
        self._start_time: int | None = None
        self._lost = False

    def poll(self) -> int | None:
        """The exit code once the process has exited, else None."""
        if self._lost:
            return AdoptedProcess(self.pid, self._start_time).poll()
        return self.returncode if self._exited.is_set() else None

    def wait(self, timeout: float | None = None) -> int | None:
        """Wait for the exit and return its code (None if the helper died meanwhile).

        Raises:
            subprocess.TimeoutExpired: if the process still runs after ``timeout`` seconds.
        """
        if not self._exited.wait(timeout):
            raise subprocess.TimeoutExpired(f"pid {self.pid}", timeout or 0.0)
        if self._lost:
            return AdoptedProcess(self.pid, self._start_time).wait(timeout)
        return self.returncode

    # Called by the client's reader thread.

    def _on_spawned(self, pid: int) -> None:
        self.pid = pid
        self._start_time = process_start_time(pid)
        self._spawned.set()

    def _on_error(self, message: str) -> None:
        self._spawn_error = message
        self._spawned.set()
        self._exited.set()

    def _on_exit(self, code: int) -> None:
        self.returncode = code
        self._exited.set()

    def _on_helper_lost(self) -> None:
        if not self._spawned.is_set():
            self._on_error("the fork server exited before starting the task")
            return
        self._lost = True
        self._exited.set()


class ForkServerClient:
    """Starts the helper process and asks it for task processes.

    Args:
        log_path: where the helper's own output goes (not the tasks', each has its log).
    """

    def __init__(self, log_path: Path) -> None:
        self._log_path = log_path
        self._lock = threading.Lock()
        self._ids = itertools.count(1)
        self._pending: dict[int, ForkedProcess] = {}
        self._process: subprocess.Popen[bytes] | None = None
        self._closed = False
        with self._lock:
            self._ensure_started()

    def _ensure_started(self) -> subprocess.Popen[bytes]:
        if self._process is not None and self._process.poll() is None:
            return self._process
        self._log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self._log_path, "ab") as log:
            process = subprocess.Popen(
                [sys.executable, "-m", __name__],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=log,
                cwd=self._log_path.parent,
                start_new_session=True,
            )
        self._process = process
        threading.Thread(
            target=self._read_replies, args=(process,), name="forkserver-replies", daemon=True
        ).start()
        logger.info("fork server started, pid %d", process.pid)
        return process

    def spawn(
        self, args: list[str], cwd: Path, env: dict[str, str], log_path: Path
    ) -> ForkedProcess:
        """Fork a task process; returns once it runs.

        Raises:
            OSError: if the helper could not start it, or is not answering.
        """
        request = {"args": args, "cwd": str(cwd), "env": env, "log": str(log_path)}
        with self._lock:
            if self._closed:
                raise OSError("the fork server is closed")
            process = self._ensure_started()
            handle = ForkedProcess(next(self._ids))
            self._pending[handle.request_id] = handle
            line = json.dumps({"id": handle.request_id, **request}).encode() + b"\n"
            try:
                assert process.stdin is not None
                process.stdin.write(line)
                process.stdin.flush()
            except OSError as exc:
                self._pending.pop(handle.request_id, None)
                raise OSError(f"the fork server is not answering: {exc}") from exc
        if not handle._spawned.wait(SPAWN_TIMEOUT_SECONDS):
            raise OSError(f"the fork server did not start a task within {SPAWN_TIMEOUT_SECONDS} s")
        if handle._spawn_error is not None:
            raise OSError(handle._spawn_error)
        return handle

    def _read_replies(self, process: subprocess.Popen[bytes]) -> None:
        assert process.stdout is not None
        for line in process.stdout:
            try:
                reply = json.loads(line)
            except ValueError:
                logger.warning("fork server sent an unreadable line: %r", line[:200])
                continue
            with self._lock:
                handle = self._pending.get(reply.get("id"))
                if handle is not None and ("exit" in reply or "error" in reply):
                    self._pending.pop(handle.request_id, None)
            if handle is None:
                continue
            if "pid" in reply:
                handle._on_spawned(reply["pid"])
            elif "error" in reply:
                handle._on_error(reply["error"])
            elif "exit" in reply:
                handle._on_exit(reply["exit"])
        with self._lock:
            lost = [h for h in self._pending.values()]
            self._pending.clear()
        if not self._closed:
            logger.warning("fork server pid %d exited with %s", process.pid, process.wait())
        for handle in lost:
            handle._on_helper_lost()

    def close(self) -> None:
        """Stop the helper; task processes it forked are left to the runner."""
        with self._lock:
            self._closed = True
            process = self._process
        if process is None:
            return
        try:
            assert process.stdin is not None
            process.stdin.close()
        except OSError:
            pass
        try:
            process.wait(5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


# The helper process.


def _preload() -> None:
    """Import what every task attempt imports, so children start with it loaded."""
    import flytekit  # noqa: F401
    import flytekit.bin.entrypoint  # noqa: F401
    import flytekit.core.python_auto_container  # noqa: F401
    import flytekit.core.python_function_task  # noqa: F401
    import flytekit.remote  # noqa: F401


def _library_dirs() -> tuple[str, ...]:
    """Directories of the standard library and installed packages."""
    paths = sysconfig.get_paths()
    found = {os.path.realpath(paths[key]) for key in ("stdlib", "platstdlib", "purelib", "platlib")}
    return tuple(os.path.join(path, "") for path in found)


def _library_modules(names: set[str]) -> list[str]:
    """The modules among ``names`` that were loaded from a library directory."""
    libraries = _library_dirs()
    found = []
    for name in sorted(names):
        module = sys.modules.get(name)
        origin = getattr(module, "__file__", None)
        if origin and os.path.realpath(origin).startswith(libraries):
            found.append(name)
    return found[:_MAX_LEARNED_MODULES]


def _report_imports(preloaded: frozenset[str], report_path: str) -> None:
    """Write the library modules this child imported beyond the helper's, one per line."""
    learned = _library_modules(set(sys.modules) - preloaded)
    if learned:
        with open(report_path, "w") as out:
            out.write("\n".join(learned))


def _learn_imports(report_path: str) -> None:
    """Import the modules a finished child reported, then forget the report."""
    try:
        with open(report_path) as report:
            names = [line.strip() for line in report if line.strip()]
        os.unlink(report_path)
    except OSError:
        return
    for name in names:
        if name in sys.modules:
            continue
        try:
            importlib.import_module(name)
        except BaseException as exc:
            print(f"fork server could not preload {name}: {exc!r}", file=sys.stderr)
    if threading.active_count() > 1:
        print("fork server: a preloaded module started a thread", file=sys.stderr)


def _send(fd: int, message: dict[str, object]) -> None:
    os.write(fd, json.dumps(message).encode() + b"\n")


def _exit_code(exc: SystemExit) -> int:
    if exc.code is None:
        return 0
    if isinstance(exc.code, int):
        return exc.code
    print(exc.code, file=sys.stderr)
    return 1


def _prepare_sys_path(script: str) -> None:
    """Make ``sys.path`` what a fresh ``script`` process with this environment would see."""
    found = shutil.which(script, path=os.environ.get("PATH")) or script
    sys.path[0] = os.path.dirname(os.path.realpath(found))
    entries = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    for offset, entry in enumerate(e for e in entries if e not in sys.path):
        sys.path.insert(1 + offset, entry)


def _fast_execute_args(args: list[str]) -> list[str]:
    """Do what ``pyflyte-fast-execute`` does before it starts ``pyflyte-execute``.

    Downloads the code archive, extends PYTHONPATH with the destination and returns the inner
    command with the ``--dynamic-*`` options flytekit inserts.
    """
    from flytekit.bin.entrypoint import _download_distribution, fast_execute_task_cmd

    context = fast_execute_task_cmd.make_context("pyflyte-fast-execute", list(args[1:]))
    distribution = context.params["additional_distribution"]
    dest_dir = context.params["dest_dir"]
    if distribution is not None:
        dest_dir = dest_dir or os.getcwd()
        _download_distribution(distribution, dest_dir)
    command: list[str] = []
    for arg in context.params["task_execute_cmd"]:
        if arg == "--resolver":
            command.extend(["--dynamic-addl-distro", distribution, "--dynamic-dest-dir", dest_dir])
        command.append(arg)
    if dest_dir is not None:
        resolved = os.path.realpath(os.path.expanduser(dest_dir))
        current = os.environ.get("PYTHONPATH")
        os.environ["PYTHONPATH"] = f"{current}{os.pathsep}{resolved}" if current else resolved
    return command


def _run_task(args: list[str]) -> int:
    """Run a task command in this (forked) process and return its exit code."""
    try:
        if args and os.path.basename(args[0]) == "pyflyte-fast-execute":
            args = _fast_execute_args(args)
        if not args or os.path.basename(args[0]) != "pyflyte-execute":
            os.execvpe(args[0], args, os.environ)
        _prepare_sys_path(args[0])
        sys.argv = list(args)
        from flytekit import loggers
        from flytekit.bin.entrypoint import execute_task_cmd

        loggers.initialize_global_loggers()
        execute_task_cmd.main(args=args[1:], prog_name="pyflyte-execute")
        return 0
    except SystemExit as exc:
        return _exit_code(exc)
    except BaseException:
        traceback.print_exc()
        return 1


def _child(request: dict, inherited: list[int], ready_fd: int) -> None:
    """The forked child: become a pyflyte-execute process and never return."""
    code = 1
    preloaded = frozenset(sys.modules)
    try:
        os.setsid()
        os.write(ready_fd, b"x")
        signal.set_wakeup_fd(-1)
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        for fd in [*inherited, ready_fd]:
            os.close(fd)
        devnull = os.open(os.devnull, os.O_RDONLY)
        log = os.open(request["log"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        os.dup2(devnull, 0)
        os.dup2(log, 1)
        os.dup2(log, 2)
        os.close(devnull)
        os.close(log)
        os.chdir(request["cwd"])
        os.environ.clear()
        os.environ.update(request["env"])
        code = _run_task(request["args"])
        _report_imports(preloaded, _report_path(os.getpid()))
    finally:
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        finally:
            os._exit(code)


def _fork(request: dict, inherited: list[int]) -> int:
    """Fork a child for ``request``; returns its pid once it leads its own session."""
    ready_read, ready_write = os.pipe()
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid == 0:
        os.close(ready_read)
        _child(request, inherited, ready_write)
    os.close(ready_write)
    os.read(ready_read, 1)
    os.close(ready_read)
    return pid


def _report_path(pid: int) -> str:
    return os.path.join(_HELPER_DIR, f".imports-{pid}")


def _reap(children: dict[int, int], replies: int) -> None:
    while children:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        request_id = children.pop(pid, None)
        if request_id is not None:
            _send(replies, {"id": request_id, "exit": os.waitstatus_to_exitcode(status)})
        _learn_imports(_report_path(pid))


def serve() -> None:
    """The helper's main loop: fork on request, report exits, stop at end of input."""
    requests, replies = os.dup(0), os.dup(1)
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.dup2(2, 1)
    os.close(devnull)
    global _HELPER_DIR
    _HELPER_DIR = os.getcwd()
    _preload()
    wake_read, wake_write = os.pipe()
    os.set_blocking(wake_write, False)
    signal.set_wakeup_fd(wake_write)
    signal.signal(signal.SIGCHLD, lambda *_: None)
    inherited = [requests, replies, wake_read, wake_write]
    children: dict[int, int] = {}
    buffer = b""
    while True:
        readable, _, _ = select.select([requests, wake_read], [], [], _REAP_INTERVAL_SECONDS)
        if wake_read in readable:
            os.read(wake_read, _READ_BYTES)
        if requests in readable:
            data = os.read(requests, _READ_BYTES)
            if not data:
                break
            buffer += data
            *lines, buffer = buffer.split(b"\n")
            for line in lines:
                _handle(line, children, replies, inherited)
        _reap(children, replies)


def _handle(line: bytes, children: dict[int, int], replies: int, inherited: list[int]) -> None:
    if not line.strip():
        return
    request = json.loads(line)
    if threading.active_count() > 1:
        print(f"fork server has {threading.active_count()} threads at fork", file=sys.stderr)
    started = time.monotonic()
    try:
        pid = _fork(request, inherited)
    except OSError as exc:
        _send(replies, {"id": request["id"], "error": f"could not fork: {exc}"})
        return
    children[pid] = request["id"]
    _send(replies, {"id": request["id"], "pid": pid, "fork_ms": (time.monotonic() - started) * 1e3})


if __name__ == "__main__":
    serve()
