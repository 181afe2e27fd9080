"""An eager task that awaits two async tasks concurrently."""

import asyncio

from flytekit import eager, task


@task
async def square(x: int) -> int:
    return x * x


@eager
async def sum_of_squares(a: int, b: int) -> int:
    first, second = await asyncio.gather(square(x=a), square(x=b))
    return first + second
