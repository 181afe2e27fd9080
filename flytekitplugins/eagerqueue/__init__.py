"""A faster, retry-safe Controller for Flyte ``@eager`` workflows.

Installed, it replaces flytekit's eager controller through the ``flytekit.plugins`` entry
point; nothing needs importing. These names are for configuring it in code and for
writing policies.
"""

# flytekit goes first: importing it loads this package's install hook, which imports the
# modules below; importing them before flytekit would make that hook see them half-built.
import flytekit as _flytekit  # noqa: F401  isort: skip

from .controller import Controller, ItemStatus, Update, WorkItem
from .errors import (
    AdminCallError,
    ChildFailedError,
    ConfigError,
    ControllerStateError,
    EagerQueueError,
    InputConversionError,
    NamingError,
    ReattachMismatchError,
    TransientAdminError,
)
from .naming import FlytekitNaming, HashedNaming, NameRequest, NamingPolicy, ReadableNaming
from .retry import Backoff, Decision, ExponentialRetry, Failure, FailureKind, NoRetry, RetryPolicy
from .settings import Settings, load_settings

__all__ = [
    "AdminCallError",
    "Backoff",
    "ChildFailedError",
    "ConfigError",
    "Controller",
    "ControllerStateError",
    "Decision",
    "EagerQueueError",
    "ExponentialRetry",
    "Failure",
    "FailureKind",
    "FlytekitNaming",
    "HashedNaming",
    "InputConversionError",
    "ItemStatus",
    "NameRequest",
    "NamingError",
    "NamingPolicy",
    "NoRetry",
    "ReadableNaming",
    "ReattachMismatchError",
    "RetryPolicy",
    "Settings",
    "TransientAdminError",
    "Update",
    "WorkItem",
    "load_settings",
]
