"""Eager workflows for naming, retry and bad-input cases."""

import asyncio

from flytekit import eager, task


@task
async def flaky(x: int) -> int:
    """Succeeds; the dev backend's fault injection kills its first attempts."""
    return x * 10


@task
async def plain(i: int) -> int:
    return i


@task
async def refuses(x: int) -> int:
    if x >= 0:
        raise ValueError(f"refusing {x}")
    return x


@eager
async def call_flaky(x: int) -> int:
    return await flaky(x=x)


@eager
async def call_refuses(x: int) -> int:
    return await refuses(x=x)


@eager
async def pair(n: int) -> int:
    return sum(await asyncio.gather(*(plain(i=i) for i in range(n))))


@eager
async def bad_input(x: int) -> int:
    """Awaits a call whose input does not convert, and does not catch the error."""
    return await plain(i="seven")  # type: ignore[arg-type]


def shouting_names(request) -> str:
    """A user naming policy that breaks Admin's rule."""
    return f"CHILD-{request.occurrence}"


@eager
async def mixed(x: int) -> int:
    """One child succeeds, one is retried and succeeds, one fails and is caught."""
    first = await plain(i=x)
    second = await flaky(x=x)
    try:
        await refuses(x=x)
    except Exception:  # noqa: BLE001 - the deck must show this failure
        pass
    return first + second


@eager
async def inner(n: int) -> int:
    return await pair(n=n)


@eager
async def outer(n: int) -> int:
    """Three levels: outer -> inner -> pair -> plain."""
    return await inner(n=n)
