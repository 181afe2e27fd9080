"""``pyflyte run --remote`` (fast registration) and an ``@eager`` task on the dev backend."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from devpkg import eager_wf
from flytekit.models.core.execution import WorkflowExecutionPhase
from flytekit.remote import FlyteRemote

from flytekitplugins.eagerqueue.devserver.server import DevServer

from .conftest import DOMAIN, PROJECT, WFS_ROOT, unique_name

PYFLYTE = str(Path(sys.executable).with_name("pyflyte"))


def test_pyflyte_run_remote_fast_registers_and_runs_a_workflow(
    server: DevServer, remote: FlyteRemote
) -> None:
    name = unique_name("pyf")
    command = [
        PYFLYTE,
        "--config",
        str(server.config_path),
        "run",
        "--remote",
        "--name",
        name,
        "--wait",
        "--poll-interval",
        "1",
        "fast_wf.py",
        "greet_wf",
        "--name",
        "laptop",
    ]
    env = {k: v for k, v in os.environ.items() if not k.startswith("FLYTE")}
    done = subprocess.run(
        command, cwd=WFS_ROOT, env=env, capture_output=True, text=True, timeout=180
    )
    assert done.returncode == 0, done.stdout + done.stderr
    execution = remote.fetch_execution(project=PROJECT, domain=DOMAIN, name=name)
    assert execution.closure.phase == WorkflowExecutionPhase.SUCCEEDED
    assert execution.outputs["o0"] == "HELLO LAPTOP"
    counts = server.rpc_counts()
    assert counts["DataProxyService/CreateUploadLocation"] >= 1
    uploads = list((server.state_dir / "uploads").rglob("fast*.tar.gz"))
    assert uploads, "the code archive was not stored under the state directory"


def test_an_eager_task_awaiting_two_tasks_succeeds(run: Callable) -> None:
    execution = run(eager_wf.sum_of_squares, inputs={"a": 3, "b": 4}, timeout=180)
    assert execution.error is None, execution.error
    assert execution.outputs["o0"] == 25


def test_eager_children_carry_the_parent_label(remote: FlyteRemote, run: Callable) -> None:
    parent = run(eager_wf.sum_of_squares, inputs={"a": 1, "b": 2}, timeout=180)
    assert parent.outputs["o0"] == 5
    from flytekit.models import filters

    children, _ = remote.client.list_executions_paginated(
        PROJECT,
        DOMAIN,
        filters=[
            filters.Equal("execution_tag.key", "eager-exec"),
            filters.Equal("execution_tag.value", parent.id.name),
        ],
    )
    assert len(children) == 2
    assert all(re.match(r"^[a-z][a-z0-9-]*$", c.id.name) for c in children)
