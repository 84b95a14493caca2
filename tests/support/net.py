"""Free ports on 127.0.0.1 for the tests' own servers and sandboxes, and a way to serve HTTP there
from a thread."""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


def free_port() -> int:
    return free_ports(1)[0]


def free_ports(count: int) -> list[int]:
    """`count` distinct free ports: each socket stays bound until all are chosen (ports asked
    for one at a time may repeat, and a sandbox refuses two components on one port)."""
    with contextlib.ExitStack() as stack:
        sockets = [stack.enter_context(socket.socket()) for _ in range(count)]
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in sockets]


def sandbox_ports() -> dict[str, int]:
    """A port for each of a sandbox's published components, all distinct."""
    return dict(zip(("jupyter", "registry", "tracking"), free_ports(3), strict=True))


@contextmanager
def http_server(handler: Callable[..., Any]) -> Iterator[int]:
    """`handler` (a request handler class) served on 127.0.0.1 from a thread; yields the port,
    and stops serving and closes the socket afterwards."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)


class Refusing(BaseHTTPRequestHandler):
    """A server that answers every GET 403, as a notebook server answers a token it refuses."""

    def do_GET(self) -> None:
        self.send_response(403)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass
