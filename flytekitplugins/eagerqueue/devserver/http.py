"""The dev backend's loopback HTTP endpoint: upload PUTs and the RPC counters.

Routes live in one table of ``(method, path prefix) -> handler`` so later features add a line
each. Besides uploads it serves the RPC counters and the fault switches (``/_dev/faults``).
"""

from __future__ import annotations

import ipaddress
import json
import logging
import os
import threading
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from flytekitplugins.eagerqueue.devserver import console
from flytekitplugins.eagerqueue.devserver.errors import InvalidArgumentError
from flytekitplugins.eagerqueue.devserver.faults import FaultConfig, FaultInjector
from flytekitplugins.eagerqueue.devserver.paths import safe_join
from flytekitplugins.eagerqueue.devserver.stats import RpcStats

logger = logging.getLogger(__name__)

# Largest upload accepted; code archives and test inputs are far smaller.
MAX_UPLOAD_BYTES = 1 << 30
_CHUNK_BYTES = 1 << 20


@dataclass(frozen=True)
class Response:
    """What a route handler answers: a status, a body and its content type."""

    status: int
    body: bytes = b""
    content_type: str = "text/plain; charset=utf-8"

    @classmethod
    def json(cls, value: object, status: int = HTTPStatus.OK) -> Response:
        """A JSON response."""
        return cls(status, json.dumps(value, indent=1).encode(), "application/json")

    @classmethod
    def text(cls, message: str, status: int) -> Response:
        """A plain-text response."""
        return cls(status, message.encode())


RouteHandler = Callable[["_RequestHandler", str], Response]


class DevHttpServer:
    """A threaded HTTP server on 127.0.0.1 serving the dev backend's routes."""

    def __init__(
        self,
        uploads_root: Path,
        stats: RpcStats,
        host: str = "127.0.0.1",
        port: int = 0,
        faults: FaultInjector | None = None,
    ):
        self.uploads_root = uploads_root
        self.stats = stats
        self.faults = faults if faults is not None else FaultInjector()
        self.routes: list[tuple[str, str, RouteHandler]] = [
            ("PUT", "/upload/", _put_upload),
            ("GET", "/_dev/stats", _get_stats),
            ("POST", "/_dev/stats/reset", _reset_stats),
            ("GET", "/_dev/faults", _get_faults),
            ("POST", "/_dev/faults", _set_faults),
            ("DELETE", "/_dev/faults", _clear_faults),
            ("POST", "/_dev/fail-executions", _fail_executions),
            ("GET", "/console", console.handle),
            ("GET", "/console/", console.handle),
        ]
        handler = type("BoundHandler", (_RequestHandler,), {"dev": self})
        self._server = ThreadingHTTPServer((host, port), handler)
        self._server.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        """``http://<host>:<port>`` of the running server."""
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> None:
        """Serve on a background thread."""
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="dev-http", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        """Stop serving and close the socket."""
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(5)

    def route(self, method: str, path: str) -> tuple[RouteHandler, str] | None:
        """The handler for a request and the rest of the path after the route's prefix."""
        for route_method, prefix, handler in self.routes:
            if route_method != method:
                continue
            if prefix.endswith("/") and path.startswith(prefix):
                return handler, path[len(prefix) :]
            if path == prefix:
                return handler, ""
        return None


class _RequestHandler(BaseHTTPRequestHandler):
    dev: DevHttpServer
    protocol_version = "HTTP/1.1"
    body: bytes = b""

    def _dispatch(self, method: str) -> None:
        path = urllib.parse.urlsplit(self.path).path
        if method != "PUT":
            self._drain_body()
        found = self.dev.route(method, path)
        if found is None:
            response = Response.text(f"no route for {method} {path}\n", HTTPStatus.NOT_FOUND)
        else:
            handler, rest = found
            try:
                response = handler(self, rest)
            except Exception as exc:
                logger.exception("HTTP %s %s failed", method, path)
                response = Response.text(f"{exc!r}\n", HTTPStatus.INTERNAL_SERVER_ERROR)
        self._send(response)

    def _drain_body(self) -> None:
        """Read a small body into ``self.body``; a large one closes the connection."""
        length = self.headers.get("Content-Length", "0")
        if length.isdigit() and 0 < int(length) <= _CHUNK_BYTES:
            self.body = self.rfile.read(int(length))
        elif length != "0":
            self.close_connection = True

    def _send(self, response: Response) -> None:
        self.send_response(response.status)
        self.send_header("Content-Type", response.content_type)
        self.send_header("Content-Length", str(len(response.body)))
        self.end_headers()
        self.wfile.write(response.body)

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_PUT(self) -> None:
        self._dispatch("PUT")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def do_DELETE(self) -> None:
        self._dispatch("DELETE")

    def log_message(self, format: str, *args: object) -> None:
        logger.debug("HTTP %s", format % args)


def _put_upload(request: _RequestHandler, rest: str) -> Response:
    """Write the request body to ``<uploads>/<rest>``, refusing paths that leave it."""
    length_header = request.headers.get("Content-Length")
    if length_header is None or not length_header.isdigit():
        request.close_connection = True
        return Response.text("Content-Length is required\n", HTTPStatus.LENGTH_REQUIRED)
    length = int(length_header)
    if length > MAX_UPLOAD_BYTES:
        request.close_connection = True
        return Response.text(
            f"upload of {length} bytes exceeds {MAX_UPLOAD_BYTES}\n",
            HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
        )
    try:
        target = safe_join(request.dev.uploads_root, urllib.parse.unquote(rest), "upload path")
    except InvalidArgumentError as exc:
        request.close_connection = True
        return Response.text(exc.message + "\n", HTTPStatus.BAD_REQUEST)
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f".{target.name}.{threading.get_ident()}.part")
    with open(partial, "wb") as out:
        remaining = length
        while remaining > 0:
            chunk = request.rfile.read(min(remaining, _CHUNK_BYTES))
            if not chunk:
                break
            out.write(chunk)
            remaining -= len(chunk)
    if remaining:
        partial.unlink(missing_ok=True)
        return Response.text("upload body ended early\n", HTTPStatus.BAD_REQUEST)
    os.replace(partial, target)
    logger.info("stored upload %s (%d bytes)", target, length)
    return Response.text("ok\n", HTTPStatus.OK)


def _get_stats(request: _RequestHandler, rest: str) -> Response:
    return Response.json(request.dev.stats.snapshot())


def _reset_stats(request: _RequestHandler, rest: str) -> Response:
    request.dev.stats.reset()
    return Response.json({})


def _loopback_only(request: _RequestHandler) -> Response | None:
    """A 403 for a client that is not on this machine, else None."""
    try:
        loopback = ipaddress.ip_address(request.client_address[0]).is_loopback
    except ValueError:
        loopback = False
    if loopback:
        return None
    return Response.text("fault switches answer loopback clients only\n", HTTPStatus.FORBIDDEN)


def _json_body(request: _RequestHandler) -> dict[str, object]:
    """The request body as a JSON object (an empty body is ``{}``).

    Raises:
        ValueError: if the body is not a JSON object.
    """
    if not request.body.strip():
        return {}
    value = json.loads(request.body)
    if not isinstance(value, dict):
        raise ValueError(f"the body must be a JSON object, got {type(value).__name__}")
    return value


def _get_faults(request: _RequestHandler, rest: str) -> Response:
    return _loopback_only(request) or Response.json(request.dev.faults.snapshot())


def _set_faults(request: _RequestHandler, rest: str) -> Response:
    refused = _loopback_only(request)
    if refused is not None:
        return refused
    try:
        config = FaultConfig(**_json_body(request))
    except (TypeError, ValueError) as exc:
        return Response.json({"error": str(exc)}, HTTPStatus.BAD_REQUEST)
    request.dev.faults.configure(config)
    logger.info("fault injection set to %s", config)
    return Response.json(request.dev.faults.snapshot())


def _clear_faults(request: _RequestHandler, rest: str) -> Response:
    refused = _loopback_only(request)
    if refused is not None:
        return refused
    request.dev.faults.clear()
    logger.info("fault injection cleared")
    return Response.json(request.dev.faults.snapshot())


def _fail_executions(request: _RequestHandler, rest: str) -> Response:
    refused = _loopback_only(request)
    if refused is not None:
        return refused
    try:
        request.dev.faults.fail_executions(**_json_body(request))
    except (TypeError, ValueError) as exc:
        return Response.json({"error": str(exc)}, HTTPStatus.BAD_REQUEST)
    return Response.json(request.dev.faults.snapshot())
