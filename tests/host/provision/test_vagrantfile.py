"""The repo's Vagrantfile: valid for Vagrant, and pointing at the playbook kfbox provision runs."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

from kfbox.host.provision.runner import HOST_PLAYBOOK, PLAYBOOKS
from tests.support.ci import unreachable

ROOT = Path(__file__).resolve().parents[3]
VAGRANTFILE = ROOT / "Vagrantfile"


def vagrant() -> str:
    """Debian's `vagrant` package; under CI=true its absence is a failure, not a skip."""
    found = shutil.which("vagrant")
    if found is None:
        unreachable("vagrant is not installed (apt-get install vagrant)")
    return found


def test_vagrant_validates_the_vagrantfile(tmp_path: Path):
    # No provider (VirtualBox, libvirt) runs on a CI machine: validate everything else. Vagrant's
    # state and its .vagrant/ folder go to tmp_path, not into the checkout.
    env = os.environ | {
        "VAGRANT_CWD": str(ROOT),
        "VAGRANT_HOME": str(tmp_path / "home"),
        "VAGRANT_DOTFILE_PATH": str(tmp_path / "dot"),
        "VAGRANT_CHECKPOINT_DISABLE": "1",
    }
    done = subprocess.run(
        [vagrant(), "validate", "--ignore-provider"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "validated successfully" in done.stdout


def test_vagrant_runs_the_packaged_host_playbook():
    """ansible_local reads the playbook inside the guest, so `vagrant validate` cannot see a
    stale path: check it against the package."""
    playbook = re.search(r'^PLAYBOOK = "([^"]+)"', VAGRANTFILE.read_text(), re.MULTILINE)
    assert playbook is not None
    assert (ROOT / playbook[1]).resolve() == (PLAYBOOKS / HOST_PLAYBOOK).resolve()
