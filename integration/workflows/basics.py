"""Eager workflows of the common shapes: fan-out, chains, nesting, workflows, values, errors."""

import asyncio
import dataclasses
import typing

from flytekit import LaunchPlan, eager, task, workflow
from flytekit.exceptions.base import FlyteException
from flytekit.exceptions.eager import EagerException
from flytekit.types.file import FlyteFile

# Plain tasks. ``async def`` tasks return awaitables inside ``@eager``; the others block.


@task
async def square(x: int) -> int:
    return x * x


@task
async def increment(x: int) -> int:
    return x + 1


@task
def add(a: int, b: int) -> int:
    return a + b


@task
async def nap(seconds: float, label: str) -> str:
    await asyncio.sleep(seconds)
    return label


@task
async def explode(message: str) -> int:
    if message:
        raise ValueError(message)
    return 0


# Fan-out and chains.


@eager
async def fan_out(n: int) -> typing.List[int]:
    """Squares of ``0..n-1``, all children running at once."""
    return list(await asyncio.gather(*(square(x=i) for i in range(n))))


@eager
async def chain(start: int, steps: int) -> int:
    """``start + steps``, one child at a time, each waiting for the previous one."""
    value = start
    for _ in range(steps):
        value = await increment(x=value)
    return value


@eager
async def sync_chain(start: int, steps: int) -> int:
    """Like ``chain`` but through a plain task, whose calls block until the child finishes."""
    value = start
    for _ in range(steps):
        value = add(a=value, b=1)
    return value


# Three levels of eager tasks.


@eager
async def innermost(x: int) -> int:
    return await square(x=x)


@eager
async def middle(x: int) -> int:
    return await innermost(x=x) + 1


@eager
async def outermost(x: int) -> int:
    """``x*x + 1 + 10``, through an eager that awaits an eager that awaits a task."""
    return await middle(x=x) + 10


# Workflows and launch plans.


@workflow
def add_workflow(a: int, b: int) -> int:
    return add(a=a, b=b)


add_ten = LaunchPlan.get_or_create(
    add_workflow, name=f"{__name__}.add_ten", default_inputs={"b": 10}
)


@eager
async def through_workflows(a: int) -> typing.List[int]:
    """``[a + 1, a + 10]``: a sub-workflow call, then a launch plan using its default input."""
    by_workflow = add_workflow(a=a, b=1)
    by_launch_plan = add_ten(a=a)
    return [by_workflow, by_launch_plan]


# Values that need the blob store or a schema.


@dataclasses.dataclass
class Point:
    x: int
    y: int


@task
async def write_text(text: str) -> FlyteFile:
    path = "note.txt"
    with open(path, "w") as handle:
        handle.write(text)
    return FlyteFile(path)


@task
async def read_text(file: FlyteFile) -> str:
    with open(file) as handle:
        return handle.read()


@task
async def shift(point: Point, by: int) -> Point:
    return Point(x=point.x + by, y=point.y + by)


@eager
async def pass_values(text: str, point: Point) -> typing.Tuple[str, Point]:
    """A file written by one child and read by another; a dataclass through two children."""
    file = await write_text(text=text)
    read = await read_text(file=file)
    moved = await shift(point=await shift(point=point, by=1), by=2)
    return read, moved


# Results that are falsy or absent.


@task
async def zero() -> int:
    return 0


@task
async def empty_text() -> str:
    return ""


@task
async def empty_list() -> typing.List[int]:
    return []


@task
async def false() -> bool:
    return False


@task
async def nothing(x: int) -> None:
    del x


class Falsy(typing.NamedTuple):
    zero: int
    empty_text: str
    empty_list: typing.List[int]
    false: bool
    nothing_is_none: bool


@eager
async def falsy_results() -> Falsy:
    """What each child returned, with whether the child without outputs gave None."""
    values = await asyncio.gather(zero(), empty_text(), empty_list(), false(), nothing(x=1))
    return Falsy(values[0], values[1], values[2], values[3], values[4] is None)


@eager
async def no_outputs(n: int) -> None:
    """Runs ``n`` children and returns nothing."""
    await asyncio.gather(*(nothing(x=i) for i in range(n)))


# Failures.


@eager
async def catches_failure(message: str) -> str:
    """Returns what user code saw of a failed child, or says it saw nothing."""
    try:
        await explode(message=message)
    except EagerException as err:
        return f"caught EagerException: {err}"
    except FlyteException as err:
        return f"caught FlyteException: {err}"
    return "no failure seen"


@eager
async def fails_with_child(message: str) -> int:
    """Lets a failing child fail the whole run."""
    ok = await square(x=3)
    return ok + await explode(message=message)


# Consumption order.


@eager
async def completion_order(delays: typing.List[float]) -> typing.List[str]:
    """Labels of children in the order ``asyncio.as_completed`` handed their results over."""
    children = [nap(seconds=delay, label=f"after-{delay:g}s") for delay in delays]
    order = []
    for next_done in asyncio.as_completed(children):
        order.append(await next_done)
    return order
