"""The drop-in Controller that launches and watches the children of an ``@eager`` task.

flytekit builds ``Controller(remote=..., ss=..., tag=..., root_tag=..., exec_prefix=...)``
for every eager run and awaits ``add(entity, input_kwargs)`` once per child. This module
keeps the public surface of ``flytekit.core.worker_queue`` (``Controller``, ``WorkItem``,
``Update``, ``ItemStatus``, the ``eager-exec``/``eager-root-exec`` labels and ``_F_EE_ROOT``)
and replaces what happens behind it.

How work flows::

    add() [caller's event loop]        reconciler thread               admin pool threads
    ---------------------------        -----------------               ------------------
    inputs -> literals, digest, name
    queue item, await its future  -->  admit: max_in_flight, rate  -->  launch (create or
                                                                        re-attach + verify)
                                       poll: one ListExecutions of   <--
                                       this parent's finished
                                       children per tick
                                       finished: outputs or retry  -->  fetch outputs
    future resolved               <--  settle on the caller's loop  <--

The reconciler thread owns all state changes; pool threads only call Admin and hand their
results back through an inbox. Admin calls that fail transiently are retried with backoff
and never change a child's state. If the reconciler itself crashes, every waiting and every
later ``add()`` fails with the cause.
"""

from __future__ import annotations

import asyncio
import atexit
import collections
import concurrent.futures
import contextlib
import dataclasses
import enum
import heapq
import logging
import os
import sys
import threading
import time
import typing
import uuid

from flytekit.core.constants import EAGER_ROOT_ENV_NAME, EAGER_TAG_KEY, EAGER_TAG_ROOT_KEY

from . import deck, naming, policies
from .admin import INPUT_DIGEST_LABEL, AdminClient, ChildState, LaunchRequest, Phase, RemoteAdmin
from .errors import (
    AdminCallError,
    ChildFailedError,
    ControllerStateError,
    EagerQueueError,
    ReattachMismatchError,
    TransientAdminError,
)
from .inputs import digest_literals, python_interface_of, remote_context, to_literals, to_python
from .retry import Backoff, Decision, Failure, FailureKind
from .settings import Settings, load_settings

logger = logging.getLogger(__name__)

__all__ = [
    "EAGER_ROOT_ENV_NAME",
    "EAGER_TAG_KEY",
    "EAGER_TAG_ROOT_KEY",
    "Controller",
    "ItemStatus",
    "Update",
    "WorkItem",
]

# Label values are limited to 63 characters; 40 hex characters (160 bits) of the input
# digest are plenty to tell inputs apart.
_DIGEST_LABEL_CHARS = 40

# Transient Admin failures are retried with this backoff for up to this long before the
# call is treated as failed: long enough to ride out an Admin restart or a rolling update.
_TRANSIENT_BACKOFF = Backoff(initial=0.1, coefficient=2.0, maximum=5.0, jitter=0.5)
_TRANSIENT_GIVE_UP_AFTER = 600.0

# The status poll backs off by this factor on each tick that saw no change.
_POLL_GROWTH = 1.3

# While children are unfinished, a one-line summary of the run is logged this often.
_SUMMARY_EVERY_SECONDS = 30.0

# Listing children stops this far (in Admin's update times) behind the newest update seen,
# so that a child whose finish Admin committed late is still read on the next poll.
_LIST_OVERLAP_SECONDS = 10.0

# Consecutive failed list calls after which the controller stops trusting the label filter
# and polls children one by one.
_LIST_FAILURES_BEFORE_FALLBACK = 5


class ItemStatus(enum.Enum):
    """Where one awaited entity is in its life."""

    PENDING = "Pending"
    RUNNING = "Running"
    SUCCESS = "Success"
    FAILED = "Failed"


@dataclasses.dataclass
class Update:
    """A change to one work item; kept for code written against flytekit's controller."""

    work_item: WorkItem
    idx: int
    status: typing.Optional[ItemStatus] = None
    wf_exec: typing.Any = None
    error: typing.Optional[BaseException] = None


@dataclasses.dataclass(eq=False)
class WorkItem:
    """One awaited call of an entity, from ``add()`` until its caller is answered.

    The first fields are those of flytekit's ``WorkItem``; the rest are this controller's
    bookkeeping. ``execution`` is the name of the current attempt's execution.
    """

    entity: typing.Any
    input_kwargs: dict[str, typing.Any]
    result: typing.Any = None
    error: typing.Optional[BaseException] = None
    status: ItemStatus = ItemStatus.PENDING
    wf_exec: typing.Any = None
    python_interface: typing.Any = None
    uuid: typing.Optional[uuid.UUID] = None

    kind: str = ""
    version: str = ""
    literals: dict[str, typing.Any] = dataclasses.field(default_factory=dict)
    digest: str = ""
    base_name: str = ""
    execution: str = ""
    attempt: int = 0
    phase: str = "PENDING"
    reattached: bool = False
    queued_at: float = 0.0
    launched_at: float = 0.0
    finished_at: float = 0.0
    failures: list[Failure] = dataclasses.field(default_factory=list)
    future: typing.Optional[asyncio.Future] = None
    loop: typing.Optional[asyncio.AbstractEventLoop] = None

    def __post_init__(self):
        if self.python_interface is None:
            self.python_interface = python_interface_of(self.entity)
        self.uuid = uuid.uuid4()
        self.queued_at = time.time()

    def __hash__(self) -> int:
        return hash(self.uuid)

    @property
    def is_in_terminal_state(self) -> bool:
        return self.status in (ItemStatus.SUCCESS, ItemStatus.FAILED)

    @property
    def digest_label(self) -> str:
        return self.digest[:_DIGEST_LABEL_CHARS]


class _TokenBucket:
    """Smooth rate limit: ``rate`` tokens a second, holding at most ``burst``."""

    def __init__(self, rate: float, burst: int):
        self._rate = rate
        self._burst = float(burst)
        self._tokens = float(burst)
        self._stamp = time.monotonic()

    def take(self) -> bool:
        self._refill()
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            return True
        return False

    def seconds_until_token(self) -> float:
        self._refill()
        return 0.0 if self._tokens >= 1.0 else (1.0 - self._tokens) / self._rate

    def _refill(self) -> None:
        now = time.monotonic()
        self._tokens = min(self._burst, self._tokens + (now - self._stamp) * self._rate)
        self._stamp = now


class _Lifecycle(enum.Enum):
    RUNNING = "running"
    STOPPING = "stopping"
    STOPPED = "stopped"
    CRASHED = "crashed"


_signals_seen = 0


class Controller:
    """Launches and watches the children of one eager execution.

    Args:
        remote: the ``FlyteRemote`` of the eager task; children run in its project/domain.
        ss: serialization settings used to register entities Admin does not know yet.
        tag: name of this eager execution; children carry it as the ``eager-exec`` label.
        root_tag: name of the root eager execution of the tree (``eager-root-exec``).
        exec_prefix: prefix for child names, computed by flytekit.
        settings: settings in force; by default read from config file and environment.
        admin: the Admin view to use; by default :class:`RemoteAdmin` over ``remote``.

    With ``eager.controller: flytekit`` in config, constructing this class returns
    flytekit's own controller instead.
    """

    def __new__(cls, *args: typing.Any, **kwargs: typing.Any):
        if kwargs.get("admin") is None:
            settings = kwargs.pop("settings", None) or load_settings()
            if settings.controller == "flytekit":
                from flytekit.core.worker_queue import Controller as StockController

                logger.info("eager.controller is 'flytekit': using flytekit's own controller")
                return StockController(*args, **kwargs)
            instance = super().__new__(cls)
            instance._loaded_settings = settings
            return instance
        return super().__new__(cls)

    def __init__(
        self,
        remote: typing.Any,
        ss: typing.Any,
        tag: str,
        root_tag: str,
        exec_prefix: str,
        *,
        settings: typing.Optional[Settings] = None,
        admin: typing.Optional[AdminClient] = None,
    ):
        self.remote = remote
        self.ss = ss
        self.tag = tag
        self.root_tag = root_tag
        self.exec_prefix = exec_prefix
        self.settings = settings or getattr(self, "_loaded_settings", None) or load_settings()
        self._naming = policies.naming_policy(self.settings.naming, self.settings.written("naming"))
        self._naming_label = policies.describe(self.settings.naming)
        self._retry = policies.retry_policy(self.settings)
        self._admin: AdminClient = admin or RemoteAdmin(remote, ss)

        self.entries: dict[str, list[WorkItem]] = {}
        # Re-entrant: the SIGTERM handler runs on the main thread, which may hold it already.
        self.entries_lock = threading.RLock()
        self._occurrences: collections.Counter[tuple[str, str]] = collections.Counter()
        self._pending: collections.deque[WorkItem] = collections.deque()
        self._delayed: list[tuple[float, int, WorkItem]] = []
        self._launching: dict[str, WorkItem] = {}
        self._running: dict[str, WorkItem] = {}
        # Every child seen in a terminal phase, by name, with the newest update time seen.
        self._seen_terminal: dict[str, ChildState] = {}
        self._high_water = 0.0
        self._inbox: collections.deque[typing.Callable[[], None]] = collections.deque()
        self._bucket = _TokenBucket(self.settings.launch_rate, self.settings.launch_burst)
        self._pool = concurrent.futures.ThreadPoolExecutor(
            max_workers=self.settings.launch_workers, thread_name_prefix="eagerqueue-admin"
        )
        self._registered: set[tuple[str, str, str]] = set()
        self._registration_locks: dict[tuple[str, str, str], threading.Lock] = {}
        self._registration_guard = threading.Lock()
        self._on_the_wire: set[str] = set()
        self._wire_lock = threading.Lock()
        self._per_child_polling = False
        self._labels_checked = False
        self._list_failures = 0
        self._poll_interval = self.settings.poll_interval_min
        self._next_poll = 0.0
        self._sequence = 0
        self._lifecycle = _Lifecycle.RUNNING
        self._crash: typing.Optional[BaseException] = None
        self._started = time.time()
        self.rpc_calls: collections.Counter[str] = collections.Counter()
        self.ticks = 0
        self._next_summary = time.monotonic() + _SUMMARY_EVERY_SECONDS

        self._wake = threading.Event()
        self._thread = threading.Thread(
            target=self._run, name=f"eagerqueue-reconciler-{tag}", daemon=True
        )
        self._thread.start()
        atexit.register(self.close)
        logger.debug(
            "eager controller started",
            extra={"eager_tag": tag, "eager_root": root_tag, "naming": self._naming_label},
        )

    # ------------------------------------------------------------------ public surface

    async def add(self, entity: typing.Any, input_kwargs: dict[str, typing.Any]) -> typing.Any:
        """Runs ``entity`` with ``input_kwargs`` as a child execution and returns its result.

        Input conversion and naming happen here, in the caller: a value that does not
        convert or a name the policy gets wrong raises in the caller's coroutine and
        launches nothing.
        """
        self._refuse_if_unusable()
        item = self._prepared(WorkItem(entity=entity, input_kwargs=dict(input_kwargs)))
        item.loop = asyncio.get_running_loop()
        item.future = item.loop.create_future()

        with self.entries_lock:
            self._refuse_if_unusable()
            key = (entity.name, item.digest)
            calls = self.entries.get(entity.name, [])
            item.base_name = self._name(item, self._occurrences[key], len(calls))
            self._occurrences[key] += 1
            self.entries.setdefault(entity.name, []).append(item)
            item.execution = item.base_name
            self._pending.append(item)
        self._wake.set()
        return await item.future

    def get_labels(self) -> typing.Any:
        """Labels every child carries: this execution and the root of the tree."""
        from flytekit.models.common import Labels

        return Labels({EAGER_TAG_KEY: self.tag, EAGER_TAG_ROOT_KEY: self.root_tag})

    def get_env(self) -> dict[str, str]:
        """Environment every child gets: the root tag, and the settings for nested eagers."""
        env = self.settings.to_env()
        env[EAGER_ROOT_ENV_NAME] = self.root_tag
        return env

    def get_execution_name(self, entity: typing.Any, idx: int, input_kwargs: dict) -> str:
        """The name the ``idx``-th call of ``entity`` with ``input_kwargs`` gets."""
        item = self._prepared(WorkItem(entity=entity, input_kwargs=dict(input_kwargs)))
        return self._name(item, idx, idx)

    def launch_execution(self, wi: WorkItem, idx: int) -> typing.Any:
        """Launches (or re-attaches to) ``wi``'s child now and returns its execution."""
        if wi.result is not None or wi.error is not None:
            raise ControllerStateError(
                f"{wi.entity.name} already has a result or an error; it is not launched again"
            )
        if not wi.execution:
            self._prepared(wi)
            wi.base_name = wi.execution = self._name(wi, idx, idx)
        self._launch_call(wi)
        wi.wf_exec = self.remote.fetch_execution(name=wi.execution)
        return wi.wf_exec

    def reconcile_one(self, update: Update) -> None:
        """Launches ``update.work_item`` or refreshes its state; the outcome goes in ``update``."""
        item = update.work_item
        try:
            if item.wf_exec is None:
                update.wf_exec = self.launch_execution(item, update.idx)
                update.status = ItemStatus.RUNNING
                return
            update.wf_exec = self.remote.sync_execution(item.wf_exec)
            phase = update.wf_exec.closure.phase
            if phase == Phase.SUCCEEDED:
                update.status = ItemStatus.SUCCESS
            elif phase in (Phase.FAILED, Phase.ABORTED, Phase.TIMED_OUT):
                update.status = ItemStatus.FAILED
            else:
                update.status = ItemStatus.RUNNING
        except Exception as err:
            update.error = err
            update.status = ItemStatus.FAILED

    def render_html(self) -> str:
        """The deck of this run's children, rendered from a snapshot."""
        return deck.render(
            self.snapshot(),
            show_values=self.settings.deck_show_values,
            timeline=self.settings.deck_timeline,
        )

    def snapshot(self) -> deck.RunSnapshot:
        """A copy of what the controller knows, safe to read without its lock."""
        with self.entries_lock:
            items = [item for calls in self.entries.values() for item in calls]
        children = [self._child_view(item) for item in items]
        return deck.RunSnapshot(
            tag=self.tag,
            started_at=self._started,
            children=children,
            rpc_calls=dict(self.rpc_calls),
        )

    def get_signal_handler(self) -> typing.Callable[[int, typing.Any], None]:
        """A SIGINT/SIGTERM handler: terminate every in-flight child, then exit non-zero.

        A second signal exits at once.
        """

        def handle(signum: int, frame: typing.Any) -> None:
            global _signals_seen
            _signals_seen += 1
            if _signals_seen > 1:
                logger.warning("second signal %s: exiting without waiting", signum)
                os._exit(128 + signum)
            logger.warning("signal %s: terminating in-flight children of %s", signum, self.tag)
            self.cancel_all(f"parent eager execution {self.tag} received signal {signum}")
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(128 + signum)

        return handle

    def cancel_all(self, cause: str) -> list[str]:
        """Stops launching and terminates every child in flight, in parallel, within a deadline.

        Launch calls already on the wire terminate what they create when they return. Every
        caller still waiting gets a :class:`ControllerStateError`. Returns the names of the
        children asked to terminate.
        """
        with self.entries_lock:
            self._lifecycle = _Lifecycle.STOPPING
        self._wake.set()
        self._pool.shutdown(wait=False, cancel_futures=True)
        deadline = time.monotonic() + self.settings.terminate_timeout
        names = self._in_flight_names()
        if names:
            self._terminate_all(names, cause, deadline)
        while self._on_the_wire and time.monotonic() < deadline:
            time.sleep(0.01)
        if self._on_the_wire:
            logger.error(
                "launches of %s still unanswered at the deadline", sorted(self._on_the_wire)
            )
        self._fail_unfinished(f"the eager controller of {self.tag} was cancelled: {cause}")
        return names

    def _in_flight_names(self) -> list[str]:
        # The reconciler thread may be changing these dicts; copying retries until it is not.
        for _ in range(100):
            try:
                return sorted(set(self._running) | set(self._launching))
            except RuntimeError:
                continue
        return sorted(self._running)

    def _terminate_all(self, names: list[str], cause: str, deadline: float) -> None:
        pool = concurrent.futures.ThreadPoolExecutor(max_workers=min(32, len(names)))
        futures = {pool.submit(self._admin.terminate, name, cause): name for name in names}
        done, late = concurrent.futures.wait(futures, timeout=max(0.0, deadline - time.monotonic()))
        pool.shutdown(wait=False)
        for future in done:
            name = futures[future]
            if future.exception() is None:
                logger.warning("terminated child %s", name, extra={"eager_child": name})
            else:
                logger.warning("could not terminate child %s: %s", name, future.exception())
        for future in late:
            logger.error("child %s not confirmed terminated by the deadline", futures[future])

    @classmethod
    def for_sandbox(cls, exec_prefix: typing.Optional[str] = None) -> Controller:
        """A controller against the local sandbox (or the dev backend on its default port)."""
        from flytekit.configuration import ImageConfig, SerializationSettings
        from flytekit.core.context_manager import FlyteContextManager
        from flytekit.remote import FlyteRemote

        ctx = FlyteContextManager.current_context()
        remote = FlyteRemote.for_sandbox(
            default_project="flytesnacks", default_domain="development"
        )
        rand = ctx.file_access.get_random_string()
        ss = ctx.serialization_settings or SerializationSettings(
            image_config=ImageConfig.auto_default_image(), version=f"v{rand[:8]}"
        )
        tag = f"eager-local-{rand}"
        return cls(
            remote=remote, ss=ss, tag=tag, root_tag=tag, exec_prefix=exec_prefix or f"e-{rand[:16]}"
        )

    def close(self) -> None:
        """Stops the reconciler; children still running keep running and are not waited for."""
        with self.entries_lock:
            if self._lifecycle is _Lifecycle.RUNNING:
                self._lifecycle = _Lifecycle.STOPPED
        self._wake.set()
        if self._thread.is_alive() and threading.current_thread() is not self._thread:
            self._thread.join(timeout=5)
        self._pool.shutdown(wait=False, cancel_futures=True)
        self._fail_unfinished(f"the eager controller of {self.tag} was closed")

    # ------------------------------------------------------------------ naming and inputs

    def _prepared(self, item: WorkItem) -> WorkItem:
        """Fills in what naming and launching need: kind, version, literals and their digest.

        Raises in the caller (bad input, no version) before anything is launched.
        """
        item.kind = naming_kind(item.entity)
        item.version = self._version_for(item.entity)
        item.literals = to_literals(self.remote, item.entity, item.input_kwargs)
        item.digest = digest_literals(item.literals)
        return item

    def _version_for(self, entity: typing.Any) -> str:
        from flytekit.remote.remote_callable import RemoteEntity

        if isinstance(entity, RemoteEntity):
            return entity.id.version
        if not self.ss or not self.ss.version:
            raise ControllerStateError(
                f"cannot launch {entity.name}: the serialization settings have no version. "
                "Run the eager task through a Flyte backend or pass a version"
            )
        return self.ss.version

    def _name(self, item: WorkItem, occurrence: int, call_index: int) -> str:
        request = naming.NameRequest(
            root_tag=self.root_tag,
            parent_tag=self.tag,
            exec_prefix=self.exec_prefix,
            entity_kind=item.kind,
            entity_name=item.entity.name,
            entity_version=item.version,
            occurrence=occurrence,
            input_digest=item.digest,
            call_index=call_index,
            inputs_repr=f"{item.input_kwargs}",
            entity_type_repr=f"{type(item.entity)}",
        )
        return naming.check_name(self._naming(request), self._naming_label)

    # ------------------------------------------------------------------ reconciler thread

    def _run(self) -> None:
        try:
            while True:
                self._wake.clear()
                with self.entries_lock:
                    if self._lifecycle is not _Lifecycle.RUNNING:
                        break
                timeout = self._tick()
                self.ticks += 1
                self._wake.wait(timeout)
        except BaseException as err:  # noqa: BLE001 - every cause must reach the callers
            logger.exception("eager controller of %s crashed", self.tag)
            self._crash_with(err)

    def _tick(self) -> float:
        """One reconcile pass. Returns how long to sleep before the next one."""
        changed = self._drain_inbox()
        self._release_due_retries()
        self._admit()

        now = time.monotonic()
        if self._running and now >= self._next_poll:
            changed = self._poll() or changed
            grow = self._poll_interval * _POLL_GROWTH
            self._poll_interval = (
                self.settings.poll_interval_min
                if changed
                else min(self.settings.poll_interval_max, grow)
            )
            self._next_poll = time.monotonic() + self._poll_interval

        if now >= self._next_summary:
            self._log_summary()
        return self._sleep_time()

    def _log_summary(self) -> None:
        self._next_summary = time.monotonic() + _SUMMARY_EVERY_SECONDS
        if not (self._running or self._launching or self._pending or self._delayed):
            return
        with self.entries_lock:
            items = [item for calls in self.entries.values() for item in calls]
        done = collections.Counter(item.status for item in items)
        logger.info(
            "eager run %s: %d children, %d running, %d waiting, %d succeeded, %d failed",
            self.tag,
            len(items),
            len(self._running) + len(self._launching),
            len(self._pending) + len(self._delayed),
            done[ItemStatus.SUCCESS],
            done[ItemStatus.FAILED],
            extra={"eager_parent": self.tag},
        )

    def _sleep_time(self) -> float:
        waits = [self.settings.poll_interval_max]
        if self._running:
            waits.append(self._next_poll - time.monotonic())
        room = len(self._running) + len(self._launching) < self.settings.max_in_flight
        if self._pending and room:
            waits.append(self._bucket.seconds_until_token())
        if self._delayed:
            waits.append(self._delayed[0][0] - time.monotonic())
        return max(0.001, min(waits))

    def _drain_inbox(self) -> bool:
        changed = False
        while self._inbox:
            self._inbox.popleft()()
            changed = True
        return changed

    def _post(self, action: typing.Callable[[], None]) -> None:
        """Hands ``action`` to the reconciler thread (the one place pool threads hop back)."""
        self._inbox.append(action)
        self._wake.set()

    def _release_due_retries(self) -> None:
        now = time.monotonic()
        while self._delayed and self._delayed[0][0] <= now:
            _, _, item = heapq.heappop(self._delayed)
            self._pending.appendleft(item)

    def _admit(self) -> None:
        limit = self.settings.max_in_flight
        while self._pending and len(self._running) + len(self._launching) < limit:
            if not self._bucket.take():
                return
            item = self._pending.popleft()
            self._launching[item.execution] = item
            self._submit(self._launch_call, item, self._on_launched)

    def _submit(
        self,
        call: typing.Callable[[WorkItem], typing.Any],
        item: WorkItem,
        on_done: typing.Callable[[WorkItem, typing.Any, typing.Optional[BaseException]], None],
    ) -> None:
        def work() -> None:
            try:
                result, error = call(item), None
            except BaseException as err:  # noqa: BLE001 - handed to the reconciler
                result, error = None, err
            self._post(lambda: on_done(item, result, error))

        self._pool.submit(work)

    # ------------------------------------------------------------------ launching

    def _launch_call(self, item: WorkItem) -> ChildState:
        """Creates ``item``'s current attempt or re-attaches to it. Runs on a pool thread."""
        labels = {EAGER_TAG_KEY: self.tag, EAGER_TAG_ROOT_KEY: self.root_tag}
        labels[INPUT_DIGEST_LABEL] = item.digest_label
        request = LaunchRequest(
            name=item.execution,
            entity=item.entity,
            inputs=item.literals,
            version=item.version,
            labels=labels,
            envs=self.get_env(),
        )
        started = time.time()
        if self._lifecycle is not _Lifecycle.RUNNING:
            raise ControllerStateError(f"not launched: the controller of {self.tag} is stopping")
        with self._wire_lock:
            self._on_the_wire.add(item.execution)
        try:
            with self._first_launch_of(item):
                state = self._call_admin("CreateExecution", item, self._admin.launch, request)
            if self._lifecycle is not _Lifecycle.RUNNING and not state.is_terminal:
                self._admin.terminate(state.name, f"parent eager execution {self.tag} stopped")
                logger.warning("terminated child %s, launched while stopping", state.name)
        finally:
            with self._wire_lock:
                self._on_the_wire.discard(item.execution)
        found = state.labels.get(INPUT_DIGEST_LABEL)
        if found is None:
            # Launched by someone else (the stock controller, say): compare the inputs this
            # call passed; Admin also stores the defaults a launch plan filled in.
            stored = self._call_admin("GetExecutionData", item, self._admin.get_inputs, state.name)
            passed = {k: stored[k] for k in item.literals if k in stored}
            matches = len(passed) == len(item.literals)
            found = digest_literals(passed)[:_DIGEST_LABEL_CHARS] if matches else "missing inputs"
        if found != item.digest_label:
            raise ReattachMismatchError(
                state.name, item.entity.name, item.digest_label, found, parent=self.tag
            )
        item.reattached = state.created_at < started - 1.0
        return state

    @contextlib.contextmanager
    def _first_launch_of(self, item: WorkItem) -> typing.Iterator[None]:
        """Serializes launches of an entity until one has registered it.

        The first launch of an entity registers it (and everything it references); launched
        concurrently, every one of them would find it missing and register it again.
        """
        key = (item.kind, item.entity.name, item.version)
        if key in self._registered:
            yield
            return
        with self._registration_guard:
            lock = self._registration_locks.setdefault(key, threading.Lock())
        lock.acquire()
        if key in self._registered:  # registered while this launch waited
            lock.release()
            yield
            return
        try:
            yield
            self._registered.add(key)
        finally:
            lock.release()

    def _on_launched(
        self, item: WorkItem, state: typing.Any, error: typing.Optional[BaseException]
    ):
        self._launching.pop(item.execution, None)
        if error is not None:
            self._fail(item, self._launch_error(item, error))
            return
        item.launched_at = item.launched_at or time.time()
        item.status = ItemStatus.RUNNING
        # A poll may have listed this child finished while its launch call was returning.
        state = state if state.is_terminal else self._seen_terminal.get(item.execution, state)
        self._running[item.execution] = item
        self._log_state(item, state.phase_name)
        if state.is_terminal:
            self._on_terminal(item, state)
        elif not self._labels_checked:
            self._check_label_filter()

    def _launch_error(self, item: WorkItem, error: BaseException) -> BaseException:
        if isinstance(error, EagerQueueError):
            return error
        return AdminCallError("CreateExecution", item.execution, item.entity.name, error)

    def _call_admin(self, rpc: str, item: WorkItem, call: typing.Callable, *args: typing.Any):
        """Calls Admin, retrying transient failures with backoff; the child's state is untouched."""
        deadline = time.monotonic() + _TRANSIENT_GIVE_UP_AFTER
        attempt = 0
        while True:
            self.rpc_calls[rpc] += 1
            try:
                return call(*args)
            except TransientAdminError as err:
                attempt += 1
                if self._lifecycle is not _Lifecycle.RUNNING or time.monotonic() > deadline:
                    raise AdminCallError(rpc, item.execution, item.entity.name, err) from err
                delay = _TRANSIENT_BACKOFF.delay(attempt)
                logger.debug(
                    "%s for %s failed (%s); retrying in %.2fs", rpc, item.execution, err.code, delay
                )
                time.sleep(delay)

    # ------------------------------------------------------------------ status

    def _poll(self) -> bool:
        """Learns which running children finished. Returns True if any did."""
        if self._per_child_polling:
            for item in list(self._running.values()):
                self._submit(self._state_call, item, self._on_state)
            return False
        try:
            self.rpc_calls["ListExecutions"] += 1
            states = self._admin.list_finished(self.tag, self._seen_long_ago)
            self._list_failures = 0
        except Exception as err:  # noqa: BLE001 - a failed poll only delays the next one
            return self._on_list_failure(err)
        if states is None:
            logger.warning("backend cannot list children by label; polling each child instead")
            self._per_child_polling = True
            return False
        changed = False
        for state in states:
            if not state.is_terminal:
                continue
            self._seen_terminal.setdefault(state.name, state)
            self._high_water = max(self._high_water, state.updated_at)
            item = self._running.get(state.name)
            if item is not None:
                self._on_terminal(item, state)
                changed = True
        return changed

    def _seen_long_ago(self, state: ChildState) -> bool:
        """Where listing may stop: at a child seen finished well before the newest update.

        Pages are sorted by update time, newest first, so everything past such a child was
        seen on an earlier poll. The margin covers updates that Admin commits out of order.
        """
        return (
            state.name in self._seen_terminal
            and state.updated_at < self._high_water - _LIST_OVERLAP_SECONDS
        )

    def _check_label_filter(self) -> None:
        """Once, after the first launch: does the backend find children by label?

        An Admin that keeps no execution tags answers every label filter with nothing; its
        children would then never be seen finishing, so poll them one by one instead.
        """
        try:
            self.rpc_calls["ListExecutions"] += 1
            found = self._admin.lists_children(self.tag)
        except Exception as err:  # noqa: BLE001 - decide on the next launch
            logger.debug("label filter check failed: %s", err)
            return
        self._labels_checked = True
        if not found:
            logger.warning("backend does not list children by label; polling each child")
            self._per_child_polling = True

    def _on_list_failure(self, err: BaseException) -> bool:
        self._list_failures += 1
        if not isinstance(err, TransientAdminError):
            logger.warning("listing children of %s failed: %s", self.tag, err)
            if self._list_failures >= _LIST_FAILURES_BEFORE_FALLBACK:
                logger.warning("falling back to polling each child of %s", self.tag)
                self._per_child_polling = True
        self._next_poll = time.monotonic() + _TRANSIENT_BACKOFF.delay(self._list_failures)
        return False

    def _state_call(self, item: WorkItem) -> ChildState:
        return self._call_admin("GetExecution", item, self._admin.get_state, item.execution)

    def _on_state(self, item: WorkItem, state: typing.Any, error: typing.Optional[BaseException]):
        if error is not None:
            logger.warning("could not read the state of %s: %s", item.execution, error)
            return
        if state.is_terminal and item.execution in self._running:
            self._on_terminal(item, state)

    def _on_terminal(self, item: WorkItem, state: ChildState) -> None:
        self._running.pop(item.execution, None)
        self._seen_terminal.setdefault(item.execution, state)
        item.phase = state.phase_name
        if state.phase == Phase.SUCCEEDED:
            self._submit(self._outputs_call, item, self._on_outputs)
            return
        failure = _failure_of(item, state)
        item.failures.append(failure)
        decision = self._decide(failure)
        if decision.retry:
            self._schedule_retry(item, decision)
        else:
            self._fail(item, _child_failed(item, failure, decision))

    def _decide(self, failure: Failure) -> Decision:
        try:
            decision = self._retry.decide(failure)
        except Exception as err:  # noqa: BLE001 - a broken user policy fails the child, not us
            return Decision.give_up(f"the retry policy raised {type(err).__name__}: {err}")
        if not isinstance(decision, Decision):
            return Decision.give_up(f"the retry policy returned {decision!r}, not a Decision")
        return decision

    def _schedule_retry(self, item: WorkItem, decision: Decision) -> None:
        item.attempt += 1
        item.execution = naming.attempt_name(item.base_name, item.attempt)
        item.phase = "RETRY_WAIT"
        self._sequence += 1
        logger.info(
            "child %s will be relaunched as %s in %.1fs (attempt %d)",
            item.base_name,
            item.execution,
            decision.delay,
            item.attempt + 1,
            extra={"eager_child": item.execution},
        )
        heapq.heappush(self._delayed, (time.monotonic() + decision.delay, self._sequence, item))

    def _outputs_call(self, item: WorkItem) -> typing.Any:
        literal_map = self._call_admin(
            "GetExecutionData", item, self._admin.get_outputs, item.execution
        )
        with remote_context(self.remote):
            return to_python(item.entity, item.python_interface, literal_map)

    def _on_outputs(self, item: WorkItem, value: typing.Any, error: typing.Optional[BaseException]):
        if error is not None:
            self._fail(
                item,
                error
                if isinstance(error, EagerQueueError)
                else AdminCallError("GetExecutionData", item.execution, item.entity.name, error),
            )
            return
        item.result = value
        item.status = ItemStatus.SUCCESS
        item.finished_at = time.time()
        self._log_state(item, "SUCCEEDED")
        self._settle(item, value, None)

    # ------------------------------------------------------------------ answering callers

    def _fail(self, item: WorkItem, error: BaseException) -> None:
        self._running.pop(item.execution, None)
        item.error = error
        item.status = ItemStatus.FAILED
        item.finished_at = time.time()
        if item.phase not in ("FAILED", "ABORTED", "TIMED_OUT"):
            item.phase = "FAILED"
        self._log_state(item, item.phase)
        self._settle(item, None, error)

    def _settle(self, item: WorkItem, value: typing.Any, error: typing.Optional[BaseException]):
        """Resolves ``item``'s future on the caller's event loop."""
        future, loop = item.future, item.loop
        if future is None or loop is None:
            return

        def resolve() -> None:
            if future.done():
                return
            if error is not None:
                future.set_exception(error)
            else:
                future.set_result(value)

        try:
            loop.call_soon_threadsafe(resolve)
        except RuntimeError:
            logger.debug("caller loop of %s is closed; result dropped", item.execution)

    def _fail_unfinished(self, reason: str) -> None:
        """Answers every caller still waiting with a :class:`ControllerStateError`."""
        with self.entries_lock:
            waiting = [i for calls in self.entries.values() for i in calls]
        for item in waiting:
            if item.is_in_terminal_state:
                continue
            error = ControllerStateError(
                f"{reason}; child {item.execution} of {item.entity.name} is no longer watched"
            )
            item.status = ItemStatus.FAILED
            item.error = error
            self._settle(item, None, error)

    def _crash_with(self, err: BaseException) -> None:
        with self.entries_lock:
            self._lifecycle = _Lifecycle.CRASHED
            self._crash = err
            waiting = [
                i for calls in self.entries.values() for i in calls if not i.is_in_terminal_state
            ]
        for item in waiting:
            cause = ControllerStateError(
                f"the eager controller of {self.tag} crashed ({type(err).__name__}: {err}); "
                f"child {item.execution} of {item.entity.name} is no longer watched"
            )
            cause.__cause__ = err
            item.status = ItemStatus.FAILED
            item.error = cause
            self._settle(item, None, cause)

    def _refuse_if_unusable(self) -> None:
        if self._lifecycle is _Lifecycle.RUNNING:
            return
        if self._lifecycle is _Lifecycle.CRASHED:
            raise ControllerStateError(
                f"the eager controller of {self.tag} crashed and takes no more work: {self._crash}"
            ) from self._crash
        raise ControllerStateError(
            f"the eager controller of {self.tag} is {self._lifecycle.value} and takes no more work"
        )

    # ------------------------------------------------------------------ views and logs

    def _child_view(self, item: WorkItem) -> deck.ChildView:
        return deck.ChildView(
            entity=item.entity.name,
            kind=item.kind,
            execution=item.execution,
            url=self._console_url(item.execution) if item.execution else "",
            phase=item.phase,
            attempts=item.attempt + 1,
            reattached=item.reattached,
            queued_at=item.queued_at,
            launched_at=item.launched_at,
            finished_at=item.finished_at,
            error=str(item.error) if item.error else "",
            inputs=repr(item.input_kwargs),
            outputs=repr(item.result) if item.status is ItemStatus.SUCCESS else "",
        )

    def _console_url(self, name: str) -> str:
        try:
            return self._admin.console_url(name)
        except Exception:  # noqa: BLE001 - a link is a nicety
            return ""

    def _log_state(self, item: WorkItem, phase: str) -> None:
        item.phase = phase
        took = (item.finished_at or time.time()) - (item.launched_at or item.queued_at)
        logger.info(
            "child %s %s entity=%s attempt=%d duration=%.2fs",
            item.execution,
            phase,
            item.entity.name,
            item.attempt + 1,
            took,
            extra={"eager_child": item.execution, "eager_parent": self.tag},
        )


def naming_kind(entity: typing.Any) -> str:
    from .admin import entity_kind

    return entity_kind(entity)


_KINDS_BY_PHASE = {Phase.TIMED_OUT: FailureKind.TIMED_OUT, Phase.ABORTED: FailureKind.ABORTED}


def _failure_of(item: WorkItem, state: ChildState) -> Failure:
    from flyteidl.core import execution_pb2

    kind = _KINDS_BY_PHASE.get(state.phase)
    if kind is None:
        if "recoverable" in state.error_code.lower():
            kind = FailureKind.RECOVERABLE
        elif state.error_kind == execution_pb2.ExecutionError.SYSTEM:
            kind = FailureKind.SYSTEM
        else:
            kind = FailureKind.USER
    return Failure(
        kind=kind,
        code=state.error_code or state.phase_name,
        message=state.error_message or f"the execution ended {state.phase_name}",
        attempt=item.attempt + 1,
        execution=item.execution,
        entity=item.entity.name,
    )


def _child_failed(item: WorkItem, failure: Failure, decision: Decision) -> ChildFailedError:
    return ChildFailedError(
        execution=item.execution,
        entity=item.entity.name,
        kind=failure.kind.value,
        code=failure.code,
        message=failure.message,
        attempts=item.attempt + 1,
        reason=decision.reason,
    )
