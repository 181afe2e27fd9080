"""The narrow view of Flyte Admin that the controller needs, and its FlyteRemote implementation.

The controller talks to Admin only through :class:`AdminClient`: launch a child, list the
children of a parent that finished, read one child's state, read its outputs, terminate
it. Unit tests replace it with a scripted in-memory fake; in production it is
:class:`RemoteAdmin`, which goes through the eager task's ``FlyteRemote`` so that entities
are registered and launched exactly as flytekit does it.

Every call either returns, raises :class:`~flytekitplugins.eagerqueue.errors.TransientAdminError`
(worth retrying: UNAVAILABLE, DEADLINE_EXCEEDED, RESOURCE_EXHAUSTED, INTERNAL, ABORTED, a
broken channel) or raises another exception (a permanent failure for that call).
"""

from __future__ import annotations

import dataclasses
import logging
import typing

import grpc
from flyteidl.admin import common_pb2, execution_pb2
from flyteidl.core import execution_pb2 as core_execution_pb2
from flyteidl.core import identifier_pb2

from .errors import TransientAdminError

logger = logging.getLogger(__name__)

#: Label the controller adds to every child: the digest of the child's inputs, so that a
#: re-attach can check that an existing execution was launched with the same inputs.
INPUT_DIGEST_LABEL = "eagerqueue-inputs"

# Admin's default maximum page size is 100 in many deployments; larger pages are refused.
_LIST_PAGE_SIZE = 100

_TRANSIENT_CODES = frozenset(
    {
        grpc.StatusCode.UNAVAILABLE,
        grpc.StatusCode.DEADLINE_EXCEEDED,
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        grpc.StatusCode.INTERNAL,
        grpc.StatusCode.ABORTED,
    }
)

Phase = core_execution_pb2.WorkflowExecution.Phase
TERMINAL_PHASES = frozenset({Phase.SUCCEEDED, Phase.FAILED, Phase.ABORTED, Phase.TIMED_OUT})
_TERMINAL_PHASE_NAMES = "SUCCEEDED;FAILED;ABORTED;TIMED_OUT"


@dataclasses.dataclass(frozen=True)
class ChildState:
    """What the controller knows of one child execution at one moment."""

    name: str
    phase: int
    labels: typing.Mapping[str, str] = dataclasses.field(default_factory=dict)
    error_code: str = ""
    error_message: str = ""
    error_kind: int = 0
    created_at: float = 0.0
    updated_at: float = 0.0

    @property
    def is_terminal(self) -> bool:
        return self.phase in TERMINAL_PHASES

    @property
    def phase_name(self) -> str:
        return Phase.Name(self.phase)

    @classmethod
    def from_execution(cls, execution: execution_pb2.Execution) -> ChildState:
        closure = execution.closure
        return cls(
            name=execution.id.name,
            phase=closure.phase,
            labels=dict(execution.spec.labels.values),
            error_code=closure.error.code,
            error_message=closure.error.message,
            error_kind=closure.error.kind,
            created_at=closure.created_at.ToMicroseconds() / 1e6,
            updated_at=closure.updated_at.ToMicroseconds() / 1e6,
        )


@dataclasses.dataclass(frozen=True)
class LaunchRequest:
    """One child to create.

    Attributes:
        name: execution name.
        entity: the flytekit entity (task, workflow, launch plan, reference or remote entity).
        inputs: input name to flytekit ``Literal``.
        version: version to register and launch the entity at.
        labels: labels of the execution.
        envs: environment of the execution.
    """

    name: str
    entity: typing.Any
    inputs: typing.Mapping[str, typing.Any]
    version: str
    labels: typing.Mapping[str, str]
    envs: typing.Mapping[str, str]


class AdminClient(typing.Protocol):
    """What the controller asks of Flyte Admin."""

    def launch(self, request: LaunchRequest) -> ChildState:
        """Creates the execution; if the name exists, returns the existing one's state."""

    def list_finished(
        self, parent_tag: str, stop_at: typing.Callable[[ChildState], bool]
    ) -> typing.Optional[list[ChildState]]:
        """Children of ``parent_tag`` in a terminal phase, most recently updated first.

        Pages until a page holds a child for which ``stop_at`` is true. Returns None if the
        backend cannot filter by label, in which case the caller polls children one by one.
        """

    def lists_children(self, parent_tag: str) -> bool:
        """Whether a label filter for ``parent_tag`` finds at least one child."""

    def get_state(self, name: str) -> ChildState:
        """The current state of one child."""

    def get_outputs(self, name: str) -> typing.Any:
        """The output ``LiteralMap`` (flytekit model) of a succeeded child."""

    def get_inputs(self, name: str) -> dict[str, typing.Any]:
        """The inputs (name to flytekit ``Literal``) an existing execution was launched with."""

    def terminate(self, name: str, cause: str) -> None:
        """Asks Admin to abort one child; a child already finished is not an error."""

    def console_url(self, name: str) -> str:
        """Where a person can look at the child."""


def transient_code(err: BaseException) -> typing.Optional[str]:
    """The gRPC status name if ``err`` (or what caused it) is worth retrying, else None."""
    seen = 0
    current: typing.Optional[BaseException] = err
    while current is not None and seen < 8:
        if isinstance(current, TransientAdminError):
            return current.code
        if isinstance(current, grpc.RpcError) and hasattr(current, "code"):
            code = current.code()
            return code.name if code in _TRANSIENT_CODES else None
        if isinstance(current, (ConnectionError, TimeoutError)):
            return "UNAVAILABLE"
        current = current.__cause__ or current.__context__
        seen += 1
    from flytekit.exceptions.system import FlyteSystemUnavailableException
    from flytekit.exceptions.user import FlyteTimeout

    if isinstance(err, FlyteSystemUnavailableException):
        return "UNAVAILABLE"
    if isinstance(err, FlyteTimeout):
        return "DEADLINE_EXCEEDED"
    return None


def _children_filter(parent_tag: str) -> str:
    """Admin's filter for executions labelled ``eager-exec=<parent_tag>`` (one tag row)."""
    from flytekit.core.constants import EAGER_TAG_KEY

    return f"eq(execution_tag.key,{EAGER_TAG_KEY})+eq(execution_tag.value,{parent_tag})"


def _raise_transient(rpc: str, err: BaseException) -> None:
    code = transient_code(err)
    if code is not None:
        raise TransientAdminError(rpc, code, err) from err


def entity_kind(entity: typing.Any) -> str:
    """``eager``, ``task``, ``workflow``, ``launch_plan`` or ``reference`` for naming and logs."""
    from flytekit.core.base_task import PythonTask
    from flytekit.core.launch_plan import LaunchPlan
    from flytekit.core.python_function_task import EagerAsyncPythonFunctionTask
    from flytekit.core.reference_entity import ReferenceEntity
    from flytekit.core.workflow import WorkflowBase

    if isinstance(entity, EagerAsyncPythonFunctionTask):
        return "eager"
    if isinstance(entity, ReferenceEntity):
        return "reference"
    if isinstance(entity, PythonTask):
        return "task"
    if isinstance(entity, WorkflowBase):
        return "workflow"
    if isinstance(entity, LaunchPlan):
        return "launch_plan"
    return "remote"


class RemoteAdmin:
    """:class:`AdminClient` over a ``FlyteRemote``, registering entities the way flytekit does.

    Args:
        remote: the eager task's remote; children land in its default project and domain.
        serialization_settings: used to register entities that Admin does not know yet.
    """

    def __init__(self, remote: typing.Any, serialization_settings: typing.Any):
        self._remote = remote
        self._ss = serialization_settings
        self._project = remote.default_project
        self._domain = remote.default_domain
        self._sort = "updated_at"

    def launch(self, request: LaunchRequest) -> ChildState:
        from flytekit.core.options import Options
        from flytekit.models.common import Labels

        try:
            execution = self._remote.execute(
                entity=request.entity,
                execution_name=request.name,
                inputs=dict(request.inputs),
                version=request.version,
                image_config=self._ss.image_config,
                options=Options(labels=Labels(dict(request.labels))),
                envs=dict(request.envs),
                serialization_settings=self._ss,
            )
        except Exception as err:
            _raise_transient("CreateExecution", err)
            raise
        return ChildState.from_execution(execution.to_flyte_idl())

    def list_finished(
        self, parent_tag: str, stop_at: typing.Callable[[ChildState], bool]
    ) -> typing.Optional[list[ChildState]]:
        filters = f"{_children_filter(parent_tag)}+value_in(phase,{_TERMINAL_PHASE_NAMES})"
        found: list[ChildState] = []
        token = ""
        while True:
            page = self._list_page(filters, token)
            if page is None:
                return None
            states = [ChildState.from_execution(e) for e in page.executions]
            found.extend(states)
            token = page.token
            if not token or any(stop_at(s) for s in states):
                return found

    def lists_children(self, parent_tag: str) -> bool:
        page = self._list_page(_children_filter(parent_tag), "", limit=1)
        return bool(page is not None and page.executions)

    def _list_page(
        self, filters: str, token: str, limit: int = _LIST_PAGE_SIZE
    ) -> typing.Optional[execution_pb2.ExecutionList]:
        request = common_pb2.ResourceListRequest(
            id=common_pb2.NamedEntityIdentifier(project=self._project, domain=self._domain),
            limit=limit,
            token=token,
            filters=filters,
            sort_by=common_pb2.Sort(key=self._sort, direction=common_pb2.Sort.DESCENDING),
        )
        try:
            return self._remote.client.raw.list_executions_paginated(request)
        except Exception as err:
            _raise_transient("ListExecutions", err)
            from flytekit.exceptions.user import FlyteInvalidInputException

            if isinstance(err, FlyteInvalidInputException) and self._sort != "created_at":
                # Some Admin versions only sort by created_at; the stop rule then reads
                # more pages but stays correct.
                logger.info("ListExecutions refused sort by %s; using created_at", self._sort)
                self._sort = "created_at"
                return self._list_page(filters, token, limit)
            if isinstance(err, FlyteInvalidInputException):
                logger.warning("Admin refused the label filter; polling children one by one")
                return None
            raise

    def get_state(self, name: str) -> ChildState:
        request = execution_pb2.WorkflowExecutionGetRequest(id=self._exec_id(name))
        execution = self._rpc("GetExecution", self._remote.client.raw.get_execution, request)
        return ChildState.from_execution(execution)

    def get_outputs(self, name: str) -> typing.Any:
        return self._execution_data(name, "outputs")

    def get_inputs(self, name: str) -> dict[str, typing.Any]:
        return dict(self._execution_data(name, "inputs").literals)

    def _execution_data(self, name: str, which: str) -> typing.Any:
        """The ``inputs`` or ``outputs`` LiteralMap of one execution, inline or downloaded."""
        from flytekit.models.literals import LiteralMap

        request = execution_pb2.WorkflowExecutionGetDataRequest(id=self._exec_id(name))
        data = self._rpc("GetExecutionData", self._remote.client.raw.get_execution_data, request)
        if data.HasField(f"full_{which}"):
            return LiteralMap.from_flyte_idl(getattr(data, f"full_{which}"))
        url = getattr(data, which).url
        if url:
            return self._download_literal_map(url)
        return LiteralMap(literals={})

    @staticmethod
    def _rpc(rpc: str, call: typing.Callable, request: typing.Any) -> typing.Any:
        """Calls ``call(request)``, turning transient failures into TransientAdminError."""
        try:
            return call(request)
        except Exception as err:
            _raise_transient(rpc, err)
            raise

    def _download_literal_map(self, url: str) -> typing.Any:
        from flyteidl.core import literals_pb2
        from flytekit.core.context_manager import FlyteContextManager
        from flytekit.models.literals import LiteralMap

        with self._remote.remote_context():
            ctx = FlyteContextManager.current_context()
            local = ctx.file_access.get_random_local_path()
            ctx.file_access.get_data(url, local)
            proto = literals_pb2.LiteralMap()
            with open(local, "rb") as handle:
                proto.ParseFromString(handle.read())
        return LiteralMap.from_flyte_idl(proto)

    def terminate(self, name: str, cause: str) -> None:
        request = execution_pb2.ExecutionTerminateRequest(id=self._exec_id(name), cause=cause)
        self._rpc("TerminateExecution", self._remote.client.raw.terminate_execution, request)

    def console_url(self, name: str) -> str:
        from flytekit.models.core.identifier import WorkflowExecutionIdentifier

        return self._remote.generate_console_url(
            WorkflowExecutionIdentifier(self._project, self._domain, name)
        )

    def _exec_id(self, name: str) -> identifier_pb2.WorkflowExecutionIdentifier:
        return identifier_pb2.WorkflowExecutionIdentifier(
            project=self._project, domain=self._domain, name=name
        )
