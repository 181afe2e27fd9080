"""Small tasks, workflows and launch plans the dev backend tests run."""

import os
import time

from flytekit import LaunchPlan, task, workflow


@task
def double(x: int) -> int:
    return x * 2


@task
def add(a: int, b: int) -> int:
    return a + b


@task
def fail(message: str) -> int:
    if message:
        raise ValueError(message)
    return 0


@task
def sleep_and_record_pid(seconds: float, pid_file: str) -> int:
    with open(pid_file, "w") as out:
        out.write(str(os.getpid()))
    time.sleep(seconds)
    return 0


@workflow
def double_then_add(x: int, y: int) -> int:
    return add(a=double(x=x), b=y)


add_lp = LaunchPlan.get_or_create(
    workflow=double_then_add,
    name="devpkg.basic.add_lp",
    default_inputs={"x": 5},
    fixed_inputs={"y": 100},
)


@task
def append_pid_and_sleep(seconds: float, marker: str) -> str:
    with open(marker, "a") as out:
        out.write(f"{os.getpid()}\n")
    time.sleep(seconds)
    return f"slept {seconds}"


@task
def import_wave() -> bool:
    import wave

    return wave.__name__ == "wave"


@task
def module_loaded_before_import(name: str) -> bool:
    import sys

    return name in sys.modules
