"""Trivial eager workflows the benchmark runs under both controllers."""

import asyncio

from flytekit import eager, task


@task
async def noop(i: int) -> int:
    return i + 1


@eager
async def fan(n: int) -> int:
    return sum(await asyncio.gather(*(noop(i=i) for i in range(n))))


@eager
async def chain(n: int) -> int:
    value = 0
    for _ in range(n):
        value = await noop(i=value)
    return value
