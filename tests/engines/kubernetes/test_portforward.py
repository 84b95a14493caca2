"""`kubectl port-forward` driven as a process: stand-in kubectl scripts print what kubectl
prints (the "Forwarding from" line, one "Handling connection" line per connection, or an error)
so the start, the output handling and the stop are checked without a cluster."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import pytest

from kfbox.engines.kubernetes.portforward import PortForward
from kfbox.engines.kubernetes.tools import Tools
from kfbox.engines.platform import StepFailure

CHATTY = f"""#!{sys.executable}
import os, sys, time
print("Forwarding from 127.0.0.1:43210 -> 8888", flush=True)
for n in range(4000):  # ~130 KiB: past a pipe's 64 KiB buffer
    print(f"Handling connection for {{n}}", flush=True)
open(os.environ["KFBOX_TEST_DONE"], "w").close()
time.sleep(600)
"""
SILENT = f"""#!{sys.executable}
import os, time
open(os.environ["KFBOX_TEST_PID"], "w").write(str(os.getpid()))
time.sleep(600)
"""
REFUSED = """#!/bin/sh
echo 'error: services "kfbox-notebook" not found' >&2
exit 1
"""


def kubectl(tmp_path: Path, script: str) -> Tools:
    path = tmp_path / "kubectl"
    path.write_text(script)
    path.chmod(0o755)
    return Tools(which={"kubectl": str(path)})


def test_output_never_blocks_the_forward_and_stop_reaps_it(tmp_path, monkeypatch) -> None:
    done = tmp_path / "done"
    monkeypatch.setenv("KFBOX_TEST_DONE", str(done))
    forward = PortForward.start(kubectl(tmp_path, CHATTY), None, "ns", "svc/x", 80)
    try:
        assert forward.url == "http://127.0.0.1:43210"
        deadline = time.monotonic() + 10
        while not done.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert done.exists(), "kubectl blocked writing its per-connection lines"
    finally:
        forward.stop()
    assert forward.process.returncode is not None


def test_a_silent_kubectl_times_out_and_is_reaped(tmp_path, monkeypatch) -> None:
    pid_file = tmp_path / "pid"
    monkeypatch.setenv("KFBOX_TEST_PID", str(pid_file))
    started = time.monotonic()
    with pytest.raises(StepFailure, match=r"ns/svc/x failed: no port after 1s"):
        PortForward.start(kubectl(tmp_path, SILENT), None, "ns", "svc/x", 80, timeout_s=1)
    assert time.monotonic() - started < 10
    pid = int(pid_file.read_text())
    assert not os.path.exists(f"/proc/{pid}"), "kubectl left running or as a zombie"


def test_kubectl_refusing_is_its_own_error_line(tmp_path) -> None:
    with pytest.raises(StepFailure) as refused:
        PortForward.start(kubectl(tmp_path, REFUSED), None, "ns", "svc/kfbox-notebook", 80)
    assert str(refused.value) == ('port-forward to ns/svc/kfbox-notebook failed: '
                                  'error: services "kfbox-notebook" not found')
