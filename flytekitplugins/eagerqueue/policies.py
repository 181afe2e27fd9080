"""Turns the ``naming`` and ``retry.policy`` settings into policy objects.

A setting names a built-in (``hashed``, ``exponential``), a policy another package
registered under the ``flytekitplugins.eagerqueue.naming`` or ``...retry`` entry point
group, or ``package.module:Name``. It can also be a policy object given in code. A class is
instantiated with no arguments; anything else is used as it is.
"""

from __future__ import annotations

import inspect
import typing

from . import naming, retry
from .errors import ConfigError
from .settings import (
    NAMING_ENTRY_POINTS,
    RETRY_ENTRY_POINTS,
    Settings,
    entry_point_policy,
    import_reference,
)


def describe(spec: typing.Any) -> str:
    """How a policy is named in messages: its setting, or its class."""
    if isinstance(spec, str):
        return repr(spec)
    return f"{type(spec).__module__}.{type(spec).__qualname__}"


def naming_policy(spec: typing.Any, key: str = "eager.naming") -> naming.NamingPolicy:
    """The naming policy ``spec`` names; ``key`` is where the user set it, for errors."""
    if not isinstance(spec, str):
        return _instantiate(spec, key)
    if spec in naming.BUILTIN_NAMING:
        return naming.BUILTIN_NAMING[spec]()
    policy = _instantiate(_lookup(spec, NAMING_ENTRY_POINTS, key), key)
    if not callable(policy):
        raise ConfigError(key, "must name a callable", spec, "Point it at a policy.")
    return policy


def retry_policy(settings: Settings) -> retry.RetryPolicy:
    """The retry policy the settings name, built with their retry parameters."""
    spec = settings.retry_policy
    if spec == "none":
        return retry.NoRetry()
    if spec == "exponential":
        return retry.ExponentialRetry(
            max_attempts=settings.retry_max_attempts,
            backoff=retry.Backoff(
                initial=settings.retry_initial_interval,
                coefficient=settings.retry_backoff_coefficient,
                maximum=settings.retry_max_interval,
                jitter=settings.retry_jitter,
            ),
            retry_on=frozenset(retry.FailureKind(k) for k in settings.retry_on),
        )
    key = settings.written("retry_policy")
    if isinstance(spec, str):
        spec = _instantiate(_lookup(spec, RETRY_ENTRY_POINTS, key), key)
    try:
        return retry.as_retry_policy(spec, describe(settings.retry_policy))
    except TypeError as err:
        raise ConfigError(
            key, str(err), settings.retry_policy, "Point it at a retry policy."
        ) from err


def _lookup(spec: str, group: str, key: str) -> typing.Any:
    if ":" in spec:
        return import_reference(spec, key)
    found = entry_point_policy(group, spec)
    if found is None:
        raise ConfigError(
            key,
            f"is neither a built-in policy nor registered under the entry point group {group}",
            spec,
            "Use a built-in name, package.module:Name, or install the package providing it.",
        )
    return found


def _instantiate(target: typing.Any, key: str) -> typing.Any:
    if inspect.isclass(target):
        try:
            return target()
        except TypeError as err:
            raise ConfigError(
                key, "names a class that cannot be built with no arguments", target, str(err)
            ) from err
    return target
