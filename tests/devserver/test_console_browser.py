"""The console as a person sees it: an eager run's pages rendered by headless Chromium.

Chromium is driven through its own command line (``--dump-dom`` and ``--screenshot``), each
call in a fresh profile directory and its own process group, which is killed afterwards.
"""

from __future__ import annotations

import html
import os
import re
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from flytekit.configuration import ImageConfig
from flytekit.remote import FlyteRemote

from flytekitplugins.eagerqueue.devserver import console
from flytekitplugins.eagerqueue.devserver.server import DevServer

from .conftest import DOMAIN, PROJECT, unique_name

CHROMIUM = Path("/usr/bin/chromium")
REPO_ROOT = Path(__file__).resolve().parents[2]
SCREENSHOT = REPO_ROOT / "artifacts" / "console-execution.png"
CONSOLE_WFS = Path(__file__).parent / "console_wfs"
if str(CONSOLE_WFS) not in sys.path:
    sys.path.insert(0, str(CONSOLE_WFS))

import console_demo  # noqa: E402

# A cold Chromium start with a new profile takes a few seconds on two cores.
CHROMIUM_TIMEOUT_SECONDS = 90
_CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)
_CHILD_LINK = re.compile(r'<a href="(/console/projects/[^"]+/executions/[a-z0-9-]+)">')

pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists(), reason="chromium is not installed (apt-get install chromium)"
)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevServer]:
    with DevServer(tmp_path_factory.mktemp("state"), port=0, source_root=CONSOLE_WFS) as dev:
        yield dev


@pytest.fixture(scope="module")
def eager_run(remote: FlyteRemote, version: str) -> str:
    name = unique_name("web")
    execution = remote.execute(
        console_demo.repeat_twice,
        inputs={"word": "tide", "times": 2},
        version=version,
        execution_name=name,
        image_config=ImageConfig.auto_default_image(),
    )
    remote.wait(execution, timeout=timedelta(seconds=180), poll_interval=timedelta(seconds=0.3))
    return name


def chromium(profile: Path, *args: str) -> str:
    """Run Chromium once with a new profile and return its standard output."""
    command = [str(CHROMIUM), *_CHROMIUM_FLAGS, f"--user-data-dir={profile}", *args]
    process = subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        out, _ = process.communicate(timeout=CHROMIUM_TIMEOUT_SECONDS)
    finally:
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        process.wait()
    assert process.returncode == 0, f"chromium exited with {process.returncode}"
    return out.decode()


def dump_dom(tmp_path: Path, url: str) -> str:
    """The DOM of ``url`` after Chromium rendered it."""
    return chromium(tmp_path / f"profile-{uuid.uuid4().hex[:8]}", "--dump-dom", url)


def test_a_browser_shows_an_eager_run_and_follows_a_link_to_a_child(
    server: DevServer, eager_run: str, tmp_path: Path
) -> None:
    parent_url = server.http_url + console.execution_path(PROJECT, DOMAIN, eager_run)

    parent = dump_dom(tmp_path, parent_url)

    assert f"<title>{eager_run} · dev console</title>" in parent
    assert '<span class="phase phase-succeeded">SUCCEEDED</span>' in parent
    assert "<h2>Children (2)</h2>" in parent
    assert 'o0: ["tide tide", "TIDE TIDE TIDE"]' in parent
    children = parent.split("<h2>Children", 1)[1].split("</section>", 1)[0]
    child_paths = _CHILD_LINK.findall(children)
    assert len(child_paths) == 2

    child = dump_dom(tmp_path, server.http_url + html.unescape(child_paths[0]))

    assert '<span class="phase phase-succeeded">SUCCEEDED</span>' in child
    assert f'<a href="{console.execution_path(PROJECT, DOMAIN, eager_run)}">' in child
    assert "console_demo.repeat" in child
    assert re.search(r"repeating (tide 2|TIDE 3) times", child)


def test_a_browser_screenshot_of_the_execution_page_is_saved(
    server: DevServer, eager_run: str, tmp_path: Path
) -> None:
    SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
    SCREENSHOT.unlink(missing_ok=True)
    url = server.http_url + console.execution_path(PROJECT, DOMAIN, eager_run)

    chromium(tmp_path / "profile-shot", f"--screenshot={SCREENSHOT}", "--window-size=1280,900", url)

    assert SCREENSHOT.exists()
    assert SCREENSHOT.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert SCREENSHOT.stat().st_size > 10_000
