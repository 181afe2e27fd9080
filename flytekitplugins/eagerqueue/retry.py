"""Retry policies for failed children, and the backoff used for transient Admin errors.

A retry policy sees a :class:`Failure` (what kind, which code, which attempt) and answers
with a :class:`Decision`: relaunch after a delay, or give up with a reason. The reason ends
up in the error the awaiting caller gets, so it says why retrying stopped: the attempts
are spent (``3/3``) or the kind is one the policy does not retry.

Built-ins, chosen with ``eager.retry.policy``:

``none`` (default)
    Never relaunch; the stock controller's behaviour.
``exponential``
    Relaunch failures of the kinds in ``retry_on`` up to ``max_attempts`` attempts in
    all, waiting ``initial_interval * backoff_coefficient ** (attempt - 1)`` capped at
    ``max_interval``, spread by ``jitter``.

Relaunches run under names derived from the first attempt's name
(:func:`flytekitplugins.eagerqueue.naming.attempt_name`), so a parent that runs again finds
every attempt.

Failures of an Admin call itself (UNAVAILABLE and friends) never reach a retry policy:
the controller retries those with :class:`Backoff` and they never change a child's state,
unless Admin stays unreachable for 10 minutes.
"""

from __future__ import annotations

import dataclasses
import enum
import random
import typing


class FailureKind(str, enum.Enum):
    """Why a child execution did not succeed."""

    USER = "user"
    RECOVERABLE = "recoverable"
    SYSTEM = "system"
    TIMED_OUT = "timed_out"
    ABORTED = "aborted"


@dataclasses.dataclass(frozen=True)
class Failure:
    """One failed attempt of a child.

    Attributes:
        kind: the failure kind.
        code: the error code Admin reported (``USER:ValueError``, ``SYSTEM:Unknown``, ...).
        message: the error message, possibly long.
        attempt: which attempt failed, counting from 1.
        execution: the name of the failed attempt's execution.
        entity: the entity the child runs.
    """

    kind: FailureKind
    code: str
    message: str
    attempt: int
    execution: str = ""
    entity: str = ""


@dataclasses.dataclass(frozen=True)
class Decision:
    """A retry policy's answer: ``retry`` after ``delay`` seconds, or give up for ``reason``."""

    retry: bool
    delay: float = 0.0
    reason: str = ""

    @classmethod
    def give_up(cls, reason: str) -> Decision:
        return cls(retry=False, reason=reason)

    @classmethod
    def after(cls, delay: float) -> Decision:
        return cls(retry=True, delay=max(0.0, delay))


class RetryPolicy(typing.Protocol):
    """Decides whether a failed child is launched again."""

    def decide(self, failure: Failure) -> Decision: ...


@dataclasses.dataclass(frozen=True)
class NoRetry:
    """Never relaunch a failed child."""

    def decide(self, failure: Failure) -> Decision:
        return Decision.give_up("the retry policy is 'none'")


@dataclasses.dataclass(frozen=True)
class Backoff:
    """Capped exponential backoff with proportional jitter.

    Attributes:
        initial: the first delay, in seconds.
        coefficient: factor between consecutive delays (>= 1).
        maximum: the largest delay, in seconds.
        jitter: fraction of the delay added or removed at random (0 to 1).
    """

    initial: float = 2.0
    coefficient: float = 2.0
    maximum: float = 60.0
    jitter: float = 0.2

    def __post_init__(self):
        if self.initial < 0:
            raise ValueError(f"initial must be >= 0 seconds, got {self.initial}")
        if self.coefficient < 1:
            raise ValueError(f"coefficient must be >= 1, got {self.coefficient}")
        if self.maximum < self.initial:
            raise ValueError(f"maximum ({self.maximum}) must be >= initial ({self.initial})")
        if not 0 <= self.jitter <= 1:
            raise ValueError(f"jitter must be between 0 and 1, got {self.jitter}")

    def delay(self, attempt: int, rng: typing.Optional[random.Random] = None) -> float:
        """Delay before retry number ``attempt`` (1 for the first retry)."""
        base = min(self.maximum, self.initial * self.coefficient ** max(0, attempt - 1))
        spread = base * self.jitter
        return max(0.0, base + (rng or random).uniform(-spread, spread))


_DEFAULT_RETRY_ON = frozenset({FailureKind.SYSTEM, FailureKind.RECOVERABLE})


@dataclasses.dataclass(frozen=True)
class ExponentialRetry:
    """Relaunch failures of the kinds in ``retry_on`` with capped exponential backoff.

    Attributes:
        max_attempts: attempts in all, the first one included (>= 1).
        backoff: delays between attempts.
        retry_on: failure kinds that are retried; others give up at once.
    """

    max_attempts: int = 3
    backoff: Backoff = dataclasses.field(default_factory=Backoff)
    retry_on: frozenset[FailureKind] = _DEFAULT_RETRY_ON

    def __post_init__(self):
        if self.max_attempts < 1:
            raise ValueError(f"max_attempts must be >= 1, got {self.max_attempts}")
        object.__setattr__(self, "retry_on", frozenset(FailureKind(k) for k in self.retry_on))

    def decide(self, failure: Failure) -> Decision:
        if failure.kind not in self.retry_on:
            kinds = ", ".join(sorted(k.value for k in self.retry_on)) or "nothing"
            return Decision.give_up(
                f"{failure.kind.value} errors are not retried (retry_on: {kinds})"
            )
        if failure.attempt >= self.max_attempts:
            return Decision.give_up(f"attempts spent ({failure.attempt}/{self.max_attempts})")
        return Decision.after(self.backoff.delay(failure.attempt))


def as_retry_policy(obj: typing.Any, where: str) -> RetryPolicy:
    """Accepts a policy object, or a plain callable ``(Failure) -> Decision | bool | float``."""
    if hasattr(obj, "decide"):
        return obj
    if callable(obj):
        return _CallableRetry(obj, where)
    raise TypeError(f"{where}: a retry policy needs a decide(failure) method or must be callable")


@dataclasses.dataclass(frozen=True)
class _CallableRetry:
    """Adapts a function to the policy protocol: True/float means retry, False/None gives up."""

    function: typing.Callable[[Failure], typing.Any]
    where: str

    def decide(self, failure: Failure) -> Decision:
        answer = self.function(failure)
        if isinstance(answer, Decision):
            return answer
        if answer is True:
            return Decision.after(0.0)
        if isinstance(answer, (int, float)) and not isinstance(answer, bool):
            return Decision.after(float(answer))
        return Decision.give_up(f"the retry policy {self.where} declined")
