"""The web console of the dev backend, fetched over real HTTP from a running server."""

from __future__ import annotations

import html
import re
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from flyteidl.admin import execution_pb2
from flyteidl.core import identifier_pb2, literals_pb2
from flytekit.configuration import Config, ImageConfig
from flytekit.remote import FlyteRemote
from flytekit.remote.executions import FlyteWorkflowExecution

from flytekitplugins.eagerqueue.devserver import console
from flytekitplugins.eagerqueue.devserver.server import DevServer
from flytekitplugins.eagerqueue.devserver.store import Phase

from .conftest import DOMAIN, PROJECT, unique_name

CONSOLE_WFS = Path(__file__).parent / "console_wfs"
if str(CONSOLE_WFS) not in sys.path:
    sys.path.insert(0, str(CONSOLE_WFS))

import console_demo  # noqa: E402

WORD = "<b>&bold"
CHILD_LINK = re.compile(
    r'href="(/console/projects/[a-z0-9-]+/domains/[a-z0-9-]+/executions/[^"]+)"'
)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevServer]:
    with DevServer(tmp_path_factory.mktemp("state"), port=0, source_root=CONSOLE_WFS) as dev:
        yield dev


def execute(remote: FlyteRemote, version: str, entity: object, **inputs: object) -> str:
    """Run ``entity`` to a terminal phase and return the execution's name."""
    name = unique_name("con")
    execution = remote.execute(
        entity,
        inputs=inputs,
        version=version,
        execution_name=name,
        image_config=ImageConfig.auto_default_image(),
    )
    remote.wait(execution, timeout=timedelta(seconds=180), poll_interval=timedelta(seconds=0.3))
    return name


def get(url: str) -> tuple[int, str]:
    """Status and body of a GET, 4xx and 5xx included."""
    try:
        with urllib.request.urlopen(url, timeout=30) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def page_of(server: DevServer, name: str) -> str:
    status, body = get(server.http_url + console.execution_path(PROJECT, DOMAIN, name))
    assert status == 200, body
    return body


def children_links(page: str) -> list[str]:
    section = page.split("<h2>Children", 1)[1].split("</section>", 1)[0]
    return CHILD_LINK.findall(section)


@pytest.fixture(scope="module")
def eager_run(server: DevServer, remote: FlyteRemote, version: str) -> str:
    return execute(remote, version, console_demo.repeat_twice, word=WORD, times=2)


class TestExecutionPage:
    def test_an_eager_run_shows_its_phase_entity_times_and_inputs(
        self, server: DevServer, eager_run: str
    ) -> None:
        page = page_of(server, eager_run)

        assert '<span class="phase phase-succeeded">SUCCEEDED</span>' in page
        assert f"{PROJECT}/{DOMAIN}" in page
        assert "console_demo.repeat_twice" in page
        for label in ("Created", "Started", "Updated", "Finished", "Duration"):
            assert f"<dt>{label}</dt>" in page
        assert html.escape(f'word: "{WORD}"') in page
        assert "times: 2" in page

    def test_an_eager_run_shows_its_outputs_escaped(
        self, server: DevServer, eager_run: str
    ) -> None:
        page = page_of(server, eager_run)

        expected = f'o0: ["{WORD} {WORD}", "{WORD.upper()} {WORD.upper()} {WORD.upper()}"]'
        assert html.escape(expected) in page
        assert WORD not in page

    def test_an_eager_run_lists_its_two_children_with_phase_and_links(
        self, server: DevServer, eager_run: str
    ) -> None:
        page = page_of(server, eager_run)

        assert "<h2>Children (2)</h2>" in page
        links = children_links(page)
        assert len(links) == 2
        section = page.split("<h2>Children", 1)[1]
        assert section.count("phase-succeeded") >= 2
        assert "console_demo.repeat" in section

    def test_an_eager_run_shows_the_tail_of_its_task_log(
        self, server: DevServer, eager_run: str
    ) -> None:
        page = page_of(server, eager_run)

        assert "<h2>Task log</h2>" in page
        assert html.escape(f"launching two children for {WORD}") in page

    def test_a_child_page_links_back_to_its_parent_and_root(
        self, server: DevServer, eager_run: str
    ) -> None:
        child_path = children_links(page_of(server, eager_run))[0]

        status, child = get(server.http_url + html.unescape(child_path))

        assert status == 200, child
        parent_link = f'href="{console.execution_path(PROJECT, DOMAIN, eager_run)}"'
        facts = child.split("<h2>Summary</h2>", 1)[1].split("</section>", 1)[0]
        assert f"<dt>Parent</dt><dd><a {parent_link}>" in facts
        assert f"<dt>Root</dt><dd><a {parent_link}>" in facts
        assert f"eager-exec={eager_run}" in facts
        assert (
            html.escape(f"repeating {WORD} 2 times") in child
            or html.escape(f"repeating {WORD.upper()} 3 times") in child
        )

    def test_a_failed_task_shows_the_error_code_kind_and_message(
        self, server: DevServer, remote: FlyteRemote, version: str
    ) -> None:
        name = execute(remote, version, console_demo.refuse, reason="<no>")

        page = page_of(server, name)

        assert '<span class="phase phase-failed">FAILED</span>' in page
        error = page.split("<h2>Error</h2>", 1)[1].split("</section>", 1)[0]
        assert "kind <code>USER</code>" in error
        assert html.escape("refused: <no>") in error
        assert "<h2>Outputs</h2>" not in page


class TestConsoleUrl:
    def test_the_generated_config_makes_generate_console_url_open_the_execution_page(
        self, server: DevServer, eager_run: str
    ) -> None:
        remote = FlyteRemote(
            Config.auto(config_file=str(server.config_path)),
            default_project=PROJECT,
            default_domain=DOMAIN,
        )
        execution = remote.fetch_execution(name=eager_run)

        url = remote.generate_console_url(execution)

        assert url == server.http_url + console.execution_path(PROJECT, DOMAIN, eager_run)
        status, page = get(url)
        assert status == 200 and eager_run in page

    def test_a_remote_given_only_the_grpc_endpoint_links_to_the_grpc_port(
        self, server: DevServer, remote: FlyteRemote, eager_run: str
    ) -> None:
        execution: FlyteWorkflowExecution = remote.fetch_execution(name=eager_run)

        url = remote.generate_console_url(execution)

        assert url == f"http://{server.endpoint}" + console.execution_path(
            PROJECT, DOMAIN, eager_run
        )


class TestListPage:
    def test_the_list_shows_recent_executions_with_phase_and_links(
        self, server: DevServer, eager_run: str
    ) -> None:
        status, page = get(server.http_url + "/console")

        assert status == 200
        assert f'href="{console.execution_path(PROJECT, DOMAIN, eager_run)}"' in page
        assert "phase-succeeded" in page
        assert "console_demo.repeat_twice" in page

    def test_the_project_domain_list_shows_the_same_executions(
        self, server: DevServer, eager_run: str
    ) -> None:
        url = f"{server.http_url}/console/projects/{PROJECT}/domains/{DOMAIN}/executions"

        status, page = get(url)

        assert status == 200
        assert f'href="{console.execution_path(PROJECT, DOMAIN, eager_run)}"' in page

    def test_a_page_past_the_end_is_empty_and_a_bad_page_number_is_a_404(
        self, server: DevServer
    ) -> None:
        status, page = get(server.http_url + "/console?page=999")
        assert status == 200 and "No executions." in page

        for bad in ("0", "-1", "x", str(console.MAX_PAGE + 1)):
            assert get(f"{server.http_url}/console?page={bad}")[0] == 404


class TestBoundsAndSafety:
    def test_an_unknown_execution_is_a_404(self, server: DevServer) -> None:
        status, page = get(server.http_url + console.execution_path(PROJECT, DOMAIN, "nope-123"))

        assert status == 404
        assert "does not exist" in page

    @pytest.mark.parametrize(
        "path",
        [
            "/console/projects/flytesnacks/domains/development/executions/..%2F..%2Fstate.db",
            "/console/projects/flytesnacks/domains/development/executions/../../../state.db",
            "/console/projects/../../../../etc/domains/passwd/executions/x",
            "/console/projects/flytesnacks/domains/development/executions/UPPER",
            "/console/projects/flytesnacks/domains/development/executions/a/../../x",
            "/console/projects/flytesnacks/domains/development/executions/%00",
        ],
    )
    def test_a_path_outside_the_naming_rule_is_a_404(self, server: DevServer, path: str) -> None:
        status, page = get(server.http_url + path)

        assert status == 404
        assert "SQLite" not in page and "root:" not in page

    def test_thousands_of_children_show_the_first_500_quickly(self, server: DevServer) -> None:
        parent = unique_name("big")
        spec = task_spec("console_demo.repeat")
        server.store.create_execution(PROJECT, DOMAIN, parent, spec, b"", [])
        for index in range(2000):
            server.store.create_execution(
                PROJECT,
                DOMAIN,
                f"{parent}-c{index}",
                spec,
                b"",
                [("eager-exec", parent), ("eager-root-exec", parent)],
            )

        started = time.monotonic()
        page = page_of(server, parent)
        elapsed = time.monotonic() - started

        assert elapsed < 2.0, f"page took {elapsed:.2f} s"
        assert "<h2>Children (2000)</h2>" in page
        assert "Showing the first 500 of 2000 children; 1500 more are not shown." in page
        assert len(children_links(page)) == console.CHILDREN_LIMIT


def task_spec(task_name: str) -> bytes:
    spec = execution_pb2.ExecutionSpec()
    spec.launch_plan.CopyFrom(
        identifier_pb2.Identifier(
            resource_type=identifier_pb2.ResourceType.TASK,
            project=PROJECT,
            domain=DOMAIN,
            name=task_name,
            version=f"v{uuid.uuid4().hex[:6]}",
        )
    )
    return spec.SerializeToString()


class TestLiteralText:
    def test_scalars_render_like_python(self) -> None:
        literals = literals_pb2.LiteralMap()
        literals.literals["i"].scalar.primitive.integer = 3
        literals.literals["f"].scalar.primitive.float_value = 1.5
        literals.literals["s"].scalar.primitive.string_value = 'say "hi"'
        literals.literals["b"].scalar.primitive.boolean = True
        literals.literals["n"].scalar.none_type.SetInParent()

        text = console.literal_map_to_text(literals)

        assert text.splitlines() == ["b: True", "f: 1.5", "i: 3", "n: None", 's: "say \\"hi\\""']

    def test_collections_maps_and_blobs_render_nested(self) -> None:
        literal = literals_pb2.Literal()
        item = literal.collection.literals.add()
        item.map.literals["k"].scalar.primitive.integer = 1
        blob = literal.collection.literals.add().scalar.blob
        blob.uri = "file:///tmp/x.csv"
        blob.metadata.type.format = "csv"

        assert (
            console.literal_to_text(literal) == '[{"k": 1}, blob file:///tmp/x.csv (csv, single)]'
        )

    def test_a_long_collection_is_cut_and_says_how_many_items_are_left_out(self) -> None:
        literal = literals_pb2.Literal()
        for value in range(console.MAX_LITERAL_ITEMS + 5):
            literal.collection.literals.add().scalar.primitive.integer = value

        assert console.literal_to_text(literal).endswith(", 99, … 5 more]")

    def test_an_empty_map_reads_none(self) -> None:
        assert console.literal_map_to_text(literals_pb2.LiteralMap()) == "(none)"


class TestFormatting:
    def test_durations_read_in_seconds_minutes_or_hours(self) -> None:
        assert console.format_duration(0.4231) == "0.42 s"
        assert console.format_duration(185) == "3 min 05 s"
        assert console.format_duration(7380) == "2 h 03 min"
        assert console.format_duration(None) == "—"

    def test_times_read_in_utc_with_milliseconds(self) -> None:
        assert console.format_time(0.25) == "1970-01-01 00:00:00.250 UTC"

    def test_a_log_tail_keeps_the_last_lines_and_says_it_cut(self, tmp_path: Path) -> None:
        log = tmp_path / "task.log"
        log.write_text("".join(f"line {n}\n" for n in range(500)))

        text, cut = console.read_log_tail(log, lines=3)

        assert text == "line 497\nline 498\nline 499"
        assert cut

    def test_a_log_tail_of_a_short_log_is_the_whole_log(self, tmp_path: Path) -> None:
        log = tmp_path / "task.log"
        log.write_text("only\n")

        assert console.read_log_tail(log) == ("only", False)

    def test_task_logs_never_follow_a_symbolic_link_out_of_the_state_dir(
        self, tmp_path: Path
    ) -> None:
        secret = tmp_path / "secret.txt"
        secret.write_text("do not show")
        attempt = tmp_path / "state" / "data" / "p" / "d" / "run" / "n0" / "0"
        attempt.mkdir(parents=True)
        (attempt / "task.log").symlink_to(secret)
        (attempt.parent / "1").symlink_to(attempt)

        logs, left_out = console.task_logs(tmp_path / "state", "p", "d", "run")

        assert logs == [] and left_out == 0


def test_the_public_names_are_pinned() -> None:
    assert console.__all__ == [
        "CHILDREN_LIMIT",
        "Children",
        "ConsoleReader",
        "SEGMENT_PATTERN",
        "TaskLog",
        "execution_page",
        "execution_path",
        "format_duration",
        "format_time",
        "handle",
        "list_page",
        "literal_map_to_text",
        "literal_to_text",
        "read_log_tail",
        "task_logs",
    ]


def test_every_phase_has_a_colour_class() -> None:
    for name in Phase.keys():
        assert f".phase-{name.lower()}" in console._STYLE, name
