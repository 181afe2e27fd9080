"""Naming policies: how a child execution gets its name.

A naming policy is a pure function of a :class:`NameRequest` to a string. The controller
calls it once per child, checks the result against Admin's rule (:func:`check_name`) and
launches under that name. Because the name is a function of what was asked for and not
of when it was asked, a parent that runs again (a retry of the same execution, or a fresh
process) asks for the same names, finds the children it already launched (Admin answers
ALREADY_EXISTS) and re-attaches to them instead of launching them twice.

Built-ins, chosen with ``eager.naming``:

``hashed`` (default)
    ``<prefix>-<20 hex>``: SHA-256 over the parent execution, entity kind, name, version,
    the occurrence number and the digest of the canonical input literals. Stable across
    processes and flytekit versions, blind to keyword order and to the order in which
    coroutines reach the controller, distinct for distinct inputs.
``readable``
    ``<prefix>-<entity>-<occurrence>-<8 hex>``: easier to read in a console, with the same
    stability; the short digest makes collisions possible in principle (1 in 4 billion per
    pair of calls of one entity), which re-attach verification turns into a clear error.
``flytekit``
    The name flytekit's stock controller gives, so that runs started before switching to
    this package can be re-attached. It inherits the stock scheme's weaknesses: it hashes
    ``repr()`` of the inputs and counts calls per entity in arrival order.

A user policy is any callable taking a :class:`NameRequest` and returning a string, named
``package.module:Name`` in config (a class is instantiated with no arguments).
"""

from __future__ import annotations

import dataclasses
import hashlib
import re
import typing

from .errors import NamingError

#: Admin's rule for execution names (flyteadmin validates the same pattern and length).
NAME_PATTERN = re.compile(r"^[a-z][a-z0-9-]*$")
MAX_NAME_LENGTH = 63

# 20 hex characters are 80 bits: the chance of two of a million children colliding is
# below 1e-12, and the name still leaves room for a readable prefix.
_HASHED_DIGEST_CHARS = 20


@dataclasses.dataclass(frozen=True)
class NameRequest:
    """Everything a naming policy may use to name one child.

    Attributes:
        root_tag: execution name of the root eager execution of this tree.
        parent_tag: execution name of the eager execution launching the child.
        exec_prefix: prefix flytekit computed for this parent (``e-<name>-<tag>``).
        entity_kind: ``task``, ``workflow``, ``launch_plan`` or ``eager``.
        entity_name: fully qualified entity name.
        entity_version: version the child is launched at.
        occurrence: how many earlier calls of this entity with these same inputs this
            parent made (0 for the first).
        input_digest: hex SHA-256 of the canonical serialization of the input literals.
        call_index: position of this call among all calls of this entity name, in arrival
            order (what flytekit's stock controller counts).
        inputs_repr: ``str()`` of the Python input dict (what the stock controller hashes).
        entity_type_repr: ``str(type(entity))`` (part of the stock controller's hash).
    """

    root_tag: str
    parent_tag: str
    exec_prefix: str
    entity_kind: str
    entity_name: str
    entity_version: str
    occurrence: int
    input_digest: str
    call_index: int = 0
    inputs_repr: str = ""
    entity_type_repr: str = ""


class NamingPolicy(typing.Protocol):
    """Turns a :class:`NameRequest` into an execution name."""

    def __call__(self, request: NameRequest) -> str: ...


def check_name(name: typing.Any, policy: str) -> str:
    """Returns ``name`` if Admin accepts it, else raises :class:`NamingError` naming ``policy``."""
    if not isinstance(name, str):
        raise NamingError(policy, name, "it must be a str")
    if len(name) > MAX_NAME_LENGTH:
        raise NamingError(policy, name, f"it has {len(name)} characters, at most 63 allowed")
    if not NAME_PATTERN.match(name):
        raise NamingError(policy, name, "it must start with a-z and contain only a-z, 0-9 and '-'")
    return name


def dns_label(value: str, max_length: int) -> str:
    """Lower-cases ``value`` into ``[a-z0-9-]``, starting with a letter, at most ``max_length``."""
    cleaned = re.sub(r"[^a-z0-9]+", "-", value.lower()).strip("-")
    if not cleaned or not cleaned[0].isalpha():
        cleaned = f"x{cleaned}"
    return cleaned[:max_length].rstrip("-")


def _sha256(*parts: str) -> str:
    # A unit separator keeps ("ab", "c") and ("a", "bc") apart.
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()


def _short_entity(name: str, max_length: int) -> str:
    return dns_label(name.rsplit(".", 1)[-1], max_length)


@dataclasses.dataclass(frozen=True)
class HashedNaming:
    """``<prefix>-<digest>``; the default policy."""

    digest_chars: int = _HASHED_DIGEST_CHARS

    def __post_init__(self):
        if not 12 <= self.digest_chars <= 40:
            raise ValueError(f"digest_chars must be between 12 and 40, got {self.digest_chars}")

    def __call__(self, request: NameRequest) -> str:
        digest = _sha256(
            "hashed-v1",
            request.parent_tag,
            request.entity_kind,
            request.entity_name,
            request.entity_version,
            str(request.occurrence),
            request.input_digest,
        )[: self.digest_chars]
        prefix = dns_label(request.exec_prefix or "e", MAX_NAME_LENGTH - self.digest_chars - 1)
        return f"{prefix}-{digest}"


@dataclasses.dataclass(frozen=True)
class ReadableNaming:
    """``<prefix>-<entity>-<occurrence>-<8 hex>``, for people reading a console."""

    def __call__(self, request: NameRequest) -> str:
        digest = _sha256(
            "readable-v1",
            request.parent_tag,
            request.entity_kind,
            request.entity_name,
            request.entity_version,
            request.input_digest,
        )[:8]
        tail = f"{request.occurrence}-{digest}"
        entity = _short_entity(request.entity_name, 20)
        prefix = dns_label(
            request.exec_prefix or "e", MAX_NAME_LENGTH - len(tail) - len(entity) - 2
        )
        return f"{prefix}-{entity}-{tail}"


@dataclasses.dataclass(frozen=True)
class FlytekitNaming:
    """The stock controller's names, for re-attaching runs started before switching."""

    def __call__(self, request: NameRequest) -> str:
        from flytekit.core.utils import _dnsify

        components = (
            f"{request.parent_tag}-{request.entity_type_repr}-{request.entity_name}-"
            f"{request.call_index}-{request.inputs_repr}"
        )
        digest = hashlib.md5(components.encode()).hexdigest()[:16]
        short = request.entity_name.split(".")[-1][:8]
        name = _dnsify(f"{request.exec_prefix}-{short}-{digest}")
        if NAME_PATTERN.match(name) and len(name) <= MAX_NAME_LENGTH:
            return name
        # Admin would have refused the stock name, so no run exists under it to re-attach to.
        return dns_label(name, MAX_NAME_LENGTH)


BUILTIN_NAMING: dict[str, typing.Callable[[], NamingPolicy]] = {
    "hashed": HashedNaming,
    "readable": ReadableNaming,
    "flytekit": FlytekitNaming,
}


def attempt_name(base: str, attempt: int) -> str:
    """Name of retry ``attempt`` (1, 2, ...) of the child first launched as ``base``.

    Deterministic, so a parent that runs again finds the latest attempt, and distinct for
    distinct bases even when two bases share a long prefix.
    """
    if attempt == 0:
        return base
    suffix = f"-a{attempt}-{_sha256('attempt', base)[:8]}"
    return f"{base[: MAX_NAME_LENGTH - len(suffix)].rstrip('-')}{suffix}"
