"""`kubectl port-forward` to a Service on 127.0.0.1, on a free port, stopped on request."""

from __future__ import annotations

import os
import re
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from kfbox.engines.kubernetes.tools import Tools
from kfbox.engines.platform import StepFailure

FORWARDING = re.compile(r"Forwarding from 127\.0\.0\.1:(\d+)")
START_TIMEOUT_S = 30
POLL_S = 0.05


@dataclass
class PortForward:
    process: subprocess.Popen[bytes]
    port: int
    output: IO[bytes]
    """kubectl's output: a file, not a pipe. kubectl prints a line for every connection, and a
    pipe nobody reads fills up (64 KiB) and then blocks the forward."""

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @classmethod
    def start(cls, tools: Tools, kubeconfig: Path | None, namespace: str, target: str,
              port: int, *, timeout_s: float = START_TIMEOUT_S) -> PortForward:
        """Start kubectl and wait (up to `timeout_s`) for the port it chose; StepFailure with
        its last line when it exits or stays silent, with the process reaped either way."""
        argv = [tools.path("kubectl"), "port-forward", "--address", "127.0.0.1",
                "-n", namespace, target, f":{port}"]
        if kubeconfig is not None:
            argv[1:1] = ["--kubeconfig", str(kubeconfig)]
        # Unlinked at once on Linux: nothing is left behind however the run ends. It lives as
        # long as the forward, so stop() closes it rather than a `with` block here.
        output = tempfile.TemporaryFile(prefix="kfbox-port-forward-")  # noqa: SIM115
        process = subprocess.Popen(argv, stdout=output, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout_s
        while True:
            exited = process.poll() is not None  # before reading, so its last words are read
            text = os.pread(output.fileno(), 64 * 1024, 0).decode(errors="replace")
            match = FORWARDING.search(text)
            if match:
                return cls(process, int(match.group(1)), output)
            if exited or time.monotonic() > deadline:
                break
            time.sleep(POLL_S)
        forward = cls(process, 0, output)
        forward.stop()
        lines = text.strip().splitlines()
        why = lines[-1] if lines else (f"exit {process.returncode}" if exited
                                       else f"no port after {timeout_s:.0f}s")
        raise StepFailure(f"port-forward to {namespace}/{target} failed: {why}")

    def stop(self) -> None:
        """Stop kubectl and reap it (no zombie), escalating to kill if it ignores SIGTERM."""
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.output.close()
