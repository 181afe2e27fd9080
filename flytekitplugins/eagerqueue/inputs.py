"""Inputs and outputs of children: Python values to literals, a canonical digest, and back.

The digest is what naming and re-attach verification rest on. It is computed from the
Flyte literals (never from ``repr()``), serialized as sorted JSON of the protobuf fields, so
that it does not depend on keyword order, on memory addresses in a ``repr``, on how a
``repr`` truncates a long value, or on protobuf's binary field order.

Known limit: a file or directory created inside the eager task is uploaded to a fresh
random path on each run, so its literal (and the digest) differs between a run and its
retry; the child is then launched again after a parent retry. Values that are already
remote (outputs of earlier children, for example) keep their path and are re-attached.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import typing

from google.protobuf import json_format

from .errors import InputConversionError


def to_literals(
    remote: typing.Any, entity: typing.Any, input_kwargs: dict
) -> dict[str, typing.Any]:
    """Converts ``input_kwargs`` to flytekit ``Literal`` objects using the entity's interface.

    Raises :class:`InputConversionError` naming the input when a value does not convert.
    """
    from flytekit.core.context_manager import FlyteContextManager
    from flytekit.core.type_engine import TypeEngine
    from flytekit.models.literals import Literal

    variables = entity.interface.inputs
    python_types = entity.python_interface.inputs if entity.python_interface else {}
    literals: dict[str, typing.Any] = {}
    with remote_context(remote):
        ctx = FlyteContextManager.current_context()
        for name, value in input_kwargs.items():
            variable = variables.get(name)
            if variable is None:
                known = ", ".join(sorted(variables)) or "none"
                raise InputConversionError(
                    entity.name, name, KeyError(f"the entity has no such input (inputs: {known})")
                )
            if isinstance(value, Literal):
                literals[name] = value
                continue
            try:
                hint = python_types.get(name) or _guess_type(value, variable.type)
                literals[name] = TypeEngine.to_literal(ctx, value, hint, variable.type)
            except Exception as err:
                raise InputConversionError(entity.name, name, err) from err
    return literals


def remote_context(remote: typing.Any) -> typing.ContextManager:
    """The remote's file-access context, or the current context when there is no remote."""
    return remote.remote_context() if remote is not None else contextlib.nullcontext()


def _guess_type(value: typing.Any, literal_type: typing.Any) -> type:
    from flytekit.core.type_engine import TypeEngine, strict_type_hint_matching

    try:
        return strict_type_hint_matching(value, literal_type)
    except ValueError:
        return TypeEngine.guess_python_type(literal_type)


def canonical_literals(literals: typing.Mapping[str, typing.Any]) -> str:
    """A canonical text form of a name→Literal mapping: sorted JSON of the proto fields."""
    doc = {
        name: json_format.MessageToDict(literal.to_flyte_idl(), preserving_proto_field_name=True)
        for name, literal in literals.items()
    }
    return json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=True)


def digest_literals(literals: typing.Mapping[str, typing.Any]) -> str:
    """Hex SHA-256 of :func:`canonical_literals`."""
    return hashlib.sha256(canonical_literals(literals).encode()).hexdigest()


def to_python(
    entity: typing.Any, python_interface: typing.Any, literal_map: typing.Any
) -> typing.Any:
    """The value an ``await`` of the entity returns: None, one value or a tuple."""
    from flytekit.core.context_manager import FlyteContextManager
    from flytekit.core.type_engine import LiteralsResolver

    resolver = LiteralsResolver(
        literal_map.literals, entity.interface.outputs, FlyteContextManager.current_context()
    )
    return resolver.as_python_native(python_interface)


def python_interface_of(entity: typing.Any) -> typing.Any:
    """The Python interface of ``entity``, guessed from its Flyte interface when it has none.

    Entities fetched from Admin have outputs named ``o0``, ``o1``, ... and no Python types.
    """
    from flytekit.core.interface import Interface
    from flytekit.core.type_engine import TypeEngine

    if entity.python_interface:
        return entity.python_interface
    outputs = entity.interface.outputs
    python_outputs: dict[str, type] = {}
    for index in range(len(outputs)):
        key = f"o{index}"
        if key not in outputs:
            raise TypeError(
                f"{entity.name} has no Python interface and its outputs "
                f"{sorted(outputs)} are not named o0, o1, ...; fetch it with its Python "
                "types or give it a Python interface"
            )
        python_outputs[key] = TypeEngine.guess_python_type(outputs[key].type)
    return Interface(inputs={}, outputs=python_outputs)
