"""Fixtures that start a real dev backend on a free loopback port."""

from __future__ import annotations

import sys
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from flytekit.configuration import Config, ImageConfig, PlatformConfig
from flytekit.remote import FlyteRemote
from flytekit.remote.executions import FlyteWorkflowExecution

from flytekitplugins.eagerqueue.devserver.server import DevServer

WFS_ROOT = Path(__file__).parent / "wfs"
if str(WFS_ROOT) not in sys.path:
    sys.path.insert(0, str(WFS_ROOT))

PROJECT = "flytesnacks"
DOMAIN = "development"


def make_remote(server: DevServer, upload_dir: Path) -> FlyteRemote:
    """A FlyteRemote talking to ``server`` without TLS, uploading inputs to a plain dir."""
    return FlyteRemote(
        Config(platform=PlatformConfig(endpoint=server.endpoint, insecure=True)),
        default_project=PROJECT,
        default_domain=DOMAIN,
        data_upload_location=str(upload_dir),
    )


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevServer]:
    with DevServer(tmp_path_factory.mktemp("state"), port=0, source_root=WFS_ROOT) as dev:
        yield dev


@pytest.fixture(scope="module")
def remote(server: DevServer, tmp_path_factory: pytest.TempPathFactory) -> FlyteRemote:
    return make_remote(server, tmp_path_factory.mktemp("client_uploads"))


@pytest.fixture(scope="module")
def version() -> str:
    return f"v{uuid.uuid4().hex[:10]}"


@pytest.fixture
def run(remote: FlyteRemote, version: str) -> Callable[..., FlyteWorkflowExecution]:
    """Execute an entity at the module's version and wait for it, polling quickly."""

    def execute(entity: object, timeout: float = 120, **kwargs: object) -> FlyteWorkflowExecution:
        kwargs.setdefault("image_config", ImageConfig.auto_default_image())
        execution = remote.execute(entity, version=version, **kwargs)
        return remote.wait(
            execution, timeout=timedelta(seconds=timeout), poll_interval=timedelta(seconds=0.3)
        )

    return execute


def unique_name(prefix: str) -> str:
    """A valid execution name that no other test uses."""
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def eventually(check: Callable[[], bool], timeout: float = 30, interval: float = 0.1) -> None:
    """Wait until ``check()`` is true, failing the test after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout} s")
        time.sleep(interval)


def start_sleeper(
    remote: FlyteRemote, version: str, pid_file: Path
) -> tuple[FlyteWorkflowExecution, int]:
    """Launches ``basic.sleep_and_record_pid`` for two minutes; returns it and its task's pid."""
    from devpkg import basic

    execution = remote.execute(
        basic.sleep_and_record_pid,
        inputs={"seconds": 120.0, "pid_file": str(pid_file)},
        version=version,
        image_config=ImageConfig.auto_default_image(),
    )
    eventually(lambda: pid_file.exists() and pid_file.read_text() != "", timeout=60)
    return execution, int(pid_file.read_text())
