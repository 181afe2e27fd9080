"""The Admin and DataProxy gRPC servicers of the dev backend.

Every RPC, implemented or not, goes through one guard that counts the call and turns every
failure into a gRPC status. No handler lets an exception escape: gRPC would report it as
UNKNOWN, and flytekit answers UNKNOWN by starting an interactive login.
"""

from __future__ import annotations

import base64
import functools
import logging
import secrets
import time
import urllib.parse
from collections.abc import Callable
from pathlib import Path
from typing import Any

import grpc
from flyteidl.admin import (
    common_pb2,
    execution_pb2,
    launch_plan_pb2,
    node_execution_pb2,
    project_pb2,
    task_pb2,
    version_pb2,
    workflow_pb2,
)
from flyteidl.core import compiler_pb2, identifier_pb2
from flyteidl.service import admin_pb2_grpc, dataproxy_pb2, dataproxy_pb2_grpc
from google.protobuf import timestamp_pb2

from flytekitplugins.eagerqueue.devserver import catalog, filters
from flytekitplugins.eagerqueue.devserver.errors import (
    AdminError,
    InvalidArgumentError,
    NotFoundError,
)
from flytekitplugins.eagerqueue.devserver.faults import FaultInjector
from flytekitplugins.eagerqueue.devserver.paths import check_relative_path, safe_join
from flytekitplugins.eagerqueue.devserver.runner import Runner
from flytekitplugins.eagerqueue.devserver.stats import RpcStats
from flytekitplugins.eagerqueue.devserver.store import EntityRecord, ExecutionRecord, Phase, Store

logger = logging.getLogger(__name__)

ResourceType = identifier_pb2.ResourceType
Handler = Callable[[Any, grpc.ServicerContext], Any]

DEFAULT_PROJECT = "flytesnacks"
DEFAULT_DOMAINS = ("development", "staging", "production")
BACKEND_VERSION = "eagerqueue-dev-0.1.0"
# Lifetime reported for signed upload URLs when the request does not ask for one.
_DEFAULT_UPLOAD_EXPIRY_SECONDS = 3600


def _timestamp(seconds: float | None) -> timestamp_pb2.Timestamp:
    stamp = timestamp_pb2.Timestamp()
    if seconds is not None:
        stamp.FromNanoseconds(int(seconds * 1e9))
    return stamp


def _guard(method: str, handler: Handler, stats: RpcStats, faults: FaultInjector | None) -> Handler:
    """Wrap ``handler`` so it counts calls, injects faults and answers failures with a status."""

    @functools.wraps(handler)
    def guarded(request: Any, context: grpc.ServicerContext) -> Any:
        stats.count(method)
        injected = faults.before_call(method) if faults is not None else None
        if injected is not None:
            context.abort(injected, f"injected fault: {method} answered {injected.name}")
        try:
            return handler(request, context)
        except AdminError as exc:
            code, message = exc.code, exc.message
            logger.debug("%s answered %s: %s", method, code.name, message)
        except NotImplementedError:
            code, message = grpc.StatusCode.UNIMPLEMENTED, f"{method} is not implemented"
        except Exception as exc:
            logger.exception("%s failed", method)
            code, message = grpc.StatusCode.INTERNAL, f"{method} failed: {exc!r}"
        context.abort(code, message)

    return guarded


def install_guards(
    servicer: object,
    base: type,
    service: str,
    stats: RpcStats,
    faults: FaultInjector | None = None,
) -> None:
    """Replace every RPC method of ``servicer`` (as declared by ``base``) with a guarded one."""
    for name in dir(base):
        if name.startswith("_") or not callable(getattr(base, name)):
            continue
        guarded = _guard(f"{service}/{name}", getattr(servicer, name), stats, faults)
        setattr(servicer, name, guarded)


def _require_id(identifier: identifier_pb2.Identifier, what: str) -> None:
    for part in ("project", "domain", "name", "version"):
        if not getattr(identifier, part):
            raise InvalidArgumentError(f"{what} id is missing its {part}")


def _entity_id(record: EntityRecord) -> identifier_pb2.Identifier:
    return identifier_pb2.Identifier(
        resource_type=record.resource_type,
        project=record.project,
        domain=record.domain,
        name=record.name,
        version=record.version,
    )


def execution_proto(record: ExecutionRecord) -> execution_pb2.Execution:
    """The Admin view of a stored execution."""
    execution = execution_pb2.Execution()
    execution.id.project, execution.id.domain, execution.id.name = (
        record.project,
        record.domain,
        record.name,
    )
    execution.spec.ParseFromString(record.spec)
    closure = execution.closure
    closure.phase = record.phase
    closure.created_at.CopyFrom(_timestamp(record.created_at))
    closure.updated_at.CopyFrom(_timestamp(record.updated_at))
    if record.started_at is not None:
        closure.started_at.CopyFrom(_timestamp(record.started_at))
        end = record.finished_at if record.finished_at is not None else time.time()
        closure.duration.FromNanoseconds(int(max(0.0, end - record.started_at) * 1e9))
    if record.error:
        closure.error.ParseFromString(record.error)
    elif record.abort_cause is not None:
        closure.abort_metadata.cause = record.abort_cause
        closure.abort_metadata.principal = "dev-backend"
    return execution


class AdminService(admin_pb2_grpc.AdminServiceServicer):
    """The subset of Flyte Admin that flytekit needs, backed by a :class:`Store`."""

    def __init__(
        self, store: Store, runner: Runner, stats: RpcStats, faults: FaultInjector | None = None
    ) -> None:
        self._store = store
        self._runner = runner
        install_guards(self, admin_pb2_grpc.AdminServiceServicer, "AdminService", stats, faults)

    # Tasks.

    def CreateTask(self, request: task_pb2.TaskCreateRequest, context: Any) -> Any:
        _require_id(request.id, "task")
        self._create(ResourceType.TASK, request.id, request.spec.SerializeToString())
        return task_pb2.TaskCreateResponse()

    def GetTask(self, request: common_pb2.ObjectGetRequest, context: Any) -> task_pb2.Task:
        record = self._get(ResourceType.TASK, request.id)
        return self._task_proto(record)

    def ListTasks(self, request: common_pb2.ResourceListRequest, context: Any) -> Any:
        records, token = self._list(ResourceType.TASK, request)
        return task_pb2.TaskList(tasks=[self._task_proto(r) for r in records], token=token)

    def _task_proto(self, record: EntityRecord) -> task_pb2.Task:
        task = task_pb2.Task(id=_entity_id(record))
        spec = task_pb2.TaskSpec.FromString(record.spec)
        task.closure.compiled_task.template.CopyFrom(spec.template)
        task.closure.created_at.CopyFrom(_timestamp(record.created_at))
        return task

    # Workflows.

    def CreateWorkflow(self, request: workflow_pb2.WorkflowCreateRequest, context: Any) -> Any:
        _require_id(request.id, "workflow")
        self._create(ResourceType.WORKFLOW, request.id, request.spec.SerializeToString())
        return workflow_pb2.WorkflowCreateResponse()

    def GetWorkflow(self, request: common_pb2.ObjectGetRequest, context: Any) -> Any:
        return self._workflow_proto(self._get(ResourceType.WORKFLOW, request.id))

    def ListWorkflows(self, request: common_pb2.ResourceListRequest, context: Any) -> Any:
        records, token = self._list(ResourceType.WORKFLOW, request)
        workflows = [self._workflow_proto(r) for r in records]
        return workflow_pb2.WorkflowList(workflows=workflows, token=token)

    def _workflow_proto(self, record: EntityRecord) -> workflow_pb2.Workflow:
        workflow = workflow_pb2.Workflow(id=_entity_id(record))
        closure: compiler_pb2.CompiledWorkflowClosure = catalog.compile_workflow(
            self._store, workflow.id
        )
        workflow.closure.compiled_workflow.CopyFrom(closure)
        workflow.closure.created_at.CopyFrom(_timestamp(record.created_at))
        return workflow

    # Launch plans.

    def CreateLaunchPlan(
        self, request: launch_plan_pb2.LaunchPlanCreateRequest, context: Any
    ) -> Any:
        _require_id(request.id, "launch plan")
        self._create(ResourceType.LAUNCH_PLAN, request.id, request.spec.SerializeToString())
        return launch_plan_pb2.LaunchPlanCreateResponse()

    def GetLaunchPlan(self, request: common_pb2.ObjectGetRequest, context: Any) -> Any:
        return self._launch_plan_proto(self._get(ResourceType.LAUNCH_PLAN, request.id))

    def ListLaunchPlans(self, request: common_pb2.ResourceListRequest, context: Any) -> Any:
        records, token = self._list(ResourceType.LAUNCH_PLAN, request)
        plans = [self._launch_plan_proto(r) for r in records]
        return launch_plan_pb2.LaunchPlanList(launch_plans=plans, token=token)

    def UpdateLaunchPlan(
        self, request: launch_plan_pb2.LaunchPlanUpdateRequest, context: Any
    ) -> Any:
        _require_id(request.id, "launch plan")
        self._store.set_entity_state(
            ResourceType.LAUNCH_PLAN, *catalog.id_key(request.id), request.state
        )
        return launch_plan_pb2.LaunchPlanUpdateResponse()

    def GetActiveLaunchPlan(
        self, request: launch_plan_pb2.ActiveLaunchPlanRequest, context: Any
    ) -> Any:
        entity = request.id
        where = filters.Where("state = ?", (launch_plan_pb2.ACTIVE,))
        records = self._store.list_entities(
            ResourceType.LAUNCH_PLAN,
            entity.project,
            entity.domain,
            entity.name,
            where,
            filters.build_order_by(None),
            filters.Page(1, 0),
        )
        if not records:
            raise NotFoundError(
                f"no active launch plan {entity.project}/{entity.domain}/{entity.name}"
            )
        return self._launch_plan_proto(records[0])

    def _launch_plan_proto(self, record: EntityRecord) -> launch_plan_pb2.LaunchPlan:
        plan = launch_plan_pb2.LaunchPlan(id=_entity_id(record))
        plan.spec.ParseFromString(record.spec)
        closure = plan.closure
        closure.state = record.state
        closure.expected_inputs.CopyFrom(plan.spec.default_inputs)
        closure.created_at.CopyFrom(_timestamp(record.created_at))
        closure.updated_at.CopyFrom(_timestamp(record.updated_at))
        return plan

    # Shared entity helpers.

    def _create(
        self, resource_type: int, identifier: identifier_pb2.Identifier, spec: bytes
    ) -> None:
        self._store.create_entity(resource_type, *catalog.id_key(identifier), spec)
        logger.info("registered %s", catalog.describe(identifier))

    def _get(self, resource_type: int, identifier: identifier_pb2.Identifier) -> EntityRecord:
        try:
            return self._store.get_entity(resource_type, *catalog.id_key(identifier))
        except NotFoundError:
            wanted = identifier_pb2.Identifier()
            wanted.CopyFrom(identifier)
            wanted.resource_type = resource_type
            raise NotFoundError(f"{catalog.describe(wanted)} does not exist") from None

    def _list(
        self, resource_type: int, request: common_pb2.ResourceListRequest
    ) -> tuple[list[EntityRecord], str]:
        where = filters.build_where(request.filters, filters.ENTITY_FIELDS)
        sort = request.sort_by if request.HasField("sort_by") else None
        page = filters.parse_page(request.limit, request.token)
        records = self._store.list_entities(
            resource_type,
            request.id.project,
            request.id.domain,
            request.id.name,
            where,
            filters.build_order_by(sort),
            page,
        )
        return records[: page.limit], page.next_token(len(records))

    # Executions.

    def CreateExecution(self, request: execution_pb2.ExecutionCreateRequest, context: Any) -> Any:
        if not request.project or not request.domain:
            raise InvalidArgumentError("an execution needs a project and a domain")
        record = self._runner.launch(
            request.project, request.domain, request.name, request.spec, request.inputs
        )
        response = execution_pb2.ExecutionCreateResponse()
        response.id.project, response.id.domain, response.id.name = (
            record.project,
            record.domain,
            record.name,
        )
        return response

    def GetExecution(self, request: execution_pb2.WorkflowExecutionGetRequest, context: Any) -> Any:
        return execution_proto(self._execution(request.id))

    def GetExecutionData(
        self, request: execution_pb2.WorkflowExecutionGetDataRequest, context: Any
    ) -> Any:
        record = self._execution(request.id)
        response = execution_pb2.WorkflowExecutionGetDataResponse()
        response.full_inputs.ParseFromString(record.inputs)
        if record.phase == Phase.Value("SUCCEEDED") and record.outputs is not None:
            response.full_outputs.ParseFromString(record.outputs)
        return response

    def ListExecutions(self, request: common_pb2.ResourceListRequest, context: Any) -> Any:
        where = filters.build_where(request.filters, filters.EXECUTION_FIELDS)
        sort = request.sort_by if request.HasField("sort_by") else None
        page = filters.parse_page(request.limit, request.token)
        records = self._store.list_executions(
            request.id.project, request.id.domain, where, filters.build_order_by(sort, "e."), page
        )
        executions = [execution_proto(r) for r in records[: page.limit]]
        return execution_pb2.ExecutionList(
            executions=executions, token=page.next_token(len(records))
        )

    def TerminateExecution(
        self, request: execution_pb2.ExecutionTerminateRequest, context: Any
    ) -> Any:
        self._runner.terminate(
            request.id.project, request.id.domain, request.id.name, request.cause
        )
        return execution_pb2.ExecutionTerminateResponse()

    def ListNodeExecutions(self, request: Any, context: Any) -> Any:
        return node_execution_pb2.NodeExecutionList(token="")

    def _execution(self, identifier: identifier_pb2.WorkflowExecutionIdentifier) -> ExecutionRecord:
        return self._store.get_execution(identifier.project, identifier.domain, identifier.name)

    # Platform.

    def GetVersion(self, request: Any, context: Any) -> version_pb2.GetVersionResponse:
        version = version_pb2.Version(Build="dev", Version=BACKEND_VERSION, BuildTime="")
        return version_pb2.GetVersionResponse(control_plane_version=version)

    def GetDomains(self, request: Any, context: Any) -> project_pb2.GetDomainsResponse:
        return project_pb2.GetDomainsResponse(domains=_domains())

    def ListProjects(self, request: Any, context: Any) -> project_pb2.Projects:
        project = project_pb2.Project(id=DEFAULT_PROJECT, name=DEFAULT_PROJECT, domains=_domains())
        return project_pb2.Projects(projects=[project], token="")


def _domains() -> list[project_pb2.Domain]:
    return [project_pb2.Domain(id=domain, name=domain) for domain in DEFAULT_DOMAINS]


class DataProxyService(dataproxy_pb2_grpc.DataProxyServiceServicer):
    """Hands out upload locations served by the dev backend's HTTP endpoint."""

    def __init__(
        self,
        uploads_root: Path,
        http_url: Callable[[], str],
        stats: RpcStats,
        faults: FaultInjector | None = None,
    ) -> None:
        self._uploads_root = uploads_root
        self._http_url = http_url
        install_guards(
            self, dataproxy_pb2_grpc.DataProxyServiceServicer, "DataProxyService", stats, faults
        )

    def CreateUploadLocation(
        self, request: dataproxy_pb2.CreateUploadLocationRequest, context: Any
    ) -> dataproxy_pb2.CreateUploadLocationResponse:
        relpath = upload_relpath(request)
        target = safe_join(self._uploads_root, relpath, "upload location")
        response = dataproxy_pb2.CreateUploadLocationResponse(
            signed_url=f"{self._http_url()}/upload/{urllib.parse.quote(relpath)}",
            native_url=str(target),
        )
        expires = request.expires_in.seconds or _DEFAULT_UPLOAD_EXPIRY_SECONDS
        response.expires_at.CopyFrom(_timestamp(time.time() + expires))
        return response


def upload_relpath(request: dataproxy_pb2.CreateUploadLocationRequest) -> str:
    """``<project>/<domain>/<filename_root or base32(md5)>/<filename>`` for an upload request.

    Raises:
        InvalidArgumentError: if any part is empty where required, absolute, or contains
            ``..``, NUL or (for project and domain) a slash.
    """
    for what, value in (("project", request.project), ("domain", request.domain)):
        check_relative_path(value, what)
        if "/" in value or "\\" in value or value in (".", ".."):
            raise InvalidArgumentError(f"{what} {value!r} must be a single path segment")
    check_relative_path(request.filename, "filename")
    root = request.filename_root
    if root:
        check_relative_path(root, "filename_root")
    elif request.content_md5:
        root = base64.b32encode(request.content_md5).decode()
    else:
        root = secrets.token_hex(16)
    return f"{request.project}/{request.domain}/{root}/{request.filename}"


__all__ = [
    "AdminService",
    "DataProxyService",
    "execution_proto",
    "install_guards",
    "upload_relpath",
]
