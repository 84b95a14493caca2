"""A stand-in `kubectl` for port-forwards: records its arguments and prints kubectl's
"Forwarding from" line for a port the test names (one per target where it names several),
then waits to be stopped."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

SCRIPT = f"""#!{sys.executable}
import json, os, sys, time
with open(os.environ["KFBOX_TEST_KUBECTL_LOG"], "a") as log:
    log.write(json.dumps(sys.argv[1:]) + "\\n")
ports = json.loads(os.environ.get("KFBOX_TEST_FORWARD_PORTS") or "{{}}")
port = next((ports[a] for a in sys.argv[1:] if a in ports),
            os.environ["KFBOX_TEST_FORWARD_PORT"])
print("Forwarding from 127.0.0.1:" + str(port) + " -> 8888", flush=True)
time.sleep(600)
"""


def install(folder: Path, monkeypatch: pytest.MonkeyPatch, port: int,
            ports: dict[str, int] | None = None) -> Path:
    """Write the stand-in into `folder`; returns its path (give it to Tools as `kubectl`).
    Each invocation's arguments are appended to folder/kubectl.log as a JSON list. A forward
    whose target (`svc/NAME`) is in `ports` lands there, any other on `port`."""
    kubectl = folder / "bin" / "kubectl"
    kubectl.parent.mkdir(parents=True, exist_ok=True)
    kubectl.write_text(SCRIPT)
    kubectl.chmod(0o755)
    monkeypatch.setenv("KFBOX_TEST_KUBECTL_LOG", str(folder / "kubectl.log"))
    monkeypatch.setenv("KFBOX_TEST_FORWARD_PORT", str(port))
    monkeypatch.setenv("KFBOX_TEST_FORWARD_PORTS", json.dumps(ports or {}))
    return kubectl
