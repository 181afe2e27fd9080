"""Retry policies and the policy lookup from settings."""

import random

import pytest

from flytekitplugins.eagerqueue import policies
from flytekitplugins.eagerqueue.errors import ConfigError
from flytekitplugins.eagerqueue.retry import (
    Backoff,
    Decision,
    ExponentialRetry,
    Failure,
    FailureKind,
    NoRetry,
    as_retry_policy,
)
from flytekitplugins.eagerqueue.settings import Settings


def failure(kind=FailureKind.SYSTEM, attempt=1):
    return Failure(kind=kind, code="SYSTEM:Unknown", message="lost", attempt=attempt)


class TestBackoff:
    def test_delays_grow_by_the_coefficient_up_to_the_cap(self):
        backoff = Backoff(initial=1, coefficient=3, maximum=20, jitter=0)
        assert [backoff.delay(k) for k in range(1, 6)] == [1, 3, 9, 20, 20]

    def test_jitter_stays_within_its_fraction(self):
        backoff = Backoff(initial=10, coefficient=1, maximum=10, jitter=0.2)
        rng = random.Random(7)
        delays = [backoff.delay(1, rng) for _ in range(500)]
        assert min(delays) >= 8 and max(delays) <= 12
        assert max(delays) - min(delays) > 2

    @pytest.mark.parametrize(
        "kwargs, message",
        [
            ({"initial": -1}, "initial must be >= 0"),
            ({"coefficient": 0.5}, "coefficient must be >= 1"),
            ({"initial": 5, "maximum": 1}, "maximum (1) must be >= initial (5)"),
            ({"jitter": 2}, "jitter must be between 0 and 1"),
        ],
    )
    def test_bad_parameters_fail_where_they_are_written(self, kwargs, message):
        with pytest.raises(ValueError) as caught:
            Backoff(**kwargs)
        assert message in str(caught.value)


class TestExponential:
    def test_retries_system_failures_until_attempts_are_spent(self):
        policy = ExponentialRetry(max_attempts=3, backoff=Backoff(initial=1, jitter=0))
        assert policy.decide(failure(attempt=1)) == Decision(retry=True, delay=1)
        assert policy.decide(failure(attempt=2)) == Decision(retry=True, delay=2)
        assert policy.decide(failure(attempt=3)) == Decision.give_up("attempts spent (3/3)")

    def test_kinds_outside_retry_on_give_up_at_once_saying_so(self):
        policy = ExponentialRetry(retry_on={FailureKind.SYSTEM})
        decision = policy.decide(failure(kind=FailureKind.USER))
        assert decision == Decision.give_up("user errors are not retried (retry_on: system)")

    def test_none_never_retries(self):
        assert NoRetry().decide(failure()).reason == "the retry policy is 'none'"

    def test_max_attempts_below_one_is_refused(self):
        with pytest.raises(ValueError, match="max_attempts must be >= 1"):
            ExponentialRetry(max_attempts=0)


class TestUserPolicies:
    def test_a_plain_function_can_be_a_policy(self):
        policy = as_retry_policy(lambda f: 0.5 if f.attempt < 2 else False, "mine")
        assert policy.decide(failure(attempt=1)) == Decision(retry=True, delay=0.5)
        assert policy.decide(failure(attempt=2)).reason == "the retry policy mine declined"

    def test_a_class_named_by_module_path_is_instantiated(self):
        settings = Settings(retry_policy="tests.test_retry:AlwaysOnce")
        assert isinstance(policies.retry_policy(settings), AlwaysOnce)

    def test_a_missing_module_is_a_config_error_naming_the_key(self):
        with pytest.raises(ConfigError, match=r"^eager.retry.policy: names nothing importable"):
            policies.retry_policy(Settings(retry_policy="nowhere.at_all:Policy"))

    def test_an_unregistered_policy_name_is_a_config_error_naming_the_group(self):
        with pytest.raises(ConfigError) as caught:
            policies.naming_policy("companywide")
        assert "flytekitplugins.eagerqueue.naming" in str(caught.value)
        assert str(caught.value).startswith("eager.naming:")

    def test_built_in_exponential_takes_its_parameters_from_settings(self):
        settings = Settings(retry_policy="exponential", retry_max_attempts=5, retry_on=("user",))
        policy = policies.retry_policy(settings)
        assert policy.max_attempts == 5
        assert policy.retry_on == {FailureKind.USER}


class AlwaysOnce:
    def decide(self, failure):
        return Decision.after(0) if failure.attempt == 1 else Decision.give_up("once is enough")
