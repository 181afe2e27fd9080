"""A workflow run with ``pyflyte run --remote`` (fast registration)."""

from flytekit import task, workflow


@task
def greet(name: str) -> str:
    return f"hello {name}"


@task
def shout(text: str) -> str:
    return text.upper()


@workflow
def greet_wf(name: str = "dev") -> str:
    return shout(text=greet(name=name))
