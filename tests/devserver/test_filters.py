"""Admin filter strings, sort order and pages, answered by a real SQLite store."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from flyteidl.admin import common_pb2

from flytekitplugins.eagerqueue.devserver import filters
from flytekitplugins.eagerqueue.devserver.errors import InvalidArgumentError
from flytekitplugins.eagerqueue.devserver.store import Phase, Store


@pytest.fixture
def store(tmp_path: Path) -> Store:
    store = Store(tmp_path / "state.db")
    rows = [
        ("one", {"a": "x", "b": "y"}, "RUNNING"),
        ("two", {"a": "y"}, "SUCCEEDED"),
        ("three", {"a": "x"}, "QUEUED"),
    ]
    for name, labels, phase in rows:
        record = store.create_execution("p", "d", name, b"", b"", labels.items())
        if phase == "RUNNING":
            store.mark_running(record.id)
        elif phase == "SUCCEEDED":
            store.finish(record.id, Phase.Value("SUCCEEDED"))
    return store


def names(store: Store, filter_text: str, sort: common_pb2.Sort | None = None) -> list[str]:
    where = filters.build_where(filter_text, filters.EXECUTION_FIELDS)
    order = filters.build_order_by(sort, "e.")
    records = store.list_executions("p", "d", where, order, filters.parse_page(0, ""))
    return [record.name for record in records]


def test_label_key_and_value_must_match_the_same_tag_row(store: Store) -> None:
    assert names(store, "eq(execution_tag.key,a)+eq(execution_tag.value,y)") == ["two"]
    assert names(store, "eq(execution_tag.key,b)+eq(execution_tag.value,x)") == []


def test_label_filter_with_value_in_matches_every_listed_value(store: Store) -> None:
    found = names(store, "value_in(execution_tag.key,a)+value_in(execution_tag.value,x;y)")
    assert sorted(found) == ["one", "three", "two"]


def test_phase_value_in_takes_enum_names(store: Store) -> None:
    assert sorted(names(store, "value_in(phase,UNDEFINED;QUEUED;RUNNING)")) == ["one", "three"]
    assert names(store, "value_not_in(phase,QUEUED;RUNNING)") == ["two"]


def test_label_and_phase_filters_combine(store: Store) -> None:
    text = "value_in(execution_tag.key,a)+value_in(execution_tag.value,x)+value_in(phase,RUNNING)"
    assert names(store, text) == ["one"]


def test_name_filters_support_comparisons_and_contains(store: Store) -> None:
    assert names(store, "eq(name,two)") == ["two"]
    assert sorted(names(store, "ne(name,two)")) == ["one", "three"]
    assert names(store, "contains(name,hre)") == ["three"]


def test_created_at_accepts_rfc3339_timestamps(store: Store) -> None:
    assert len(names(store, "gt(created_at,2000-01-01T00:00:00Z)")) == 3
    assert names(store, "lt(created_at,2000-01-01T00:00:00+00:00)") == []


def test_label_filters_are_answered_from_the_key_value_index(store: Store) -> None:
    where = filters.build_where(
        "eq(execution_tag.key,a)+eq(execution_tag.value,x)", filters.EXECUTION_FIELDS
    )
    plan = " ".join(store.explain_list_executions(where))
    assert "execution_tags_key_value" in plan


def test_newest_first_is_the_default_and_ascending_is_honoured(store: Store) -> None:
    assert names(store, "") == ["three", "two", "one"]
    ascending = common_pb2.Sort(key="created_at", direction=common_pb2.Sort.ASCENDING)
    assert names(store, "", ascending) == ["one", "two", "three"]


def test_pages_carry_a_token_until_the_last_one(store: Store) -> None:
    where = filters.build_where("", filters.EXECUTION_FIELDS)
    order = filters.build_order_by(None, "e.")
    page = filters.parse_page(2, "")
    first = store.list_executions("p", "d", where, order, page)
    assert len(first[: page.limit]) == 2
    token = page.next_token(len(first))
    assert token == "2"
    second_page = filters.parse_page(2, token)
    second = store.list_executions("p", "d", where, order, second_page)
    assert [r.name for r in second] == ["one"]
    assert second_page.next_token(len(second)) == ""


def test_limit_defaults_to_100_and_is_capped() -> None:
    assert filters.parse_page(0, "").limit == 100
    assert filters.parse_page(10**9, "").limit == filters.MAX_LIMIT


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("eq(owner,me)", "unsupported filter field 'owner'"),
        ("like(name,x)", "unsupported filter operator 'like'"),
        ("eq(name,x)-eq(name,y)", "terms must be joined by '+'"),
        ("name=x", "expected op(field,value)"),
        ("eq(phase,SLEEPING)", "unknown phase 'SLEEPING'"),
        ("gt(created_at,yesterday)", "invalid RFC 3339 timestamp 'yesterday'"),
    ],
)
def test_a_bad_filter_is_refused_with_a_message_naming_it(text: str, message: str) -> None:
    with pytest.raises(InvalidArgumentError, match=re.escape(message)):
        filters.build_where(text, filters.EXECUTION_FIELDS)


def test_a_bad_sort_key_or_token_is_refused() -> None:
    with pytest.raises(InvalidArgumentError, match="unsupported sort key 'owner'"):
        filters.build_order_by(common_pb2.Sort(key="owner"))
    with pytest.raises(InvalidArgumentError, match="invalid page token 'abc'"):
        filters.parse_page(10, "abc")
