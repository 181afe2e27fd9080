"""Failed children: handled by user code, failing the parent, and retried by the policy."""

import re

import pytest

from integration.helpers import (
    children_of,
    entity_of,
    error_message,
    phase_of,
    succeeded,
)
from integration.workflows import basics, retries

RETRY_ENVS = {
    "FLYTE_EAGER_RETRY_POLICY": "exponential",
    "FLYTE_EAGER_RETRY_MAX_ATTEMPTS": "3",
    "FLYTE_EAGER_RETRY_INITIAL_INTERVAL": "100ms",
}


def test_user_code_catches_a_failed_child_as_an_eager_exception(flyte):
    message = f"planned failure {flyte.prefix}"
    execution = succeeded(flyte.execute(basics.catches_failure, {"message": message}))

    seen = execution.outputs["o0"]
    assert seen.startswith("caught EagerException: "), seen
    assert message in seen
    [child] = children_of(flyte.remote, execution.id.name)
    assert phase_of(child) == "FAILED"


def test_an_unhandled_child_failure_fails_the_parent_with_the_child_error(flyte):
    message = f"unhandled failure {flyte.prefix}"
    execution = flyte.execute(basics.fails_with_child, {"message": message})

    assert phase_of(execution) == "FAILED"
    assert message in error_message(execution)
    phases = {entity_of(c): phase_of(c) for c in children_of(flyte.remote, execution.id.name)}
    assert phases == {"square": "SUCCEEDED", "explode": "FAILED"}


@pytest.mark.dev_only("attempts are counted in a directory task processes share")
def test_a_recoverable_failure_is_retried_until_an_attempt_succeeds(flyte, tmp_path):
    execution = succeeded(
        flyte.execute(
            retries.retries_flaky, {"directory": str(tmp_path), "failures": 2}, envs=RETRY_ENVS
        )
    )

    assert execution.outputs["o0"] == 3
    assert retries.attempts_in(str(tmp_path)) == 3
    children = children_of(flyte.remote, execution.id.name)
    assert [phase_of(c) for c in children] == ["FAILED", "FAILED", "SUCCEEDED"]
    first = children[0].id.name
    for later in children[1:]:
        assert re.fullmatch(rf"{re.escape(first[:40])}.*-a[12]-[0-9a-f]{{8}}", later.id.name)
    assert len({c.id.name for c in children}) == 3


@pytest.mark.dev_only("attempts are counted in a directory task processes share")
def test_retrying_stops_when_the_attempts_are_spent_and_says_so(flyte, tmp_path):
    execution = flyte.execute(
        retries.retries_flaky, {"directory": str(tmp_path), "failures": 5}, envs=RETRY_ENVS
    )

    assert phase_of(execution) == "FAILED"
    assert "attempts spent (3/3)" in error_message(execution)
    assert "attempt 3 of flaky fails on purpose" in error_message(execution)
    assert retries.attempts_in(str(tmp_path)) == 3
    assert len(children_of(flyte.remote, execution.id.name)) == 3


@pytest.mark.dev_only("attempts are counted in a directory task processes share")
def test_without_a_retry_policy_a_recoverable_failure_is_not_retried(flyte, tmp_path):
    execution = flyte.execute(retries.retries_flaky, {"directory": str(tmp_path), "failures": 1})

    assert phase_of(execution) == "FAILED"
    assert "attempt 1 of flaky fails on purpose" in error_message(execution)
    assert retries.attempts_in(str(tmp_path)) == 1
