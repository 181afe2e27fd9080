"""Naming policies: stable, collision-free, always valid Admin names."""

import dataclasses
import json
import subprocess
import sys

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from flytekitplugins.eagerqueue.errors import NamingError
from flytekitplugins.eagerqueue.inputs import digest_literals, to_literals
from flytekitplugins.eagerqueue.naming import (
    BUILTIN_NAMING,
    MAX_NAME_LENGTH,
    NAME_PATTERN,
    NameRequest,
    attempt_name,
    check_name,
)

from .entities import double


def request(**fields):
    base = dict(
        root_tag="root",
        parent_tag="parent",
        exec_prefix="e-fanout-abcde",
        entity_kind="task",
        entity_name="examples.fanout.square",
        entity_version="v1",
        occurrence=0,
        input_digest="0" * 64,
    )
    base.update(fields)
    return NameRequest(**base)


def digest_of(entity, inputs):
    return digest_literals(to_literals(None, entity, inputs))


text = st.text(min_size=0, max_size=80)


class TestEveryBuiltin:
    @pytest.mark.parametrize("policy", sorted(BUILTIN_NAMING))
    @given(
        parent=text,
        prefix=text,
        name=text,
        version=text,
        occurrence=st.integers(min_value=0, max_value=10**9),
        digest=st.text(alphabet="0123456789abcdef", min_size=64, max_size=64),
    )
    @settings(max_examples=150, deadline=None)
    def test_every_builtin_yields_a_valid_admin_name(
        self, policy, parent, prefix, name, version, occurrence, digest
    ):
        made = BUILTIN_NAMING[policy]()(
            request(
                parent_tag=parent,
                exec_prefix=prefix,
                entity_name=name,
                entity_version=version,
                occurrence=occurrence,
                input_digest=digest,
                inputs_repr=name,
            )
        )
        check_name(made, policy)

    @given(base=st.from_regex(NAME_PATTERN, fullmatch=True).filter(lambda s: len(s) <= 63))
    def test_attempt_names_are_valid_and_distinct(self, base):
        names = {attempt_name(base, k) for k in range(5)}
        assert len(names) == 5
        assert all(NAME_PATTERN.match(n) and len(n) <= MAX_NAME_LENGTH for n in names)


class TestHashed:
    policy = BUILTIN_NAMING["hashed"]()

    def test_names_are_prefix_and_twenty_hex(self):
        name = self.policy(request())
        prefix, digest = name.rsplit("-", 1)
        assert prefix == "e-fanout-abcde"
        assert len(digest) == 20 and int(digest, 16) >= 0

    @given(
        values=st.dictionaries(
            st.from_regex(r"[a-z][a-z0-9_]{0,8}", fullmatch=True),
            st.integers(min_value=-(2**63), max_value=2**63 - 1),
            min_size=1,
        ),
        seed=st.integers(min_value=0, max_value=2**32 - 1),
    )
    @settings(max_examples=60, deadline=None)
    def test_keyword_order_does_not_change_the_digest(self, values, seed):
        import random

        literals = {k: to_literals(None, double, {"x": v})["x"] for k, v in values.items()}
        keys = list(literals)
        random.Random(seed).shuffle(keys)
        assert digest_literals({k: literals[k] for k in keys}) == digest_literals(literals)

    def test_occurrence_parent_entity_and_version_each_change_the_name(self):
        base = self.policy(request())
        for field, value in [
            ("occurrence", 1),
            ("parent_tag", "other"),
            ("entity_name", "examples.fanout.add"),
            ("entity_version", "v2"),
            ("entity_kind", "workflow"),
            ("input_digest", "1" * 64),
        ]:
            assert self.policy(request(**{field: value})) != base, field

    def test_ten_thousand_distinct_inputs_get_ten_thousand_names(self):
        names = {
            self.policy(request(input_digest=digest_of(double, {"x": i}))) for i in range(10_000)
        }
        assert len(names) == 10_000

    def test_values_with_identical_reprs_get_distinct_names(self):
        names = {
            self.policy(request(input_digest=digest_of(opaque_task, {"value": Opaque(i)})))
            for i in range(200)
        }
        assert len({repr(Opaque(i)) for i in range(200)}) == 1
        assert len(names) == 200

    def test_names_are_the_same_in_a_fresh_process(self):
        script = (
            "import json;"
            "from tests.entities import double;"
            "from tests.test_naming import request, digest_of;"
            "from flytekitplugins.eagerqueue.naming import HashedNaming;"
            "print(json.dumps([HashedNaming()(request(input_digest=digest_of(double, {'x': i})))"
            " for i in range(20)]))"
        )
        out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
        assert out.returncode == 0, out.stderr
        here = [self.policy(request(input_digest=digest_of(double, {"x": i}))) for i in range(20)]
        assert json.loads(out.stdout.strip().splitlines()[-1]) == here


class TestFlytekitCompatible:
    def test_names_match_flytekits_stock_controller(self):
        from flytekit.core.worker_queue import Controller as Stock

        stock = Stock.__new__(Stock)
        stock.tag, stock.exec_prefix = "parent", "e-fanout-abcde"
        inputs = {"x": 3}
        expected = Stock.get_execution_name(stock, double, 2, inputs)
        made = BUILTIN_NAMING["flytekit"]()(
            request(
                entity_name=double.name,
                call_index=2,
                inputs_repr=f"{inputs}",
                entity_type_repr=f"{type(double)}",
            )
        )
        assert made == expected


class TestReadable:
    def test_names_show_the_entity_and_occurrence(self):
        name = BUILTIN_NAMING["readable"]()(request(occurrence=3))
        assert name.startswith("e-fanout-abcde-square-3-")


class TestCheck:
    @pytest.mark.parametrize(
        "name, rule",
        [
            ("Upper", "must start with a-z"),
            ("1abc", "must start with a-z"),
            ("a_b", "must start with a-z"),
            ("a" * 64, "64 characters, at most 63"),
            (42, "must be a str"),
        ],
    )
    def test_a_bad_name_is_refused_naming_the_policy(self, name, rule):
        with pytest.raises(NamingError) as caught:
            check_name(name, "'mypolicy'")
        assert "naming policy 'mypolicy' produced" in str(caught.value)
        assert rule in str(caught.value)


@dataclasses.dataclass
class Opaque:
    value: int

    def __repr__(self):
        return "Opaque(...)"


from flytekit import task  # noqa: E402


@task
def opaque_task(value: Opaque) -> int:
    return value.value
