"""SQLite state of the dev backend: registered entities, executions and their tags.

The database is a real file, ``<state_dir>/state.db``, in WAL mode, so a restarted server on the
same state directory serves what the previous one recorded. One connection is shared by all
threads behind a lock; every method is one short transaction.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from flyteidl.core import execution_pb2 as core_execution_pb2

from flytekitplugins.eagerqueue.devserver import filters
from flytekitplugins.eagerqueue.devserver.errors import AlreadyExistsError, NotFoundError

logger = logging.getLogger(__name__)

Phase = core_execution_pb2.WorkflowExecution.Phase

TERMINAL_PHASES = frozenset(
    {
        Phase.Value("SUCCEEDED"),
        Phase.Value("FAILED"),
        Phase.Value("ABORTED"),
        Phase.Value("TIMED_OUT"),
    }
)
ACTIVE_PHASES = (Phase.Value("UNDEFINED"), Phase.Value("QUEUED"), Phase.Value("RUNNING"))

RESTART_ERROR_MESSAGE = "the dev backend restarted while this execution was running"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS entities (
    resource_type INTEGER NOT NULL,
    project TEXT NOT NULL,
    domain TEXT NOT NULL,
    name TEXT NOT NULL,
    version TEXT NOT NULL,
    spec BLOB NOT NULL,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL,
    state INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (resource_type, project, domain, name, version)
);
CREATE TABLE IF NOT EXISTS executions (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    project TEXT NOT NULL,
    domain TEXT NOT NULL,
    name TEXT NOT NULL,
    phase INTEGER NOT NULL,
    spec BLOB NOT NULL,
    inputs BLOB NOT NULL,
    outputs BLOB,
    error BLOB,
    abort_cause TEXT,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL,
    started_at REAL,
    finished_at REAL,
    parent_name TEXT,
    pid INTEGER,
    pgid INTEGER,
    process_start INTEGER,
    attempt_dir TEXT,
    UNIQUE (project, domain, name)
);
CREATE INDEX IF NOT EXISTS executions_parent ON executions (parent_name);
CREATE TABLE IF NOT EXISTS execution_tags (
    execution_id INTEGER NOT NULL REFERENCES executions (id),
    key TEXT NOT NULL,
    value TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS execution_tags_key_value ON execution_tags (key, value);
CREATE INDEX IF NOT EXISTS execution_tags_execution ON execution_tags (execution_id);
"""

_EXECUTION_COLUMNS = (
    "e.id, e.project, e.domain, e.name, e.phase, e.spec, e.inputs, e.outputs, e.error, "
    "e.abort_cause, e.created_at, e.updated_at, e.started_at, e.finished_at, e.parent_name, "
    "e.pid, e.pgid, e.process_start, e.attempt_dir"
)
# Columns added after the first release; a state.db written before gets them on open.
_ADDED_EXECUTION_COLUMNS = (("process_start", "INTEGER"), ("attempt_dir", "TEXT"))


@dataclass(frozen=True)
class EntityRecord:
    """A registered task, workflow or launch plan; ``spec`` is the serialized spec proto."""

    resource_type: int
    project: str
    domain: str
    name: str
    version: str
    spec: bytes
    created_at: float
    updated_at: float
    state: int


@dataclass(frozen=True)
class ExecutionRecord:
    """One row of the executions table; proto fields are kept serialized."""

    id: int
    project: str
    domain: str
    name: str
    phase: int
    spec: bytes
    inputs: bytes
    outputs: bytes | None
    error: bytes | None
    abort_cause: str | None
    created_at: float
    updated_at: float
    started_at: float | None
    finished_at: float | None
    parent_name: str | None
    pid: int | None
    pgid: int | None
    process_start: int | None = None
    attempt_dir: str | None = None

    @property
    def is_terminal(self) -> bool:
        """Whether the execution has reached a phase it will never leave."""
        return self.phase in TERMINAL_PHASES


class Store:
    """Thread-safe access to ``state.db``."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.RLock()
        self._conn = sqlite3.connect(str(self.path), check_same_thread=False, isolation_level=None)
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA synchronous=NORMAL")
        self._conn.executescript(_SCHEMA)
        self._add_missing_columns()

    def _add_missing_columns(self) -> None:
        present = {row[1] for row in self._conn.execute("PRAGMA table_info(executions)")}
        for column, kind in _ADDED_EXECUTION_COLUMNS:
            if column not in present:
                self._conn.execute(f"ALTER TABLE executions ADD COLUMN {column} {kind}")

    def close(self) -> None:
        """Close the database connection."""
        with self._lock:
            self._conn.close()

    # Entities.

    def create_entity(
        self, resource_type: int, project: str, domain: str, name: str, version: str, spec: bytes
    ) -> None:
        """Record a task, workflow or launch plan.

        Raises:
            AlreadyExistsError: if that id is registered already (identical or not).
        """
        now = time.time()
        key = (resource_type, project, domain, name, version)
        with self._lock:
            row = self._conn.execute(
                "SELECT spec FROM entities WHERE resource_type=? AND project=? AND domain=? "
                "AND name=? AND version=?",
                key,
            ).fetchone()
            if row is not None:
                detail = "identical" if row[0] == spec else "different structure"
                raise AlreadyExistsError(
                    f"entity {project}/{domain}/{name}@{version} already exists ({detail})"
                )
            self._conn.execute(
                "INSERT INTO entities VALUES (?, ?, ?, ?, ?, ?, ?, ?, 0)", (*key, spec, now, now)
            )

    def get_entity(
        self, resource_type: int, project: str, domain: str, name: str, version: str
    ) -> EntityRecord:
        """Fetch one registered entity.

        Raises:
            NotFoundError: naming the id when it is not registered.
        """
        with self._lock:
            row = self._conn.execute(
                "SELECT * FROM entities WHERE resource_type=? AND project=? AND domain=? "
                "AND name=? AND version=?",
                (resource_type, project, domain, name, version),
            ).fetchone()
        if row is None:
            raise NotFoundError(f"entity {project}/{domain}/{name}@{version} does not exist")
        return EntityRecord(*row)

    def list_entities(
        self,
        resource_type: int,
        project: str,
        domain: str,
        name: str,
        where: filters.Where,
        order_by: str,
        page: filters.Page,
    ) -> list[EntityRecord]:
        """List entities of one type in a project/domain (optionally one name), one page + 1."""
        sql = "SELECT * FROM entities WHERE resource_type=? AND project=? AND domain=?"
        params: list[object] = [resource_type, project, domain]
        if name:
            sql += " AND name=?"
            params.append(name)
        sql += f" AND ({where.sql}) {order_by} LIMIT ? OFFSET ?"
        params.extend([*where.params, page.limit + 1, page.offset])
        with self._lock:
            rows = self._conn.execute(sql, params).fetchall()
        return [EntityRecord(*row) for row in rows]

    def set_entity_state(
        self, resource_type: int, project: str, domain: str, name: str, version: str, state: int
    ) -> None:
        """Set the state (e.g. launch plan ACTIVE) of a registered entity."""
        self.get_entity(resource_type, project, domain, name, version)
        with self._lock:
            self._conn.execute(
                "UPDATE entities SET state=?, updated_at=? WHERE resource_type=? AND project=? "
                "AND domain=? AND name=? AND version=?",
                (state, time.time(), resource_type, project, domain, name, version),
            )

    # Executions.

    def create_execution(
        self,
        project: str,
        domain: str,
        name: str,
        spec: bytes,
        inputs: bytes,
        tags: Iterable[tuple[str, str]],
        parent_name: str | None = None,
    ) -> ExecutionRecord:
        """Record a new QUEUED execution and its tag rows.

        Raises:
            AlreadyExistsError: if the name is taken in that project/domain.
        """
        now = time.time()
        with self._lock:
            try:
                self._conn.execute("BEGIN IMMEDIATE")
                cursor = self._conn.execute(
                    "INSERT INTO executions (project, domain, name, phase, spec, inputs, "
                    "created_at, updated_at, parent_name) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        project,
                        domain,
                        name,
                        Phase.Value("QUEUED"),
                        spec,
                        inputs,
                        now,
                        now,
                        parent_name,
                    ),
                )
                self._conn.executemany(
                    "INSERT INTO execution_tags VALUES (?, ?, ?)",
                    [(cursor.lastrowid, key, value) for key, value in tags],
                )
                self._conn.execute("COMMIT")
            except sqlite3.IntegrityError:
                self._conn.execute("ROLLBACK")
                raise AlreadyExistsError(
                    f"execution {project}/{domain}/{name} already exists"
                ) from None
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
        return self.get_execution(project, domain, name)

    def get_execution(self, project: str, domain: str, name: str) -> ExecutionRecord:
        """Fetch one execution.

        Raises:
            NotFoundError: naming the execution when it does not exist.
        """
        with self._lock:
            row = self._conn.execute(
                f"SELECT {_EXECUTION_COLUMNS} FROM executions e "
                "WHERE e.project=? AND e.domain=? AND e.name=?",
                (project, domain, name),
            ).fetchone()
        if row is None:
            raise NotFoundError(f"execution {project}/{domain}/{name} does not exist")
        return ExecutionRecord(*row)

    def list_executions(
        self,
        project: str,
        domain: str,
        where: filters.Where,
        order_by: str,
        page: filters.Page,
    ) -> list[ExecutionRecord]:
        """List executions of a project/domain (empty strings match all), one page + 1."""
        sql = f"SELECT {_EXECUTION_COLUMNS} FROM executions e WHERE ({where.sql})"
        params: list[object] = list(where.params)
        for column, value in (("e.project", project), ("e.domain", domain)):
            if value:
                sql += f" AND {column}=?"
                params.append(value)
        sql += f" {order_by} LIMIT ? OFFSET ?"
        params.extend([page.limit + 1, page.offset])
        with self._lock:
            rows = self._conn.execute(sql, params).fetchall()
        return [ExecutionRecord(*row) for row in rows]

    def find_active_children(self, name: str) -> list[ExecutionRecord]:
        """Active executions launched by ``name``: eager children and launch-plan nodes."""
        marks = ", ".join("?" for _ in ACTIVE_PHASES)
        sql = (
            f"SELECT {_EXECUTION_COLUMNS} FROM executions e WHERE e.phase IN ({marks}) AND "
            "(e.parent_name=? OR e.id IN (SELECT t.execution_id FROM execution_tags t "
            "WHERE t.key='eager-exec' AND t.value=?))"
        )
        with self._lock:
            rows = self._conn.execute(sql, (*ACTIVE_PHASES, name, name)).fetchall()
        return [ExecutionRecord(*row) for row in rows]

    def eager_children(self, project: str, domain: str, parent: str) -> list[ExecutionRecord]:
        """Every execution labelled ``eager-exec=<parent>``, oldest first (from the tag index)."""
        sql = (
            f"SELECT {_EXECUTION_COLUMNS} FROM executions e WHERE e.project=? AND e.domain=? "
            "AND e.id IN (SELECT t.execution_id FROM execution_tags t "
            "WHERE t.key='eager-exec' AND t.value=?) ORDER BY e.created_at, e.id"
        )
        with self._lock:
            rows = self._conn.execute(sql, (project, domain, parent)).fetchall()
        return [ExecutionRecord(*row) for row in rows]

    def requeue_unstarted(self, execution_id: int) -> bool:
        """Move a RUNNING execution that never recorded a process back to QUEUED."""
        now = time.time()
        with self._lock:
            cursor = self._conn.execute(
                "UPDATE executions SET phase=?, started_at=NULL, updated_at=? "
                "WHERE id=? AND phase=? AND pid IS NULL",
                (Phase.Value("QUEUED"), now, execution_id, Phase.Value("RUNNING")),
            )
        return cursor.rowcount == 1

    def mark_running(self, execution_id: int) -> bool:
        """Move a QUEUED execution to RUNNING; False if it is no longer QUEUED (aborted)."""
        now = time.time()
        with self._lock:
            cursor = self._conn.execute(
                "UPDATE executions SET phase=?, started_at=?, updated_at=? WHERE id=? AND phase=?",
                (Phase.Value("RUNNING"), now, now, execution_id, Phase.Value("QUEUED")),
            )
        return cursor.rowcount == 1

    def set_process(
        self,
        execution_id: int,
        pid: int | None,
        pgid: int | None,
        process_start: int | None = None,
        attempt_dir: Path | None = None,
    ) -> None:
        """Remember the process (group) currently running for an execution.

        ``process_start`` (from ``/proc/<pid>/stat``) tells that process apart from a later one
        with the same pid; ``attempt_dir`` is where it writes ``outputs.pb`` or ``error.pb``.
        """
        directory = str(attempt_dir) if attempt_dir is not None else None
        with self._lock:
            self._conn.execute(
                "UPDATE executions SET pid=?, pgid=?, process_start=?, attempt_dir=? WHERE id=?",
                (pid, pgid, process_start, directory, execution_id),
            )

    def finish(
        self,
        execution_id: int,
        phase: int,
        outputs: bytes | None = None,
        error: bytes | None = None,
        abort_cause: str | None = None,
    ) -> bool:
        """Move an active execution to a terminal phase; False if it was terminal already."""
        now = time.time()
        marks = ", ".join("?" for _ in ACTIVE_PHASES)
        with self._lock:
            cursor = self._conn.execute(
                "UPDATE executions SET phase=?, outputs=?, error=?, abort_cause=?, "
                "updated_at=?, finished_at=?, started_at=COALESCE(started_at, ?) "
                f"WHERE id=? AND phase IN ({marks})",
                (phase, outputs, error, abort_cause, now, now, now, execution_id, *ACTIVE_PHASES),
            )
        return cursor.rowcount == 1

    def active_executions(self) -> list[ExecutionRecord]:
        """All executions not yet in a terminal phase."""
        marks = ", ".join("?" for _ in ACTIVE_PHASES)
        with self._lock:
            rows = self._conn.execute(
                f"SELECT {_EXECUTION_COLUMNS} FROM executions e WHERE e.phase IN ({marks})",
                ACTIVE_PHASES,
            ).fetchall()
        return [ExecutionRecord(*row) for row in rows]

    def explain_list_executions(self, where: filters.Where) -> Sequence[str]:
        """SQLite's query plan for a filtered execution list (to check index use)."""
        sql = f"EXPLAIN QUERY PLAN SELECT e.id FROM executions e WHERE ({where.sql})"
        with self._lock:
            rows = self._conn.execute(sql, where.params).fetchall()
        return [row[-1] for row in rows]
