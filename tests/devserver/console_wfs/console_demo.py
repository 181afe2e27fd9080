"""Workflows the console tests run: an eager task that fans out to two tasks, and a failing task.

The word passed in is echoed into outputs and logs, so a test can pass markup and check that
every page escapes it.
"""

import asyncio

from flytekit import eager, task


@task
async def repeat(word: str, times: int) -> str:
    print(f"repeating {word} {times} times", flush=True)
    return " ".join([word] * times)


@eager
async def repeat_twice(word: str, times: int) -> list[str]:
    print(f"launching two children for {word}", flush=True)
    first, second = await asyncio.gather(
        repeat(word=word, times=times), repeat(word=word.upper(), times=times + 1)
    )
    return [first, second]


@task
def refuse(reason: str) -> int:
    if reason:
        raise ValueError(f"refused: {reason}")
    return 0
