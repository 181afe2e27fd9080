"""An eager workflow registered with ``pyflyte register`` and launched from its launch plan."""

import asyncio

from flytekit import eager, task


@task
async def cube(x: int) -> int:
    return x * x * x


@eager
async def sum_of_cubes(n: int = 3) -> int:
    return sum(await asyncio.gather(*(cube(x=i) for i in range(1, n + 1))))
