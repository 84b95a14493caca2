"""Runs the host playbook with ansible-runner: `kfbox provision` and `kfbox up --provision`."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import ansible_runner

from kfbox.host import paths
from kfbox.host.errors import KfboxError, UsageError
from kfbox.host.gpu import detect_gpus
from kfbox.host.progress import Reporter
from kfbox.host.provision.events import RunProgress
from kfbox.host.provision.result import ProvisionResult

PLAYBOOKS = Path(__file__).parent / "playbooks"
HOST_PLAYBOOK = "host.yml"
GPU_MODES = ("auto", "on", "off")
DEBIAN_PYTHON = "/usr/bin/python3"
"""Tasks run with Debian's python3: the apt module needs its python3-apt, and ansible's own
interpreter discovery can pick a pyenv shim or a venv from PATH instead."""
KEEP_RUNS = 10
"""Artifact folders kept under the private data dir; older runs are rotated away."""


@dataclass(frozen=True)
class Target:
    """The inventory host the playbook runs against, with its connection variables."""

    host: str = "localhost"
    hostvars: dict[str, Any] = field(default_factory=lambda: {"ansible_connection": "local"})
    envvars: dict[str, str] = field(default_factory=dict)
    """Extra environment for ansible itself (e.g. ANSIBLE_CONNECTION_PLUGINS)."""


def wants_gpu(mode: str) -> bool:
    """`auto` asks nvidia-smi; `on`/`off` force the NVIDIA toolkit play in or out."""
    if mode not in GPU_MODES:
        raise UsageError(f"gpu mode {mode!r} is not one of {', '.join(GPU_MODES)}")
    if mode == "auto":
        return detect_gpus().present
    return mode == "on"


def local_target() -> Target:
    """This host, as root: directly when kfbox runs as root, else through passwordless sudo."""
    if not Path(DEBIAN_PYTHON).is_file():
        raise KfboxError(f"provisioning runs its tasks with Debian's {DEBIAN_PYTHON}, which "
                         "is missing", fix="apt-get install -y python3")
    hostvars: dict[str, Any] = {"ansible_connection": "local",
                                "ansible_python_interpreter": DEBIAN_PYTHON}
    if os.geteuid() != 0:
        sudo = shutil.which("sudo")
        if sudo is None or subprocess.run([sudo, "-n", "true"], capture_output=True).returncode:
            raise KfboxError(
                "provisioning installs system packages and needs root",
                fix="run it as root: sudo $(command -v kfbox) provision",
            )
        hostvars |= {"ansible_become": True, "ansible_become_method": "sudo"}
    return Target(hostvars=hostvars)


def provision_host(reporter: Reporter, *, gpu: str, debs: Path | None = None) -> ProvisionResult:
    """Install and start the Docker engine, set the inotify limits, and with a GPU install the
    NVIDIA container toolkit, on this host. With `debs` (an offline bundle's verified .deb
    files) the engine comes from those, with no package source at all. Raises KfboxError (one
    line) when a task fails."""
    with_gpu = wants_gpu(gpu)
    if with_gpu and debs is not None:
        reporter.warn("NVIDIA container toolkit: not in the bundle (it comes from NVIDIA's "
                      "repository): install it on this host yourself, then `kfbox provision`")
        with_gpu = False
    elif not with_gpu:
        reporter.info("NVIDIA container toolkit: skipped (no GPU)" if gpu == "auto"
                      else "NVIDIA container toolkit: skipped (--gpu off)")
    return run_playbook(reporter, local_target(), gpu=with_gpu,
                        private_data_dir=paths.home() / "provision", debs=debs)


def run_playbook(
    reporter: Reporter, target: Target, *, gpu: bool, private_data_dir: Path,
    debs: Path | None = None,
) -> ProvisionResult:
    """Run the host playbook against `target` (the engine from the .deb files in `debs`, a
    folder on the target, when given); the artifacts of each run land in
    `private_data_dir/artifacts/<timestamp>/`."""
    private_data_dir.mkdir(parents=True, exist_ok=True)
    ident = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
    artifacts = private_data_dir / "artifacts" / ident
    progress = RunProgress(reporter)
    started = time.monotonic()
    ok = False
    try:
        run = ansible_runner.run(
            private_data_dir=str(private_data_dir),
            project_dir=str(PLAYBOOKS),
            playbook=HOST_PLAYBOOK,
            inventory={"all": {"hosts": {target.host: target.hostvars}}},
            extravars={"kfbox_gpu": gpu, "docker_engine_debs": str(debs or "")},
            envvars=ansible_env(target),
            event_handler=progress,
            ident=ident,
            rotate_artifacts=KEEP_RUNS,
            quiet=True,
        )
        ok = run.status == "successful"
    finally:
        progress.finish(ok)
    if not ok:
        log = artifacts / "stdout"
        if progress.failure:
            raise KfboxError(f"provision failed at {progress.failure} (full log: {log})")
        what = last_error_line(log) or f"ansible-playbook {run.status} (exit {run.rc})"
        raise KfboxError(f"provision failed: {what} (full log: {log})")
    return ProvisionResult(
        ok=True, changed=progress.changed, tasks=progress.tasks, artifacts=artifacts,
        seconds=time.monotonic() - started, gpu=gpu,
    )


def ansible_env(target: Target) -> dict[str, str]:
    """ansible-playbook from kfbox's own environment (a venv's bin is often not on PATH),
    and a log without colour codes."""
    bin_dir = str(Path(sys.executable).parent)
    return {
        "PATH": os.pathsep.join([bin_dir, os.environ.get("PATH", os.defpath)]),
        "ANSIBLE_NOCOLOR": "1",
        **target.envvars,
    }


def last_error_line(log: Path) -> str:
    """The last ERROR line ansible printed when it failed before any task ran (a bad playbook,
    an unknown connection plugin), else ""."""
    if not log.is_file():
        return ""
    errors = [line.strip() for line in log.read_text(errors="replace").splitlines()
              if "ERROR" in line]
    return errors[-1] if errors else ""
