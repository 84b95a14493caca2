"""Run a notebook on a remote Jupyter server as a remote client would: REST API, kernel websocket.

Engine-agnostic: it needs only the server's base URL (a path prefix such as Kubeflow's NB_PREFIX
included) and token. Files move through the contents API, code runs in a kernel started through
the kernels API and driven over its websocket channels with the Jupyter messaging protocol. The
token travels in the Authorization header, never in a URL; a tokenless server (Kubeflow's notebook
images: the cluster's mesh authenticates) gets an XSRF double-submit pair on writes instead.
"""

from __future__ import annotations

import base64
import contextlib
import json
import re
import secrets
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import quote

import requests
import websocket
from tenacity import retry, retry_if_exception_type, stop_after_delay, wait_fixed

from kfbox.engines.platform import NotebookResult, StepFailure, plain

OUTPUT_MESSAGES = ("stream", "execute_result", "display_data", "error")


def one_cell_notebook(source: str) -> dict[str, Any]:
    """`source` as a one-cell notebook (nbformat 4, written by hand: nbformat is a dev tool,
    and the certificate's suites run wherever kfbox is installed)."""
    return {"nbformat": 4, "nbformat_minor": 5,
            "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3",
                                        "language": "python"}},
            "cells": [{"cell_type": "code", "id": "one", "metadata": {}, "execution_count": None,
                       "outputs": [], "source": source}]}


class _NotReady(Exception):
    """The server did not answer /api/status yet (still starting)."""


class JupyterClient:
    def __init__(self, base_url: str, token: str | None, timeout_s: float = 60.0) -> None:
        """`token` None: a tokenless server."""
        self.base_url = base_url.rstrip("/")
        self.timeout_s = timeout_s
        self._http = requests.Session()
        self._ws_headers: list[str] = []
        # What a 401/403 means: a tokenless server has no token to reject.
        self._refused = "rejected the token" if token is not None else "refused the request"
        if token is None:
            # Without a token jupyter_server asks every write for an XSRF token: send the
            # double-submit pair, one random value as both the `_xsrf` cookie and the header.
            xsrf = secrets.token_hex(16)
            self._http.cookies.set("_xsrf", xsrf)
            self._http.headers["X-XSRFToken"] = xsrf
        else:
            self._http.headers["Authorization"] = f"token {token}"
            self._ws_headers.append(f"Authorization: token {token}")

    # ---- server ----------------------------------------------------------------------------

    def wait_ready(self) -> None:
        """Wait (at most timeout_s) until the server answers /api/status with this token."""

        @retry(
            stop=stop_after_delay(self.timeout_s),
            wait=wait_fixed(0.5),
            retry=retry_if_exception_type(_NotReady),
            reraise=True,
        )
        def status() -> None:
            try:
                response = self._http.get(f"{self.base_url}/api/status", timeout=5)
            except requests.RequestException as e:
                raise _NotReady(type(e).__name__) from e
            if response.status_code >= 500:
                raise _NotReady(f"HTTP {response.status_code}")
            self._check(response, "GET /api/status")

        try:
            status()
        except _NotReady as e:
            raise StepFailure(
                f"jupyter at {self.base_url} not ready after {self.timeout_s:.0f}s ({e})"
            ) from None

    # ---- contents --------------------------------------------------------------------------

    def fetch_dir(self, remote_dir: str, dest: Path) -> list[Path]:
        """Download the files (not folders, not recursive) in `remote_dir` into `dest`."""
        listing = self._request("GET", self._contents(remote_dir), params={"content": "1"}).json()
        dest.mkdir(parents=True, exist_ok=True)
        fetched = []
        for entry in sorted(listing["content"], key=lambda e: e["name"]):
            if entry["type"] == "directory":
                continue
            # type=file asks for the bytes as stored, notebooks included (no JSON round trip).
            model = self._request(
                "GET",
                self._contents(entry["path"]),
                params={"content": "1", "type": "file", "format": "base64"},
            ).json()
            target = dest / entry["name"]
            target.write_bytes(base64.b64decode(model["content"]))
            fetched.append(target)
        return fetched

    def _make_dirs(self, remote_dir: str) -> None:
        path = PurePosixPath()
        for part in PurePosixPath(remote_dir).parts:
            path /= part
            exists = self._http.get(self._contents(str(path)), params={"content": "0"}, timeout=30)
            if exists.status_code == 404:
                self._request("PUT", self._contents(str(path)), json={"type": "directory"})
            else:
                self._check(exists, f"GET {path}")

    def offer(self, notebooks: list[Path], remote_dir: str) -> list[str]:
        """Upload each notebook into `remote_dir` unless one of that name is there already (a
        person's edited copy is never replaced); the names uploaded."""
        self._make_dirs(remote_dir)
        uploaded = []
        for notebook in notebooks:
            remote = _join(remote_dir.strip("/"), notebook.name)
            found = self._http.get(self._contents(remote), params={"content": "0"}, timeout=30)
            if found.status_code != 404:
                self._check(found, f"GET {remote}")
                continue
            self._put_notebook(json.loads(notebook.read_text()), remote)
            uploaded.append(notebook.name)
        return uploaded

    def _put_notebook(self, notebook: dict[str, Any], remote_path: str) -> None:
        body = {"type": "notebook", "format": "json", "content": notebook}
        self._request("PUT", self._contents(remote_path), json=body)

    # ---- execution -------------------------------------------------------------------------

    def execute_notebook(
        self, local_path: Path, remote_dir: str, executed_out: Path, timeout_s: float
    ) -> NotebookResult:
        """Upload the notebook into `remote_dir`, run its code cells in order in a kernel whose
        working directory is `remote_dir`, and save the executed notebook (outputs included)
        to `executed_out` and next to the original as <name>.executed.ipynb. The first cell
        error raises StepFailure("cell N: Error: message"), N counting every cell from 1 as
        the notebook shows them, after saving; so does running past `timeout_s`."""
        started = time.monotonic()
        remote_dir = remote_dir.strip("/")
        notebook = json.loads(local_path.read_text())
        self._make_dirs(remote_dir)
        self._put_notebook(notebook, _join(remote_dir, local_path.name))

        kernel_name = notebook.get("metadata", {}).get("kernelspec", {}).get("name")
        kernel = self._request(
            "POST",
            f"{self.base_url}/api/kernels",
            json={"path": remote_dir, **({"name": kernel_name} if kernel_name else {})},
        ).json()
        failure: StepFailure | None = None
        cells_run = 0
        deadline = started + timeout_s
        try:
            with _KernelChannels(self._ws_url(kernel["id"]), self._ws_headers) as channels:
                channels.wait_started(deadline)
                for number, cell in enumerate(notebook["cells"], start=1):
                    if cell["cell_type"] != "code":
                        continue
                    cells_run += 1
                    failure = channels.run_cell(cell, number, deadline)
                    if failure:
                        break
        except StepFailure as e:  # a timeout or a lost kernel: still save what ran
            failure = e
        finally:
            self._shutdown(kernel["id"])

        executed_out.parent.mkdir(parents=True, exist_ok=True)
        executed_out.write_text(json.dumps(notebook, indent=1) + "\n")
        remote_copy = _join(remote_dir, f"{local_path.stem}.executed.ipynb")
        if failure is None:
            self._put_notebook(notebook, remote_copy)
            return NotebookResult(executed_out, cells_run, time.monotonic() - started)
        # The cell error (or the lost kernel) is the cause: if the server died with it, this
        # upload fails too and must not replace it. The local executed copy is saved already.
        with contextlib.suppress(StepFailure):
            self._put_notebook(notebook, remote_copy)
        raise failure

    # ---- plumbing --------------------------------------------------------------------------

    def _shutdown(self, kernel_id: str) -> None:
        # If the server is gone its kernels went with it; the run's own outcome matters more.
        with contextlib.suppress(requests.RequestException):
            self._http.delete(f"{self.base_url}/api/kernels/{kernel_id}", timeout=30)

    def _contents(self, path: str) -> str:
        return f"{self.base_url}/api/contents/{quote(path.strip('/'))}"

    def _ws_url(self, kernel_id: str) -> str:
        ws_base = re.sub(r"^http", "ws", self.base_url)
        return f"{ws_base}/api/kernels/{kernel_id}/channels?session_id={uuid.uuid4().hex}"

    def _request(self, method: str, url: str, **kwargs: Any) -> requests.Response:
        try:
            response = self._http.request(method, url, timeout=30, **kwargs)
        except requests.RequestException as e:
            raise StepFailure(f"jupyter at {self.base_url}: {method} failed: {e}") from e
        self._check(response, f"{method} {url.removeprefix(self.base_url)}")
        return response

    def _check(self, response: requests.Response, what: str) -> None:
        if response.status_code in (401, 403):
            raise StepFailure(
                f"jupyter at {self.base_url} {self._refused} (HTTP {response.status_code})"
            )
        if not response.ok:
            try:
                reason = response.json().get("message") or response.reason
            except ValueError:
                reason = response.reason
            raise StepFailure(f"jupyter {what}: HTTP {response.status_code} {reason}")


class _KernelChannels:
    """One kernel's websocket: send execute requests, gather their outputs (messaging v5.3)."""

    def __init__(self, url: str, headers: list[str]) -> None:
        self.url = url
        self.headers = headers
        self.session = uuid.uuid4().hex
        self.ws: websocket.WebSocket

    def __enter__(self) -> _KernelChannels:
        try:
            self.ws = websocket.create_connection(
                self.url, header=self.headers, timeout=30
            )
        except (websocket.WebSocketException, OSError) as e:
            raise StepFailure(f"kernel websocket: {e}") from e
        return self

    def __exit__(self, *_: object) -> None:
        self.ws.close()

    def wait_started(self, deadline: float) -> None:
        """Block until the kernel answers kernel_info: it is started and listening."""
        msg_id = self._send("kernel_info_request", {})
        while True:
            message = self._receive(deadline, "kernel start")
            reply = message["msg_type"] == "kernel_info_reply"
            if reply and message["parent_header"].get("msg_id") == msg_id:
                return

    def run_cell(self, cell: dict[str, Any], number: int, deadline: float) -> StepFailure | None:
        """Run one code cell, storing its outputs and execution count into `cell`; the cell's
        error as a StepFailure (not raised: the notebook is saved first)."""
        source = cell["source"]
        code = "".join(source) if isinstance(source, list) else source
        msg_id = self._send(
            "execute_request",
            {"code": code, "silent": False, "store_history": True, "user_expressions": {},
             "allow_stdin": False, "stop_on_error": True},
        )
        outputs: list[dict[str, Any]] = []
        cell["outputs"] = outputs
        replied = idle = False
        failure = None
        while not (replied and idle):
            message = self._receive(deadline, f"cell {number}")
            kind = message["msg_type"]
            content = message["content"]
            if kind == "status" and content["execution_state"] in ("dead", "restarting"):
                return StepFailure(f"cell {number}: the kernel died")
            if message["parent_header"].get("msg_id") != msg_id:
                continue
            if kind == "execute_reply":
                replied = True
                cell["execution_count"] = content.get("execution_count")
            elif kind == "status":
                idle = content["execution_state"] == "idle"
            elif kind == "clear_output":
                outputs.clear()
            elif kind in OUTPUT_MESSAGES:
                _add_output(outputs, kind, content)
                if kind == "error":
                    logs = plain("\n".join(content["traceback"]))
                    failure = StepFailure(
                        f"cell {number}: {content['ename']}: {content['evalue']}", logs=logs
                    )
        return failure

    def _send(self, msg_type: str, content: dict[str, Any]) -> str:
        msg_id = uuid.uuid4().hex
        header = {"msg_id": msg_id, "msg_type": msg_type, "session": self.session,
                  "username": "kfbox", "version": "5.3", "date": datetime.now(UTC).isoformat()}
        self.ws.send(json.dumps({"header": header, "parent_header": {}, "metadata": {},
                                 "content": content, "channel": "shell", "buffers": []}))
        return msg_id

    def _receive(self, deadline: float, what: str) -> dict[str, Any]:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise StepFailure(f"{what}: still running when the notebook's time ran out")
        self.ws.settimeout(remaining)
        try:
            return json.loads(self.ws.recv())
        except websocket.WebSocketTimeoutException:
            raise StepFailure(f"{what}: still running when the notebook's time ran out") from None
        except websocket.WebSocketConnectionClosedException:
            raise StepFailure(f"{what}: the kernel's websocket closed") from None


def _add_output(outputs: list[dict[str, Any]], kind: str, content: dict[str, Any]) -> None:
    """Append a message as an nbformat output; consecutive stream text of one name joins up."""
    if kind == "stream":
        last = outputs[-1] if outputs else None
        if last and last["output_type"] == "stream" and last["name"] == content["name"]:
            last["text"] += content["text"]
        else:
            outputs.append({"output_type": "stream", "name": content["name"],
                            "text": content["text"]})
    elif kind == "error":
        outputs.append({"output_type": "error", "ename": content["ename"],
                        "evalue": content["evalue"], "traceback": content["traceback"]})
    else:
        output = {"output_type": kind, "data": content["data"],
                  "metadata": content.get("metadata", {})}
        if kind == "execute_result":
            output["execution_count"] = content.get("execution_count")
        outputs.append(output)


def _join(remote_dir: str, name: str) -> str:
    return str(PurePosixPath(remote_dir) / name) if remote_dir else name
