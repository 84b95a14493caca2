"""`kubectl port-forward` to a Service on 127.0.0.1, on a free port, stopped on request."""

from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

from kfbox.sandbox.engines.kubernetes.tools import Tools
from kfbox.sandbox.platform import StepFailure

FORWARDING = re.compile(r"Forwarding from 127\.0\.0\.1:(\d+)")


@dataclass
class PortForward:
    process: subprocess.Popen[str]
    port: int

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @classmethod
    def start(cls, tools: Tools, kubeconfig: Path | None, namespace: str, target: str,
              port: int) -> PortForward:
        argv = [tools.path("kubectl"), "port-forward", "--address", "127.0.0.1",
                "-n", namespace, target, f":{port}"]
        if kubeconfig is not None:
            argv[1:1] = ["--kubeconfig", str(kubeconfig)]
        process = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                   text=True)
        assert process.stdout is not None
        line = process.stdout.readline()  # kubectl prints the chosen port first, or an error
        match = FORWARDING.search(line)
        if not match:
            process.kill()
            raise StepFailure(f"port-forward to {namespace}/{target} failed: {line.strip()}")
        return cls(process, int(match.group(1)))

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(10)
