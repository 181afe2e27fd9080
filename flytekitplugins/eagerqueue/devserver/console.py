"""A read-only web console for the dev backend: plain HTML pages served over loopback HTTP.

Routes (GET, on the dev backend's HTTP server)::

    /console                                                  newest executions, ?page=N
    /console/projects/<p>/domains/<d>/executions              the same, in one project/domain
    /console/projects/<p>/domains/<d>/executions/<name>       one execution

The last path is the one ``FlyteRemote.generate_console_url`` builds for an execution, so a
link printed by flytekit opens here once ``console.endpoint`` names this HTTP server.

The pages read ``<state_dir>/state.db`` through a read-only SQLite connection of their own and
task logs from ``<state_dir>/data/<p>/<d>/<name>/<node>/<attempt>/task.log``. Every path
segment must match :data:`SEGMENT_PATTERN`; anything else, and any unknown execution, is a 404.
No page runs JavaScript or loads anything from elsewhere, and every value is HTML-escaped.
"""

from __future__ import annotations

import dataclasses
import datetime
import html
import json
import logging
import os
import re
import sqlite3
import time
import urllib.parse
from collections.abc import Iterable, Iterator, Sequence
from contextlib import closing, contextmanager
from dataclasses import dataclass
from http import HTTPStatus
from pathlib import Path
from typing import TYPE_CHECKING

from flyteidl.admin import execution_pb2
from flyteidl.core import execution_pb2 as core_execution_pb2
from flyteidl.core import identifier_pb2, literals_pb2
from google.protobuf import json_format, text_format
from google.protobuf.message import DecodeError

from flytekitplugins.eagerqueue.devserver import http as dev_http
from flytekitplugins.eagerqueue.devserver.errors import InvalidArgumentError
from flytekitplugins.eagerqueue.devserver.paths import safe_join
from flytekitplugins.eagerqueue.devserver.store import TERMINAL_PHASES, ExecutionRecord, Phase

if TYPE_CHECKING:
    from flytekitplugins.eagerqueue.devserver.http import _RequestHandler

logger = logging.getLogger(__name__)

# Admin's rule for execution names; projects and domains in the console's paths obey it too.
SEGMENT_PATTERN = re.compile(r"^[a-z][a-z0-9-]*$")
# Admin's longest execution name; a longer segment cannot name anything stored.
SEGMENT_MAX_LENGTH = 63
# Label keys flytekit's eager tasks put on the executions they launch.
EAGER_PARENT_LABEL = "eager-exec"
EAGER_ROOT_LABEL = "eager-root-exec"
# Rows of the children table; an eager fan-out of thousands renders in well under a second.
CHILDREN_LIMIT = 500
# Rows per list page, and the deepest page served (OFFSET cost grows with the page number).
PAGE_SIZE = 50
MAX_PAGE = 10_000
# Lines of each task log shown, read from at most this many bytes at the end of the file.
LOG_TAIL_LINES = 200
LOG_TAIL_BYTES = 256 * 1024
# Task attempts whose logs one execution page shows; a workflow with more nodes says so.
MAX_LOG_FILES = 20
# Items of one collection or map, and characters of one rendered value, before cutting.
MAX_LITERAL_ITEMS = 100
MAX_VALUE_CHARS = 20_000
# Seconds between automatic reloads of a page showing an execution that is still running.
REFRESH_SECONDS = 3

_COLUMNS = ", ".join(f"e.{field.name}" for field in dataclasses.fields(ExecutionRecord))
_CHILD_CONDITION = (
    "(e.id IN (SELECT t.execution_id FROM execution_tags t WHERE t.key=? AND t.value=?) "
    "OR e.parent_name=?)"
)
_ENTITY_KINDS = {
    identifier_pb2.ResourceType.TASK: "task",
    identifier_pb2.ResourceType.WORKFLOW: "workflow",
    identifier_pb2.ResourceType.LAUNCH_PLAN: "launch plan",
}


def handle(request: _RequestHandler, rest: str) -> dev_http.Response:
    """Route handler for ``/console`` and everything under ``/console/``."""
    state_dir = state_dir_of(request.dev.uploads_root)
    query = urllib.parse.parse_qs(urllib.parse.urlsplit(request.path).query)
    trimmed = rest.strip("/")
    parts = trimmed.split("/") if trimmed else []
    try:
        return _route(ConsoleReader(state_dir), parts, query)
    except _NotFound as missing:
        return _html(_not_found_page(str(missing)), HTTPStatus.NOT_FOUND)


def state_dir_of(uploads_root: Path) -> Path:
    """The state directory behind a dev HTTP server; ``DevServer`` keeps uploads in
    ``<state_dir>/uploads``."""
    return Path(uploads_root).parent


class _NotFound(Exception):
    """A console path that names nothing; the message is shown on the 404 page."""


def _route(
    reader: ConsoleReader, parts: list[str], query: dict[str, list[str]]
) -> dev_http.Response:
    if not parts:
        return _html(list_page(reader, "", "", _page_number(query)))
    if len(parts) in (5, 6) and parts[0::2][:3] == ["projects", "domains", "executions"]:
        project, domain = _segment(parts[1]), _segment(parts[3])
        if len(parts) == 5:
            return _html(list_page(reader, project, domain, _page_number(query)))
        return _html(execution_page(reader, project, domain, _segment(parts[5])))
    raise _NotFound("no console page at this address")


def _segment(value: str) -> str:
    if len(value) > SEGMENT_MAX_LENGTH or not SEGMENT_PATTERN.match(value):
        raise _NotFound(f"{value!r} is not a valid name: it must match {SEGMENT_PATTERN.pattern}")
    return value


def _page_number(query: dict[str, list[str]]) -> int:
    value = query.get("page", ["1"])[-1]
    if not value.isdigit() or not 1 <= int(value) <= MAX_PAGE:
        raise _NotFound(f"page {value!r} must be a whole number from 1 to {MAX_PAGE}")
    return int(value)


def _html(body: str, status: int = HTTPStatus.OK) -> dev_http.Response:
    return dev_http.Response(status, body.encode(), "text/html; charset=utf-8")


# Reading state.


@dataclass(frozen=True)
class Children:
    """The first executions launched by one execution, and how many there are in all."""

    shown: list[ExecutionRecord]
    total: int

    @property
    def left_out(self) -> int:
        """How many children the table does not show."""
        return self.total - len(self.shown)


class ConsoleReader:
    """Read-only queries on ``<state_dir>/state.db``, one short connection per call."""

    def __init__(self, state_dir: Path) -> None:
        self.state_dir = Path(state_dir)
        self.db_path = self.state_dir / "state.db"

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        if not self.db_path.is_file():
            raise _NotFound("the dev backend has recorded nothing yet")
        uri = f"file:{urllib.parse.quote(str(self.db_path))}?mode=ro"
        with closing(sqlite3.connect(uri, uri=True, timeout=5)) as conn:
            yield conn

    def execution(self, project: str, domain: str, name: str) -> ExecutionRecord:
        """One execution; a 404 when it does not exist."""
        with self._connect() as conn:
            row = conn.execute(
                f"SELECT {_COLUMNS} FROM executions e "
                "WHERE e.project=? AND e.domain=? AND e.name=?",
                (project, domain, name),
            ).fetchone()
        if row is None:
            raise _NotFound(f"execution {project}/{domain}/{name} does not exist")
        return ExecutionRecord(*row)

    def recent(self, project: str, domain: str, limit: int, offset: int) -> list[ExecutionRecord]:
        """Newest executions first, in the order they were recorded (the primary key, so no
        sort of the whole table); empty ``project`` and ``domain`` match all."""
        sql = f"SELECT {_COLUMNS} FROM executions e WHERE 1"
        params: list[object] = []
        if project:
            sql += " AND e.project=? AND e.domain=?"
            params += [project, domain]
        sql += " ORDER BY e.id DESC LIMIT ? OFFSET ?"
        with self._connect() as conn:
            rows = conn.execute(sql, [*params, limit, offset]).fetchall()
        return [ExecutionRecord(*row) for row in rows]

    def children(self, name: str, limit: int = CHILDREN_LIMIT) -> Children:
        """Executions labelled ``eager-exec=<name>`` or launched as its launch-plan nodes."""
        params = (EAGER_PARENT_LABEL, name, name)
        with self._connect() as conn:
            rows = conn.execute(
                f"SELECT {_COLUMNS} FROM executions e WHERE {_CHILD_CONDITION} "
                "ORDER BY e.created_at, e.id LIMIT ?",
                (*params, limit),
            ).fetchall()
            (total,) = conn.execute(
                f"SELECT COUNT(*) FROM executions e WHERE {_CHILD_CONDITION}", params
            ).fetchone()
        return Children([ExecutionRecord(*row) for row in rows], total)


# Task logs.


@dataclass(frozen=True)
class TaskLog:
    """The end of one task attempt's log: which node and attempt, and its last lines."""

    node: str
    attempt: str
    text: str
    cut: bool


def task_logs(state_dir: Path, project: str, domain: str, name: str) -> tuple[list[TaskLog], int]:
    """The logs of an execution's task attempts, in node and attempt order, and how many
    further attempts were left out. Symbolic links are never followed."""
    try:
        root = safe_join(state_dir, f"data/{project}/{domain}/{name}", "execution data")
    except InvalidArgumentError:
        return [], 0
    found = sorted(_log_paths(root), key=lambda item: (item[0], _attempt_order(item[1])))
    logs = []
    for node, attempt, path in found[:MAX_LOG_FILES]:
        text, cut = read_log_tail(path)
        logs.append(TaskLog(node, attempt, text, cut))
    return logs, max(0, len(found) - MAX_LOG_FILES)


def _log_paths(root: Path) -> Iterator[tuple[str, str, Path]]:
    for node in _subdirectories(root):
        for attempt in _subdirectories(Path(node.path)):
            log = Path(attempt.path) / "task.log"
            if log.is_file() and not log.is_symlink():
                yield node.name, attempt.name, log


def _subdirectories(path: Path) -> list[os.DirEntry[str]]:
    try:
        with os.scandir(path) as entries:
            return [entry for entry in entries if entry.is_dir(follow_symlinks=False)]
    except OSError:
        return []


def _attempt_order(attempt: str) -> tuple[int, str]:
    return (int(attempt), "") if attempt.isdigit() else (1 << 30, attempt)


def read_log_tail(path: Path, lines: int = LOG_TAIL_LINES) -> tuple[str, bool]:
    """The last ``lines`` lines of a log, reading at most :data:`LOG_TAIL_BYTES`; the flag says
    whether earlier lines exist that are not returned."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    except OSError as exc:
        return f"(log not readable: {exc.strerror})", False
    with os.fdopen(fd, "rb") as log:
        size = log.seek(0, os.SEEK_END)
        start = max(0, size - LOG_TAIL_BYTES)
        log.seek(start)
        data = log.read(LOG_TAIL_BYTES)
    found = data.decode("utf-8", errors="replace").splitlines()
    if start > 0:
        found = found[1:]
    return "\n".join(found[-lines:]), start > 0 or len(found) > lines


# Literals as text.


def literal_map_to_text(literal_map: literals_pb2.LiteralMap) -> str:
    """One ``name: value`` line per variable, in name order; ``(none)`` for an empty map."""
    if not literal_map.literals:
        return "(none)"
    return "\n".join(
        f"{key}: {literal_to_text(literal_map.literals[key])}"
        for key in sorted(literal_map.literals)
    )


def literal_to_text(literal: literals_pb2.Literal) -> str:
    """A one-line, Python-like rendering of a literal, cut at :data:`MAX_VALUE_CHARS`."""
    text = _literal_text(literal)
    if len(text) > MAX_VALUE_CHARS:
        return f"{text[:MAX_VALUE_CHARS]}… ({len(text) - MAX_VALUE_CHARS} more characters)"
    return text


def _literal_text(literal: literals_pb2.Literal) -> str:
    kind = literal.WhichOneof("value")
    if kind == "scalar":
        return _scalar_text(literal.scalar)
    if kind == "collection":
        items = [_literal_text(item) for item in literal.collection.literals[:MAX_LITERAL_ITEMS]]
        return "[" + ", ".join(items + _more(len(literal.collection.literals))) + "]"
    if kind == "map":
        keys = sorted(literal.map.literals)
        items = [f"{json.dumps(k)}: {_literal_text(literal.map.literals[k])}" for k in keys]
        return "{" + ", ".join(items[:MAX_LITERAL_ITEMS] + _more(len(keys))) + "}"
    if kind == "offloaded_metadata":
        meta = literal.offloaded_metadata
        return f"offloaded literal {meta.uri} ({meta.size_bytes} bytes)"
    return "(empty)"


def _more(count: int) -> list[str]:
    return [f"… {count - MAX_LITERAL_ITEMS} more"] if count > MAX_LITERAL_ITEMS else []


def _scalar_text(scalar: literals_pb2.Scalar) -> str:
    kind = scalar.WhichOneof("value")
    if kind == "primitive":
        return _primitive_text(scalar.primitive)
    if kind == "blob":
        blob = scalar.blob
        dimensionality = "multipart" if blob.metadata.type.dimensionality else "single"
        fmt = blob.metadata.type.format or "any format"
        return f"blob {blob.uri} ({fmt}, {dimensionality})"
    if kind == "structured_dataset":
        dataset = scalar.structured_dataset
        fmt = dataset.metadata.structured_dataset_type.format or "any format"
        return f"structured dataset {dataset.uri} ({fmt})"
    if kind == "schema":
        return f"schema {scalar.schema.uri}"
    if kind == "binary":
        tag = f", tag {scalar.binary.tag}" if scalar.binary.tag else ""
        return f"binary ({len(scalar.binary.value)} bytes{tag})"
    if kind == "none_type":
        return "None"
    if kind == "union":
        return _literal_text(scalar.union.value)
    if kind == "generic":
        return json.dumps(json_format.MessageToDict(scalar.generic), sort_keys=True)
    if kind == "error":
        return f"error from node {scalar.error.failed_node_id}: {scalar.error.message}"
    return text_format.MessageToString(scalar, as_one_line=True) or "(empty)"


def _primitive_text(primitive: literals_pb2.Primitive) -> str:
    kind = primitive.WhichOneof("value")
    if kind == "integer":
        return str(primitive.integer)
    if kind == "float_value":
        return repr(primitive.float_value)
    if kind == "string_value":
        return json.dumps(primitive.string_value, ensure_ascii=False)
    if kind == "boolean":
        return str(primitive.boolean)
    if kind == "datetime":
        return primitive.datetime.ToDatetime(datetime.timezone.utc).isoformat()
    if kind == "duration":
        return format_duration(primitive.duration.ToTimedelta().total_seconds())
    return "(empty)"


# Formatting.


def format_time(seconds: float | None) -> str:
    """``2024-01-02 03:04:05.678 UTC``, or an em dash for a time not reached yet."""
    if seconds is None:
        return "—"
    moment = datetime.datetime.fromtimestamp(seconds, datetime.timezone.utc)
    return moment.strftime("%Y-%m-%d %H:%M:%S.") + f"{moment.microsecond // 1000:03d} UTC"


def format_duration(seconds: float | None) -> str:
    """``0.42 s``, ``3 min 05 s`` or ``2 h 03 min``; an em dash when there is none."""
    if seconds is None:
        return "—"
    if seconds < 60:
        return f"{seconds:.2f} s"
    minutes, secs = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {secs:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


def execution_duration(record: ExecutionRecord, now: float | None = None) -> float | None:
    """Seconds from start to finish, or to ``now`` while running; None before it starts."""
    if record.started_at is None:
        return None
    end = record.finished_at if record.finished_at is not None else (now or time.time())
    return max(0.0, end - record.started_at)


def _e(value: object) -> str:
    return html.escape(str(value), quote=True)


def execution_path(project: str, domain: str, name: str) -> str:
    """The console path of an execution, as ``generate_console_url`` builds it."""
    parts = (urllib.parse.quote(part, safe="") for part in (project, domain, name))
    return "/console/projects/{}/domains/{}/executions/{}".format(*parts)


def _link(project: str, domain: str, name: str) -> str:
    if not SEGMENT_PATTERN.match(name):
        return _e(name)
    return f'<a href="{_e(execution_path(project, domain, name))}">{_e(name)}</a>'


def _badge(phase: int) -> str:
    name = Phase.Name(phase) if phase in Phase.values() else str(phase)
    return f'<span class="phase phase-{_e(name.lower())}">{_e(name)}</span>'


def _spec(record: ExecutionRecord) -> execution_pb2.ExecutionSpec:
    return execution_pb2.ExecutionSpec.FromString(record.spec)


def _entity(spec: execution_pb2.ExecutionSpec) -> tuple[str, str, str]:
    """(kind, name, version) of the task or launch plan an execution runs."""
    target = spec.launch_plan
    return _ENTITY_KINDS.get(target.resource_type, "entity"), target.name, target.version


# Pages.

_STYLE = """
:root { color-scheme: light; --ink: #1f2933; --muted: #616e7c; --line: #d9e2ec; }
* { box-sizing: border-box; }
body { margin: 0; font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif;
  color: var(--ink); background: #f5f7fa; }
header { background: #243b53; color: #fff; padding: 10px 24px; }
header a { color: #fff; text-decoration: none; font-weight: 600; }
header .crumbs { color: #bcccdc; margin-left: 12px; }
header .crumbs a { color: #bcccdc; font-weight: 400; }
main { padding: 16px 24px 40px; max-width: 1400px; }
h1 { font-size: 22px; margin: 4px 0 14px; display: flex; gap: 12px; align-items: center;
  word-break: break-all; }
h2 { font-size: 16px; margin: 24px 0 8px; }
h3 { font-size: 13px; font-weight: 600; margin: 14px 0 6px; }
section { background: #fff; border: 1px solid var(--line); border-radius: 6px;
  padding: 12px 16px; margin-bottom: 14px; }
section h2 { margin-top: 0; }
table { border-collapse: collapse; width: 100%; }
th, td { text-align: left; padding: 6px 10px; border-bottom: 1px solid var(--line);
  vertical-align: top; }
th { color: var(--muted); font-weight: 600; font-size: 12px; text-transform: uppercase;
  letter-spacing: .03em; }
tbody tr:nth-child(even) { background: #f8fafc; }
dl.facts { display: grid; margin: 0;
  grid-template-columns: 130px minmax(0, 1fr) 130px minmax(0, 1fr); }
dl.facts dt, dl.facts dd { margin: 0; padding: 6px 10px; border-bottom: 1px solid var(--line); }
dl.facts dt { color: var(--muted); font-weight: 600; font-size: 13px; }
dl.facts dd { word-break: break-all; }
dl.facts dd.wide { grid-column: 2 / -1; }
td.num, td.entity { font-variant-numeric: tabular-nums; white-space: nowrap; }
a { color: #0b69a3; }
code, pre { font: 12.5px/1.4 ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; }
pre { background: #f0f4f8; border: 1px solid var(--line); border-radius: 4px; padding: 10px;
  margin: 0; overflow-x: auto; white-space: pre-wrap; word-break: break-word; }
pre.log { background: #102a43; color: #d9e2ec; border-color: #102a43; max-height: 480px;
  overflow-y: auto; }
pre.error { background: #fff5f5; border-color: #f5c2c2; color: #8a1c1c; }
.phase { display: inline-block; padding: 2px 9px; border-radius: 10px; font-size: 12px;
  font-weight: 700; letter-spacing: .03em; color: #fff; background: #7b8794; }
.phase-succeeded { background: #1e8e3e; }
.phase-failed, .phase-timed_out { background: #c62828; }
.phase-failing { background: #e57373; }
.phase-running, .phase-succeeding { background: #1565c0; }
.phase-queued, .phase-undefined { background: #7b8794; }
.phase-aborted, .phase-aborting { background: #ef6c00; }
.chip { display: inline-block; background: #e4e7eb; border-radius: 4px; padding: 1px 7px;
  margin: 0 4px 4px 0; font: 12px ui-monospace, Menlo, Consolas, monospace; }
.muted { color: var(--muted); }
.note { background: #fffbea; border: 1px solid #f0d98c; border-radius: 4px; padding: 6px 10px;
  margin: 8px 0; }
.pager { display: flex; gap: 16px; margin-top: 12px; }
"""


def _document(title: str, crumbs: str, body: str, refresh: bool = False) -> str:
    reload = f'<meta http-equiv="refresh" content="{REFRESH_SECONDS}">' if refresh else ""
    policy = "default-src 'none'; style-src 'unsafe-inline'"
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{policy}">{reload}'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{_e(title)} · dev console</title><style>{_STYLE}</style></head><body>"
        f'<header><a href="/console">Flyte dev console</a><span class="crumbs">{crumbs}</span>'
        f"</header><main>{body}</main></body></html>\n"
    )


def _not_found_page(message: str) -> str:
    body = f"<h1>Not found</h1><section><p>{_e(message)}</p></section>"
    return _document("Not found", "", body)


def list_page(reader: ConsoleReader, project: str, domain: str, page: int) -> str:
    """The newest executions, :data:`PAGE_SIZE` a page, with links to older and newer ones."""
    try:
        rows = reader.recent(project, domain, PAGE_SIZE + 1, (page - 1) * PAGE_SIZE)
    except _NotFound:
        rows = []
    scope = f"{project}/{domain}" if project else "all projects"
    now = time.time()
    table = _execution_table(rows[:PAGE_SIZE], now, with_scope=not project)
    base = f"/console/projects/{project}/domains/{domain}/executions" if project else "/console"
    pager = []
    if page > 1:
        pager.append(f'<a href="{_e(base)}?page={page - 1}">← newer</a>')
    if len(rows) > PAGE_SIZE:
        pager.append(f'<a href="{_e(base)}?page={page + 1}">older →</a>')
    body = (
        f'<h1>Executions <span class="muted">{_e(scope)}</span></h1>'
        f'<section><p class="muted">Page {page}, newest first.</p>{table}'
        f'<div class="pager">{"".join(pager)}</div></section>'
    )
    return _document(f"Executions of {scope}", f"› {_e(scope)}", body)


def _execution_table(rows: Sequence[ExecutionRecord], now: float, with_scope: bool) -> str:
    if not rows:
        return '<p class="muted">No executions.</p>'
    scope_head = "<th>Project/domain</th>" if with_scope else ""
    lines = []
    for record in rows:
        kind, entity, _ = _entity(_spec(record))
        scope = f"<td>{_e(record.project)}/{_e(record.domain)}</td>" if with_scope else ""
        lines.append(
            f"<tr><td>{_link(record.project, record.domain, record.name)}</td>{scope}"
            f"<td>{_badge(record.phase)}</td>"
            f'<td class="entity"><span class="muted">{_e(kind)}</span> {_e(entity)}</td>'
            f'<td class="num">{_e(format_time(record.created_at))}</td>'
            f'<td class="num">{_e(format_duration(execution_duration(record, now)))}</td></tr>'
        )
    return (
        f"<table><thead><tr><th>Name</th>{scope_head}<th>Phase</th><th>Entity</th>"
        f"<th>Created</th><th>Duration</th></tr></thead><tbody>{''.join(lines)}</tbody></table>"
    )


def execution_page(reader: ConsoleReader, project: str, domain: str, name: str) -> str:
    """Everything the dev backend knows about one execution."""
    record = reader.execution(project, domain, name)
    spec = _spec(record)
    children = reader.children(name)
    logs, logs_left_out = task_logs(reader.state_dir, project, domain, name)
    sections = [
        _summary_section(record, spec),
        _error_section(record),
        _children_section(children),
        _literals_section("Inputs", record.inputs),
        _literals_section("Outputs", record.outputs) if record.outputs is not None else "",
        _logs_section(logs, logs_left_out),
    ]
    crumbs = (
        f'› <a href="/console/projects/{_e(project)}/domains/{_e(domain)}/executions">'
        f"{_e(project)}/{_e(domain)}</a> › {_e(name)}"
    )
    body = f"<h1>{_e(name)} {_badge(record.phase)}</h1>{''.join(sections)}"
    return _document(name, crumbs, body, refresh=record.phase not in TERMINAL_PHASES)


def _summary_section(record: ExecutionRecord, spec: execution_pb2.ExecutionSpec) -> str:
    kind, entity, version = _entity(spec)
    labels = dict(spec.labels.values)
    parent = labels.get(EAGER_PARENT_LABEL) or record.parent_name
    root = labels.get(EAGER_ROOT_LABEL)
    pairs = [
        ("Project/domain", f"{_e(record.project)}/{_e(record.domain)}"),
        ("Phase", _badge(record.phase)),
        ("Entity", f'<span class="muted">{_e(kind)}</span> {_e(entity)}'),
        ("Version", f"<code>{_e(version)}</code>"),
        ("Created", _e(format_time(record.created_at))),
        ("Started", _e(format_time(record.started_at))),
        ("Updated", _e(format_time(record.updated_at))),
        ("Finished", _e(format_time(record.finished_at))),
        ("Duration", _e(format_duration(execution_duration(record)))),
        ("Tags", _chips(spec.tags)),
        ("Parent", _link(record.project, record.domain, parent) if parent else "—"),
        ("Root", _link(record.project, record.domain, root) if root else "—"),
    ]
    cells = "".join(f"<dt>{_e(key)}</dt><dd>{value}</dd>" for key, value in pairs)
    labels_text = _chips(f"{k}={v}" for k, v in sorted(labels.items()))
    cells += f'<dt>Labels</dt><dd class="wide">{labels_text}</dd>'
    return f'<section><h2>Summary</h2><dl class="facts">{cells}</dl></section>'


def _chips(values: Iterable[str]) -> str:
    chips = "".join(f'<span class="chip">{_e(value)}</span>' for value in values)
    return chips or "—"


def _error_section(record: ExecutionRecord) -> str:
    if record.error:
        error = core_execution_pb2.ExecutionError.FromString(record.error)
        kind = core_execution_pb2.ExecutionError.ErrorKind.Name(error.kind)
        return (
            f"<section><h2>Error</h2><p>Code <code>{_e(error.code or '—')}</code>, "
            f'kind <code>{_e(kind)}</code></p><pre class="error">{_e(error.message)}</pre>'
            "</section>"
        )
    if record.abort_cause is not None:
        cause = _e(record.abort_cause)
        return f'<section><h2>Aborted</h2><pre class="error">{cause}</pre></section>'
    return ""


def _children_section(children: Children) -> str:
    if not children.total:
        return ""
    note = ""
    if children.left_out:
        note = (
            f'<p class="note">Showing the first {len(children.shown)} of {children.total} '
            f"children; {children.left_out} more are not shown.</p>"
        )
    table = _execution_table(children.shown, time.time(), with_scope=False)
    return f"<section><h2>Children ({children.total})</h2>{note}{table}</section>"


def _literals_section(title: str, data: bytes) -> str:
    try:
        text = literal_map_to_text(literals_pb2.LiteralMap.FromString(data))
    except DecodeError as exc:
        logger.warning("could not decode %s: %r", title.lower(), exc)
        text = f"(could not decode: {exc!r})"
    return f"<section><h2>{_e(title)}</h2><pre>{_e(text)}</pre></section>"


def _logs_section(logs: list[TaskLog], left_out: int) -> str:
    if not logs:
        return '<section><h2>Task log</h2><p class="muted">No task process has run.</p></section>'
    parts = []
    for log in logs:
        cut = f", last {LOG_TAIL_LINES} lines" if log.cut else ""
        parts.append(
            f"<h3>node <code>{_e(log.node)}</code>, attempt {_e(log.attempt)}"
            f'<span class="muted">{_e(cut)}</span></h3><pre class="log">{_e(log.text)}</pre>'
        )
    if left_out:
        parts.append(f'<p class="note">{left_out} more task attempts are not shown.</p>')
    return f"<section><h2>Task log</h2>{''.join(parts)}</section>"


__all__ = [
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
