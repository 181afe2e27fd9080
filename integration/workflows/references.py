"""An eager task calling a task and a launch plan registered earlier, by reference only."""

import os
import typing

from flytekit import eager, reference_launch_plan, reference_task

from integration.workflows import targets

# Inside a task process the execution's project and domain are in the environment; the
# referenced entities live beside the eager run.
PROJECT = os.environ.get("FLYTE_INTERNAL_EXECUTION_PROJECT", "flytesnacks")
DOMAIN = os.environ.get("FLYTE_INTERNAL_EXECUTION_DOMAIN", "development")


@reference_task(project=PROJECT, domain=DOMAIN, name=targets.TRIPLE_NAME, version=targets.VERSION)
def triple(x: int) -> int: ...


@reference_launch_plan(
    project=PROJECT, domain=DOMAIN, name=targets.OFFSET_PLAN_NAME, version=targets.VERSION
)
def offset_plan(x: int) -> int: ...


@eager
async def by_reference(x: int) -> typing.List[int]:
    """``[3*x, 3*x + 7]``: the plan's default ``by`` is filled in by the backend."""
    return [triple(x=x), offset_plan(x=x)]


@eager
async def by_fetched_entities(x: int) -> typing.List[int]:
    """Like ``by_reference``, with the entities fetched from Admin inside the eager run."""
    from flytekit.configuration.plugin import get_plugin

    remote = get_plugin().get_remote(config=None, project=PROJECT, domain=DOMAIN)
    fetched_task = remote.fetch_task(name=targets.TRIPLE_NAME, version=targets.VERSION)
    fetched_plan = remote.fetch_launch_plan(name=targets.OFFSET_PLAN_NAME, version=targets.VERSION)
    return [fetched_task(x=x), fetched_plan(x=x, by=7)]
