"""Eager workflows for fault tests: children that take a while, and parents that can retry."""

import asyncio
import time

from flytekit import TaskMetadata, eager, task


@task
async def one(i: int) -> int:
    return i


@task
async def sleeper(seconds: float, tag: int) -> int:
    time.sleep(seconds)
    return tag


@eager
async def fan(n: int) -> int:
    """Sums 0..n-1, one child per number."""
    return sum(await asyncio.gather(*(one(i=i) for i in range(n))))


@eager
async def hold(n: int, seconds: float) -> int:
    """Runs ``n`` children that each sleep ``seconds``."""
    return sum(await asyncio.gather(*(sleeper(seconds=seconds, tag=i) for i in range(n))))


# flytekit's @eager drops a plain retries= argument; the metadata object carries it.
@eager(metadata=TaskMetadata(retries=1))
async def retried_hold(n: int, seconds: float) -> int:
    """Like ``hold``, but the platform retries the parent once if its process dies."""
    return sum(await asyncio.gather(*(sleeper(seconds=seconds, tag=i) for i in range(n))))


@eager
async def survives_a_failed_launch(x: int) -> int:
    """Catches the error of a call whose input does not convert, then carries on."""
    try:
        await one(i="not a number")  # type: ignore[arg-type]
    except TypeError:
        pass
    return await one(i=x)
