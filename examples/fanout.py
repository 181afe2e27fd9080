"""An eager workflow that fans out, awaits a sub-workflow and a nested eager task, and sums up.

Every call of a task, workflow or eager task below becomes its own Flyte execution,
launched and watched by the eager queue's Controller. Calls of ``async`` tasks and eager
tasks return awaitables, so ``asyncio.gather`` runs them at once::

    pyflyte run --remote examples/fanout.py fanout --n 20

With ``n`` children ``square(0..n-1)``, one ``add_pair`` workflow and one nested ``scale``
eager task (which has three children of its own), the result is
``sum(i*i) + (0 + (n-1)**2) + 2*(1+2+3)``: 2843 for n=20.
"""

import asyncio
import typing

from flytekit import eager, task, workflow


@task
async def square(x: int) -> int:
    return x * x


@task
def add(a: int, b: int) -> int:
    return a + b


@task
async def multiply(x: int, k: int) -> int:
    return x * k


@workflow
def add_pair(a: int, b: int) -> int:
    return add(a=a, b=b)


@eager
async def scale(values: typing.List[int], factor: int) -> typing.List[int]:
    """A nested eager task: its children are grandchildren of the root run."""
    return list(await asyncio.gather(*(multiply(x=v, k=factor) for v in values)))


@eager
async def fanout(n: int = 20) -> int:
    squares = await asyncio.gather(*(square(x=i) for i in range(n)))
    # Workflows and plain (non-async) tasks block until their execution finishes.
    pair = add_pair(a=squares[0], b=squares[-1])
    scaled = await scale(values=[1, 2, 3], factor=2)
    return sum(squares) + pair + sum(scaled)


def expected(n: int) -> int:
    """What ``fanout(n)`` returns."""
    return sum(i * i for i in range(n)) + (n - 1) ** 2 + 12
