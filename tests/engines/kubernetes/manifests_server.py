"""A local HTTP server for fixture manifests, standing in for upstream release downloads."""

from __future__ import annotations

import functools
import http.server
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.support.net import http_server


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


@contextmanager
def serve_dir(root: Path) -> Iterator[str]:
    with http_server(functools.partial(_Quiet, directory=str(root))) as port:
        yield f"http://127.0.0.1:{port}"
