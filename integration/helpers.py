"""Waiting, listing children by their eager labels, and reading what a run left behind."""

from __future__ import annotations

import re
import time
import typing

from flytekit.models import filters
from flytekit.models.core.execution import WorkflowExecutionPhase
from flytekit.remote import FlyteRemote
from flytekit.remote.executions import FlyteWorkflowExecution

EAGER_EXEC_LABEL = "eager-exec"
EAGER_ROOT_LABEL = "eager-root-exec"
INPUTS_LABEL = "eagerqueue-inputs"

# Admin's rule for execution names: a DNS-1123 label starting with a letter.
ADMIN_NAME = re.compile(r"^[a-z][a-z0-9-]{0,62}$")

# Page size when listing children; Admin caps pages, so listing pages until a short one.
_PAGE = 100

T = typing.TypeVar("T")


def assert_eventually(
    predicate: typing.Callable[[], T],
    timeout: float = 60.0,
    interval: float = 0.2,
    message: str = "condition not met",
) -> T:
    """Calls ``predicate`` until it returns something truthy and returns that.

    Raises:
        AssertionError: with ``message`` and the last value seen, after ``timeout`` seconds.
    """
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"{message} (within {timeout:g} s; last value: {value!r})")
        time.sleep(interval)


def _by_label(
    remote: FlyteRemote, project: str, domain: str, key: str, value: str
) -> list[typing.Any]:
    found: list[typing.Any] = []
    token = None
    while True:
        page, token = remote.client.list_executions_paginated(
            project,
            domain,
            limit=_PAGE,
            token=token,
            filters=[
                filters.Equal("execution_tag.key", key),
                filters.Equal("execution_tag.value", value),
            ],
        )
        found.extend(page)
        if not token or not page:
            return sorted(found, key=lambda execution: execution.closure.created_at)


def children_of(
    remote: FlyteRemote, execution_name: str, project: str = "", domain: str = ""
) -> list[typing.Any]:
    """Executions launched directly by the eager execution ``execution_name``, oldest first."""
    return _by_label(
        remote,
        project or remote.default_project,
        domain or remote.default_domain,
        EAGER_EXEC_LABEL,
        execution_name,
    )


def descendants_of(
    remote: FlyteRemote, execution_name: str, project: str = "", domain: str = ""
) -> list[typing.Any]:
    """Every execution in the eager tree rooted at ``execution_name``, oldest first."""
    return _by_label(
        remote,
        project or remote.default_project,
        domain or remote.default_domain,
        EAGER_ROOT_LABEL,
        execution_name,
    )


def labels_of(execution: typing.Any) -> dict[str, str]:
    """An execution's labels as a plain dict."""
    return dict(execution.spec.labels.values)


def phase_of(execution: typing.Any) -> str:
    """``SUCCEEDED``, ``FAILED``, ...: the execution's phase by name."""
    return WorkflowExecutionPhase.enum_to_string(execution.closure.phase)


def entity_of(execution: typing.Any) -> str:
    """Short name of the task or launch plan an execution ran (``square``, ``add_pair``)."""
    return execution.spec.launch_plan.name.rsplit(".", 1)[-1]


def error_message(execution: FlyteWorkflowExecution) -> str:
    """The execution's error message, or an empty string when it has none."""
    error = execution.closure.error
    return error.message if error is not None else ""


def succeeded(execution: FlyteWorkflowExecution) -> FlyteWorkflowExecution:
    """Returns ``execution`` after asserting it succeeded, quoting its error otherwise."""
    phase = phase_of(execution)
    assert phase == "SUCCEEDED", f"{execution.id.name} ended {phase}: {error_message(execution)}"
    return execution
