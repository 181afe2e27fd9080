"""A task that fails recoverably a set number of times, counting attempts in a directory.

The directory is an input, so every attempt (each its own process and execution) sees the
count of the ones before it. It must be on a filesystem task processes share.
"""

import os
import uuid

from flytekit import eager, task
from flytekit.exceptions.user import FlyteRecoverableException


def attempts_in(directory: str) -> int:
    """How many attempts have started so far."""
    return len([n for n in os.listdir(directory) if n.startswith("attempt-")])


@task
async def flaky(directory: str, failures: int) -> int:
    """Fails recoverably on the first ``failures`` attempts; then returns the attempt number."""
    with open(os.path.join(directory, f"attempt-{uuid.uuid4().hex}"), "w"):
        pass
    attempt = attempts_in(directory)
    if attempt <= failures:
        raise FlyteRecoverableException(f"attempt {attempt} of flaky fails on purpose")
    return attempt


@eager
async def retries_flaky(directory: str, failures: int) -> int:
    return await flaky(directory=directory, failures=failures)
