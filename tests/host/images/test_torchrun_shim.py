"""The ML runtime's `torchrun` (kfbox/host/images/components/runtime/torchrun), run on this
host with the arguments the Kubeflow SDK's container backend gives each node: one process per
node starts the script directly and the nodes still form one process group (the digits
script's own world_size line); anything else is PyTorch's torchrun, unchanged."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from kfbox.host.images.build import COMPONENTS_DIR
from kfbox.scenarios.scenario import load_scenario

SHIM = Path(str(COMPONENTS_DIR / "runtime" / "torchrun"))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def host(tmp_path: Path) -> dict[str, str]:
    """An environment whose `python3` is this interpreter (it has torch), no stray torch env."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    # A wrapper, not a link: a venv's python knows its venv by the path it was started as.
    wrapper = bin_dir / "python3"
    wrapper.write_text(f'#!/bin/sh\nexec "{sys.executable}" "$@"\n')
    wrapper.chmod(0o755)
    env = {k: v for k, v in os.environ.items()
           if k not in ("WORLD_SIZE", "RANK", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")}
    return {**env, "PATH": f"{bin_dir}:{env['PATH']}", "KFBOX_MODEL_DIR": str(tmp_path / "m")}


def sdk_arguments(nodes: int, rank: int, port: int) -> list[str]:
    """What the SDK's container backend passes torchrun on a CPU node (backend.py, kubeflow
    0.5.0: one process per node, a static rendezvous at node 0)."""
    return ["--nproc_per_node=1", f"--nnodes={nodes}", f"--node-rank={rank}",
            "--rdzv-backend=static", f"--rdzv-endpoint=localhost:{port}"]


def test_one_process_per_node_forms_one_process_group(host, tmp_path: Path) -> None:
    script = tmp_path / "train.py"
    script.write_text(load_scenario("digits").training_code())
    port = free_port()
    nodes = [subprocess.Popen(
        [str(SHIM), *sdk_arguments(2, rank, port), str(script), "--epochs=2"],
        env={**host, "KFBOX_MODEL_DIR": str(tmp_path / f"model-{rank}")},
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    ) for rank in (0, 1)]
    outputs = [node.communicate(timeout=180)[0] for node in nodes]
    assert [node.returncode for node in nodes] == [0, 0], outputs
    assert re.search(r"^world_size=2$", outputs[0], re.M), outputs[0]
    assert "training on 2 process(es)" in outputs[0]


def test_the_script_sees_what_torchruns_agent_would_set(host, tmp_path: Path) -> None:
    script = tmp_path / "env.py"
    script.write_text("import os, sys\nprint(sorted(sys.argv[1:]))\n"
                      "for k in ('RANK','LOCAL_RANK','WORLD_SIZE','LOCAL_WORLD_SIZE',"
                      "'MASTER_ADDR','MASTER_PORT','GROUP_RANK'):\n    print(k, os.environ[k])\n")
    done = subprocess.run([str(SHIM), *sdk_arguments(3, 2, 29555), str(script), "--x=1"],
                          env=host, capture_output=True, text=True, timeout=60, check=True)
    assert done.stdout.splitlines() == [
        "['--x=1']", "RANK 2", "LOCAL_RANK 0", "WORLD_SIZE 3", "LOCAL_WORLD_SIZE 1",
        "MASTER_ADDR localhost", "MASTER_PORT 29555", "GROUP_RANK 2"]


def test_more_than_one_process_per_node_is_pytorchs_torchrun(host, tmp_path: Path) -> None:
    # Each worker writes its own file: two workers sharing one unbuffered stdout interleave.
    script = tmp_path / "who.py"
    script.write_text("import os, pathlib, sys\n"
                      "rank = os.environ['LOCAL_RANK']\n"
                      "pathlib.Path(sys.argv[1], rank).write_text("
                      "str(os.environ.get('TORCHELASTIC_RUN_ID')))\n")
    seen = tmp_path / "seen"
    seen.mkdir()
    subprocess.run([str(SHIM), "--standalone", "--nproc_per_node=2", str(script), str(seen)],
                   env=host, capture_output=True, text=True, timeout=120, check=True)
    assert sorted(path.name for path in seen.iterdir()) == ["0", "1"]
    # the elastic agent's own run id, not the shim's
    assert all((seen / rank).read_text() not in ("", "None") for rank in ("0", "1"))
