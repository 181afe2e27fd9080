"""Entities registered on their own, then called from eager tasks by reference."""

import hashlib
import pathlib

from flytekit import LaunchPlan, task, workflow

# Version under which these entities are registered and referenced: it changes with this
# file, so an edit never collides with an earlier registration.
VERSION = "ref-" + hashlib.sha256(pathlib.Path(__file__).read_bytes()).hexdigest()[:12]
TRIPLE_NAME = f"{__name__}.triple"
OFFSET_PLAN_NAME = f"{__name__}.offset_plan"


@task
def triple(x: int) -> int:
    return 3 * x


@task
def add_by(x: int, by: int) -> int:
    return x + by


@workflow
def offset(x: int, by: int) -> int:
    """``3*x + by``."""
    return add_by(x=triple(x=x), by=by)


offset_plan = LaunchPlan.get_or_create(offset, name=OFFSET_PLAN_NAME, default_inputs={"by": 7})
