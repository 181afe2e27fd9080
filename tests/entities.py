"""Real flytekit entities the unit tests hand to the controller."""

import typing

from flytekit import task, workflow


@task
def double(x: int) -> int:
    return x * 2


@task
def greet(name: str) -> str:
    return f"hello {name}"


@task
def total(values: typing.List[int]) -> int:
    return sum(values)


@task
def nothing(x: int) -> None:
    return None


@workflow
def double_wf(x: int) -> int:
    return double(x=x)
