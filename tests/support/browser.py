"""A headless Chromium (Debian's `chromium`) driven over the DevTools protocol: what a person
sees of a page, without a browser-automation library. Under CI=true a missing chromium fails the
test; elsewhere it skips with the reason."""

from __future__ import annotations

import contextlib
import json
import shutil
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import websocket

from tests.support.ci import unreachable
from tests.support.processes import stop

# The flags keep a headless chromium from reaching for the network it does not have.
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--window-size=1280,1600",
    "--remote-debugging-port=0",
)

def chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found:
        return found
    unreachable("chromium is not installed (apt-get install -y chromium)")


class Page:
    """The smallest DevTools-protocol client: send a command, wait for its answer, keep events."""

    def __init__(self, ws_url: str) -> None:
        self.ws = websocket.create_connection(ws_url, timeout=30, suppress_origin=True)
        self.events: list[dict[str, Any]] = []
        self._next = 0

    def send(self, method: str, **params: Any) -> dict[str, Any]:
        self._next += 1
        self.ws.send(json.dumps({"id": self._next, "method": method, "params": params}))
        while True:
            message = json.loads(self.ws.recv())
            if message.get("id") == self._next:
                if "error" in message:
                    raise AssertionError(f"{method}: {message['error']}")
                return message["result"]
            self.events.append(message)

    def wait_for(self, event: str, timeout_s: float = 30) -> None:
        deadline = time.monotonic() + timeout_s
        while not any(e.get("method") == event for e in self.events):
            assert time.monotonic() < deadline, f"no {event} within {timeout_s}s"
            self.events.append(json.loads(self.ws.recv()))


@contextlib.contextmanager
def open_page(folder: Path) -> Iterator[Page]:
    """A blank page in a headless Chromium with its profile in `folder`, closed after."""
    profile = folder / "chromium-profile"
    profile.mkdir()
    browser = subprocess.Popen(
        [chromium(), *CHROMIUM_FLAGS, f"--user-data-dir={profile}", "about:blank"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        port_file = profile / "DevToolsActivePort"
        deadline = time.monotonic() + 60
        while not (port_file.is_file() and port_file.read_text().count("\n") >= 1):
            assert browser.poll() is None, f"chromium exited {browser.returncode}"
            assert time.monotonic() < deadline, "chromium opened no DevTools port in 60s"
            time.sleep(0.1)
        port = port_file.read_text().splitlines()[0]
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=10) as answer:
            targets = json.load(answer)
        target = next(t for t in targets if t["type"] == "page")
        client = Page(target["webSocketDebuggerUrl"])
        yield client
        client.ws.close()
    finally:
        stop(browser, timeout_s=10)
