"""Admin list requests: filter strings, sort order and pagination, translated to SQL.

flytekit sends filters as ``op(field,value)`` terms joined by ``+`` (all must hold), with the
values of set operations (``value_in``, ``value_not_in``, ``contains``) joined by ``;``::

    value_in(execution_tag.key,eager-exec)+value_in(execution_tag.value,run-1)+value_in(phase,QUEUED;RUNNING)

All ``execution_tag.*`` terms of one filter must hold for the same tag row, as in flyteadmin's
tag join, so they become one sub-query on the ``execution_tags`` table that its ``(key, value)``
index answers. Values are always passed as SQL parameters.
"""

from __future__ import annotations

import datetime
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from flyteidl.admin import common_pb2
from flyteidl.core import execution_pb2 as core_execution_pb2

from flytekitplugins.eagerqueue.devserver.errors import InvalidArgumentError

# flyteadmin's default page size when a request leaves ``limit`` at 0.
DEFAULT_LIMIT = 100
# Upper bound on one page, so a careless client cannot make one call read the whole database.
MAX_LIMIT = 10_000

_OPERATORS: dict[str, str] = {
    "eq": "=",
    "ne": "!=",
    "gt": ">",
    "gte": ">=",
    "lt": "<",
    "lte": "<=",
    "contains": "LIKE",
    "value_in": "IN",
    "value_not_in": "NOT IN",
}
_SET_OPERATORS = frozenset({"contains", "value_in", "value_not_in"})
_TERM = re.compile(r"(?P<op>[a-z_]+)\((?P<field>[A-Za-z_.]+),(?P<value>[^)]*)\)")


def parse_phase(value: str) -> int:
    """Turn a workflow execution phase name (``RUNNING``) or number into its enum value."""
    if value.isdigit():
        return int(value)
    try:
        return core_execution_pb2.WorkflowExecution.Phase.Value(value.upper())
    except ValueError:
        names = ", ".join(core_execution_pb2.WorkflowExecution.Phase.keys())
        raise InvalidArgumentError(f"unknown phase {value!r}; expected one of {names}") from None


def parse_timestamp(value: str) -> float:
    """Turn an RFC 3339 timestamp (``2024-01-02T03:04:05Z``) into seconds since the epoch."""
    text = value.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    try:
        moment = datetime.datetime.fromisoformat(text)
    except ValueError:
        raise InvalidArgumentError(f"invalid RFC 3339 timestamp {value!r}") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=datetime.UTC)
    return moment.timestamp()


@dataclass(frozen=True)
class FieldSpec:
    """How one filterable field maps to SQL.

    Attributes:
        column: the SQL column expression.
        convert: turns the filter's text value into the column's value.
        tag: the column lives in the ``execution_tags`` sub-query.
    """

    column: str
    convert: Callable[[str], object] = str
    tag: bool = False


EXECUTION_FIELDS: Mapping[str, FieldSpec] = {
    "execution_tag.key": FieldSpec("t.key", tag=True),
    "execution_tag.value": FieldSpec("t.value", tag=True),
    "phase": FieldSpec("e.phase", parse_phase),
    "name": FieldSpec("e.name"),
    "execution.name": FieldSpec("e.name"),
    "created_at": FieldSpec("e.created_at", parse_timestamp),
    "updated_at": FieldSpec("e.updated_at", parse_timestamp),
    "started_at": FieldSpec("e.started_at", parse_timestamp),
}

ENTITY_FIELDS: Mapping[str, FieldSpec] = {
    "name": FieldSpec("name"),
    "version": FieldSpec("version"),
    "created_at": FieldSpec("created_at", parse_timestamp),
}

SORT_COLUMNS: Mapping[str, str] = {"created_at": "created_at", "updated_at": "updated_at"}


@dataclass(frozen=True)
class Where:
    """A parameterised SQL condition; ``sql`` is ``"1"`` when there is nothing to filter."""

    sql: str
    params: tuple[object, ...]


def _split_terms(filters: str) -> list[tuple[str, str, str]]:
    """Split a filter string into ``(op, field, value)`` triples, refusing anything else."""
    terms: list[tuple[str, str, str]] = []
    position = 0
    text = filters.strip()
    while position < len(text):
        match = _TERM.match(text, position)
        if match is None:
            raise InvalidArgumentError(
                f"invalid filter {filters!r} at position {position}: expected op(field,value)"
            )
        terms.append((match["op"], match["field"], match["value"]))
        position = match.end()
        if position < len(text):
            if text[position] != "+":
                raise InvalidArgumentError(
                    f"invalid filter {filters!r}: terms must be joined by '+'"
                )
            position += 1
    return terms


def _term_sql(op: str, spec: FieldSpec, value: str) -> tuple[str, list[object]]:
    """Translate one term into a SQL condition and its parameters."""
    if op in _SET_OPERATORS:
        values = [spec.convert(part) for part in value.split(";")]
    else:
        values = [spec.convert(value)]
    if op == "contains":
        sql = " OR ".join(f"{spec.column} LIKE ? ESCAPE '\\'" for _ in values)
        return f"({sql})", [f"%{_escape_like(str(v))}%" for v in values]
    if op in ("value_in", "value_not_in"):
        marks = ", ".join("?" for _ in values)
        return f"{spec.column} {_OPERATORS[op]} ({marks})", values
    return f"{spec.column} {_OPERATORS[op]} ?", values


def _escape_like(value: str) -> str:
    return value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def build_where(filters: str, fields: Mapping[str, FieldSpec]) -> Where:
    """Translate an Admin filter string into a parameterised SQL condition.

    Raises:
        InvalidArgumentError: on a malformed filter, an unknown operator or field, or a value
            that does not fit its field.
    """
    plain: list[str] = []
    tag: list[str] = []
    params: list[object] = []
    tag_params: list[object] = []
    for op, field, value in _split_terms(filters or ""):
        if op not in _OPERATORS:
            raise InvalidArgumentError(
                f"unsupported filter operator {op!r} in {filters!r}; "
                f"expected one of {', '.join(_OPERATORS)}"
            )
        spec = fields.get(field)
        if spec is None:
            raise InvalidArgumentError(
                f"unsupported filter field {field!r} in {filters!r}; "
                f"expected one of {', '.join(fields)}"
            )
        sql, values = _term_sql(op, spec, value)
        (tag if spec.tag else plain).append(sql)
        (tag_params if spec.tag else params).extend(values)
    if tag:
        plain.append(
            "e.id IN (SELECT t.execution_id FROM execution_tags t WHERE " + " AND ".join(tag) + ")"
        )
        params.extend(tag_params)
    if not plain:
        return Where("1", ())
    return Where(" AND ".join(plain), tuple(params))


def build_order_by(sort_by: common_pb2.Sort | None, prefix: str = "") -> str:
    """Translate a Sort into an ORDER BY clause; no key means newest first.

    Raises:
        InvalidArgumentError: on a sort key other than ``created_at`` or ``updated_at``.
    """
    key = sort_by.key if sort_by is not None and sort_by.key else "created_at"
    column = SORT_COLUMNS.get(key)
    if column is None:
        raise InvalidArgumentError(
            f"unsupported sort key {key!r}; expected one of {', '.join(SORT_COLUMNS)}"
        )
    ascending = sort_by is not None and sort_by.direction == common_pb2.Sort.ASCENDING
    direction = "ASC" if ascending else "DESC"
    return f"ORDER BY {prefix}{column} {direction}, {prefix}rowid {direction}"


@dataclass(frozen=True)
class Page:
    """One page of a list request: how many rows to return, from which offset."""

    limit: int
    offset: int

    def next_token(self, returned: int) -> str:
        """The token for the next page, or ``""`` when this page was the last."""
        return str(self.offset + self.limit) if returned > self.limit else ""


def parse_page(limit: int, token: str) -> Page:
    """Read ``limit`` (0 means the default, capped) and the opaque offset ``token``.

    Raises:
        InvalidArgumentError: if the token is not one this backend handed out.
    """
    size = DEFAULT_LIMIT if limit <= 0 else min(limit, MAX_LIMIT)
    if not token:
        return Page(size, 0)
    if not token.isdigit():
        raise InvalidArgumentError(f"invalid page token {token!r}")
    return Page(size, int(token))
