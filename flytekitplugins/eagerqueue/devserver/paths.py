"""Safe handling of client-supplied relative paths under the state directory."""

from __future__ import annotations

import os
from pathlib import Path

from flytekitplugins.eagerqueue.devserver.errors import InvalidArgumentError


def check_relative_path(relpath: str, what: str = "path") -> None:
    """Refuse a client-supplied relative path that could leave the directory it is joined to.

    Raises:
        InvalidArgumentError: if the path is empty, absolute, contains NUL or a ``..`` part.
    """
    if not relpath:
        raise InvalidArgumentError(f"{what} must not be empty")
    if "\x00" in relpath:
        raise InvalidArgumentError(f"{what} {relpath!r} must not contain NUL")
    if relpath.startswith(("/", "\\")) or os.path.isabs(relpath):
        raise InvalidArgumentError(f"{what} {relpath!r} must be relative, not absolute")
    parts = relpath.replace("\\", "/").split("/")
    if ".." in parts:
        raise InvalidArgumentError(f"{what} {relpath!r} must not contain '..'")


def safe_join(root: Path, relpath: str, what: str = "path") -> Path:
    """Join ``relpath`` to ``root`` and make sure the result stays inside ``root``.

    Symbolic links are resolved before the check, so a link pointing outside is refused too.
    """
    check_relative_path(relpath, what)
    root_real = Path(os.path.realpath(root))
    target = Path(os.path.realpath(root_real / relpath))
    if os.path.commonpath([root_real, target]) != str(root_real) or target == root_real:
        raise InvalidArgumentError(f"{what} {relpath!r} points outside {root_real}")
    return target
