"""Reading registered entities back as the protos Admin serves and the runner executes."""

from __future__ import annotations

from flyteidl.admin import launch_plan_pb2, task_pb2, workflow_pb2
from flyteidl.core import (
    compiler_pb2,
    identifier_pb2,
    literals_pb2,
    tasks_pb2,
)
from flyteidl.core import (
    workflow_pb2 as core_wf,
)

from flytekitplugins.eagerqueue.devserver.errors import InvalidArgumentError, NotFoundError
from flytekitplugins.eagerqueue.devserver.store import Store

ResourceType = identifier_pb2.ResourceType
IdKey = tuple[str, str, str, str]


def id_key(identifier: identifier_pb2.Identifier) -> IdKey:
    """The (project, domain, name, version) key of an identifier."""
    return (identifier.project, identifier.domain, identifier.name, identifier.version)


def describe(identifier: identifier_pb2.Identifier) -> str:
    """A readable ``TYPE project/domain/name@version`` form of an identifier."""
    kind = ResourceType.Name(identifier.resource_type)
    return f"{kind} {identifier.project}/{identifier.domain}/{identifier.name}@{identifier.version}"


def _get(store: Store, identifier: identifier_pb2.Identifier, resource_type: int) -> bytes:
    try:
        return store.get_entity(resource_type, *id_key(identifier)).spec
    except NotFoundError:
        wanted = identifier_pb2.Identifier()
        wanted.CopyFrom(identifier)
        wanted.resource_type = resource_type
        raise NotFoundError(f"{describe(wanted)} does not exist") from None


def task_template(store: Store, identifier: identifier_pb2.Identifier) -> tasks_pb2.TaskTemplate:
    """The registered template of a task.

    Raises:
        NotFoundError: naming the task when it is not registered.
    """
    spec = task_pb2.TaskSpec.FromString(_get(store, identifier, ResourceType.TASK))
    return spec.template


def workflow_spec(store: Store, identifier: identifier_pb2.Identifier) -> workflow_pb2.WorkflowSpec:
    """The registered spec (template and sub-workflows) of a workflow."""
    return workflow_pb2.WorkflowSpec.FromString(_get(store, identifier, ResourceType.WORKFLOW))


def launch_plan_spec(
    store: Store, identifier: identifier_pb2.Identifier
) -> launch_plan_pb2.LaunchPlanSpec:
    """The registered spec of a launch plan."""
    data = _get(store, identifier, ResourceType.LAUNCH_PLAN)
    return launch_plan_pb2.LaunchPlanSpec.FromString(data)


def _referenced_task_ids(
    templates: list[core_wf.WorkflowTemplate],
) -> list[identifier_pb2.Identifier]:
    seen: dict[IdKey, identifier_pb2.Identifier] = {}
    for template in templates:
        nodes = list(template.nodes)
        if template.HasField("failure_node"):
            nodes.append(template.failure_node)
        for node in nodes:
            if node.HasField("task_node"):
                seen.setdefault(id_key(node.task_node.reference_id), node.task_node.reference_id)
            if node.HasField("array_node") and node.array_node.node.HasField("task_node"):
                ref = node.array_node.node.task_node.reference_id
                seen.setdefault(id_key(ref), ref)
    return list(seen.values())


def compile_workflow(
    store: Store, identifier: identifier_pb2.Identifier
) -> compiler_pb2.CompiledWorkflowClosure:
    """The compiled closure of a workflow: its template, sub-workflows and every task it uses.

    Raises:
        NotFoundError: when the workflow, or a task one of its nodes references, is missing.
    """
    spec = workflow_spec(store, identifier)
    closure = compiler_pb2.CompiledWorkflowClosure()
    closure.primary.template.CopyFrom(spec.template)
    for sub in spec.sub_workflows:
        closure.sub_workflows.add().template.CopyFrom(sub)
    for task_id in _referenced_task_ids([spec.template, *spec.sub_workflows]):
        closure.tasks.add().template.CopyFrom(task_template(store, task_id))
    return closure


def merge_launch_plan_inputs(
    spec: launch_plan_pb2.LaunchPlanSpec, given: literals_pb2.LiteralMap
) -> literals_pb2.LiteralMap:
    """Combine a launch plan's default and fixed inputs with the inputs a caller supplied.

    Raises:
        InvalidArgumentError: if a fixed input is overridden or a required input is missing.
    """
    merged = literals_pb2.LiteralMap()
    for name, parameter in spec.default_inputs.parameters.items():
        if parameter.HasField("default"):
            merged.literals[name].CopyFrom(parameter.default)
    for name, literal in given.literals.items():
        if name in spec.fixed_inputs.literals:
            raise InvalidArgumentError(f"input {name!r} is fixed by the launch plan")
        merged.literals[name].CopyFrom(literal)
    for name, literal in spec.fixed_inputs.literals.items():
        merged.literals[name].CopyFrom(literal)
    for name, parameter in spec.default_inputs.parameters.items():
        if parameter.required and name not in merged.literals:
            raise InvalidArgumentError(f"required input {name!r} was not supplied")
    return merged
