"""Exceptions raised by the eager queue.

Every exception the package raises on purpose derives from :class:`EagerQueueError`::

    EagerQueueError
    ├── ConfigError              a setting is wrong; names the key, the rule and the value
    ├── NamingError              a naming policy produced a name Admin would refuse
    ├── InputConversionError     an input could not be turned into a Flyte literal
    ├── ReattachMismatchError    a child name already exists with other inputs
    ├── ControllerStateError     the controller was used after it stopped or crashed
    ├── TransientAdminError      an Admin call failed in a way worth retrying
    ├── AdminCallError           an Admin call failed for good (names the RPC and child)
    └── ChildFailedError         a child execution ended without success

``ChildFailedError`` also derives from flytekit's ``EagerException`` so that code written
against the stock controller (``except EagerException``) keeps working, and so that the
eager task's own error handling treats it the way it treats a stock child failure.
"""

from __future__ import annotations

import typing

from flytekit.exceptions.eager import EagerException


class EagerQueueError(Exception):
    """Root of every error this package raises on purpose."""

    retryable: bool = False


class ConfigError(EagerQueueError, ValueError):
    """A setting of the ``eager`` section, an env variable or an argument is invalid.

    Attributes:
        key: the key as the user wrote it (``eager.retry.max_attempts``,
            ``FLYTE_EAGER_RETRY_MAX_ATTEMPTS`` or the keyword argument).
        value: the value received.
    """

    def __init__(self, key: str, rule: str, value: typing.Any, fix: str):
        self.key = key
        self.value = value
        super().__init__(f"{key}: {rule}; got {value!r}. {fix}")


class NamingError(EagerQueueError):
    """A naming policy returned a name that Flyte Admin would reject."""

    def __init__(self, policy: str, name: typing.Any, rule: str):
        self.policy = policy
        self.name = name
        super().__init__(
            f"naming policy {policy} produced {name!r}, which is not a valid execution name: "
            f"{rule}. Fix the policy or choose another one with eager.naming."
        )


class InputConversionError(EagerQueueError, TypeError):
    """A Python input value could not be converted to a Flyte literal."""

    def __init__(self, entity: str, input_name: str, cause: BaseException):
        self.entity = entity
        self.input_name = input_name
        super().__init__(
            f"input {input_name!r} of {entity} could not be converted to a Flyte literal: "
            f"{cause}. Pass a value of the type the entity declares; no child was launched."
        )


class ReattachMismatchError(EagerQueueError):
    """An execution with the wanted name exists but was launched with other inputs."""

    def __init__(self, execution: str, entity: str, wanted: str, found: str, parent: str = ""):
        self.execution = execution
        self.entity = entity
        self.parent = parent
        asked = f" by {parent}" if parent else ""
        super().__init__(
            f"execution {execution} already exists but was launched with other inputs than "
            f"the call of {entity} asked for{asked} (input digest {found}, this call has "
            f"{wanted}). Refusing to reuse its result. Use a naming policy that includes the "
            "inputs (eager.naming: hashed) or give the parent execution another name."
        )


class ControllerStateError(EagerQueueError, RuntimeError):
    """The controller cannot take work in its current lifecycle state."""


class TransientAdminError(EagerQueueError):
    """An Admin call failed in a way that is worth retrying (unavailable, overloaded)."""

    retryable = True

    def __init__(self, rpc: str, code: str, cause: BaseException):
        self.rpc = rpc
        self.code = code
        super().__init__(f"{rpc} failed with {code}: {cause}")


class AdminCallError(EagerQueueError):
    """An Admin call failed for good for one child."""

    def __init__(self, rpc: str, execution: str, entity: str, cause: BaseException):
        self.rpc = rpc
        self.execution = execution
        self.entity = entity
        super().__init__(f"{rpc} for child {execution} ({entity}) failed: {cause}")


class ChildFailedError(EagerQueueError, EagerException):
    """A child execution ended in FAILED, ABORTED or TIMED_OUT and will not be retried.

    Attributes:
        execution: name of the last attempt's execution.
        entity: the entity the child ran.
        kind: failure kind (``user``, ``recoverable``, ``system``, ``timed_out``, ``aborted``).
        attempts: how many attempts were made.
        reason: why no further attempt is made.
    """

    def __init__(
        self,
        *,
        execution: str,
        entity: str,
        kind: str,
        code: str,
        message: str,
        attempts: int,
        reason: str,
    ):
        self.execution = execution
        self.entity = entity
        self.kind = kind
        self.code = code
        self.error_message = message
        self.attempts = attempts
        self.reason = reason
        super().__init__(
            f"child {execution} ({entity}) failed with a {kind} error [{code}]: {message} "
            f"(not retried: {reason})"
        )
