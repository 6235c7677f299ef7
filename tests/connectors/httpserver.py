"""A scripted local HTTP server for the polling feeds (no internet here, none needed)."""

from __future__ import annotations

import threading
from collections import defaultdict, deque
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Script:
    """Responses per path: queued ones first, then the sticky last one."""

    queued: dict[str, deque[tuple[int, bytes, str]]] = field(
        default_factory=lambda: defaultdict(deque))
    sticky: dict[str, tuple[int, bytes, str]] = field(default_factory=dict)
    hits: dict[str, int] = field(default_factory=lambda: defaultdict(int))

    def then(self, path: str, status: int, body: bytes, ctype: str = "application/json") -> None:
        """Queue one response."""
        self.queued[path].append((status, body, ctype))

    def always(self, path: str, status: int, body: bytes,
               ctype: str = "application/json") -> None:
        """The response once the queue is empty."""
        self.sticky[path] = (status, body, ctype)

    def next(self, path: str) -> tuple[int, bytes, str]:
        self.hits[path] += 1
        if self.queued[path]:
            return self.queued[path].popleft()
        return self.sticky.get(path, (404, b"not found", "text/plain"))


@contextmanager
def serve(script: Script) -> Iterator[str]:
    """Run a server on 127.0.0.1 (random port) in a thread; yields its base URL."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server's naming
            status, body, ctype = script.next(self.path)
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            return None

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
