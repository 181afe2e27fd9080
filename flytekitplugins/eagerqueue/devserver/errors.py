"""Errors that a dev backend handler turns into a gRPC status.

Every error here carries the status code the real Flyte Admin answers with, so flytekit maps
it to the same exception it would raise against a cluster (``ALREADY_EXISTS`` becomes
``FlyteEntityAlreadyExistsException`` and so on).
"""

from __future__ import annotations

import grpc


class AdminError(Exception):
    """A request that the backend refuses with a specific gRPC status code."""

    code: grpc.StatusCode = grpc.StatusCode.INTERNAL

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class NotFoundError(AdminError):
    """The entity or execution named in the request does not exist."""

    code = grpc.StatusCode.NOT_FOUND


class AlreadyExistsError(AdminError):
    """An entity with the same id, or an execution with the same name, already exists."""

    code = grpc.StatusCode.ALREADY_EXISTS


class InvalidArgumentError(AdminError):
    """The request is malformed: a bad name, filter, token or path."""

    code = grpc.StatusCode.INVALID_ARGUMENT
