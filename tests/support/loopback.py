"""A real HTTP server on 127.0.0.1 for tests: routes map a path to a response or a handler.

    with LoopbackServer({"/feed.xml": Response(body=b"...", headers={"ETag": '"1"'})}) as srv:
        url = srv.url("/feed.xml")

A route may also be a callable ``(request) -> Response``, or a ``Response`` whose ``chunks`` and
``delay`` make the server trickle bytes. ``srv.requests`` records every request seen.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any

from aggregator.demo.server import QuietHTTPServer


@dataclass
class Request:
    method: str
    path: str  # path with query string
    headers: dict[str, str]
    body: bytes = b""
    at: float = field(default_factory=time.monotonic)  # when the server read it


@dataclass
class Response:
    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    chunks: Iterable[bytes] | None = None  # streamed instead of body when set
    delay: float = 0.0  # seconds to sleep before each chunk (or before the body)
    content_length: int | None = None  # override (e.g. a false Content-Length)


Route = Response | Callable[[Request], Response]


class LoopbackServer:
    def __init__(self, routes: dict[str, Route] | None = None):
        self.routes: dict[str, Route] = dict(routes or {})
        self.requests: list[Request] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:  # keep test output quiet
                pass

            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                req = Request(self.command, self.path, dict(self.headers.items()), body)
                server.requests.append(req)
                route = server.routes.get(self.path) or server.routes.get(self.path.split("?")[0])
                if route is None:
                    resp = Response(404, b"not found", {"Content-Type": "text/plain"})
                else:
                    resp = route(req) if callable(route) else route
                with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                    self._write(resp)

            def _write(self, resp: Response) -> None:
                self.send_response(resp.status)
                for key, value in resp.headers.items():
                    self.send_header(key, value)
                if resp.chunks is not None:
                    if resp.content_length is not None:
                        self.send_header("Content-Length", str(resp.content_length))
                    else:
                        self.send_header("Connection", "close")
                    self.end_headers()
                    for chunk in resp.chunks:
                        if resp.delay:
                            time.sleep(resp.delay)
                        self.wfile.write(chunk)
                        self.wfile.flush()
                    self.close_connection = True
                    return
                length = resp.content_length if resp.content_length is not None else len(resp.body)
                self.send_header("Content-Length", str(length))
                self.end_headers()
                if resp.delay:
                    time.sleep(resp.delay)
                if self.command != "HEAD":
                    self.wfile.write(resp.body)

            do_GET = do_POST = do_HEAD = _serve

        self.httpd = QuietHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self._thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def url(self, path: str = "/") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def __enter__(self) -> LoopbackServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
