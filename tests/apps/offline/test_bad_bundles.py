"""A bad bundle fails in one line, exits non-zero and leaves nothing behind: another architecture
or release, a member missing, corrupt or truncated, a .sha256 that does not match, not enough
disk. Each through `kfbox up --from-bundle` on this host and through bootstrap.sh on a fresh
machine with no network; the bundles are packed by kfbox's own code with small stand-ins."""

from __future__ import annotations

import os
import re
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import docker
import pytest

from kfbox.host.offline.manifest import IMAGES, Needs
from kfbox.host.offline.target import this_host
from tests.support.cli import kfbox_cli, private_home
from tests.support.offline import OfflineMachine, repack, small_bundle
from tests.support.sandboxes import remove_labelled

HOST = this_host()
FIX_COPY = "copy the bundle again from where it was made"


def _flip(name: str, data: bytes) -> bytes:
    return data[:-1] + bytes([data[-1] ^ 0xFF]) if name.startswith("debs/docker.io") else data


def _truncated(good: Path, dest: Path) -> Path:
    shutil.copy2(good, dest)
    shutil.copy2(good.with_name(good.name + ".sha256"), dest.with_name(dest.name + ".sha256"))
    # The images member is last: cut the file inside it.
    os.truncate(dest, dest.stat().st_size - 40 * 1024)
    return dest


def _wrong_sidecar(good: Path, dest: Path) -> Path:
    shutil.copy2(good, dest)
    dest.with_name(dest.name + ".sha256").write_text(f"{'0' * 64}  {dest.name}\n")
    return dest


def make_cases(folder: Path) -> dict[str, Path]:
    """One bundle per case, in `folder`, keyed by case name."""
    good = small_bundle(folder, "good.tar")
    return {
        "arch": small_bundle(folder, "arch.tar", target=HOST.model_copy(update={"arch": "arm64"})),
        "release": small_bundle(folder, "release.tar", target=HOST.model_copy(update={
            "version_id": "11", "codename": "bullseye",
            "pretty_name": "Debian GNU/Linux 11 (bullseye)"})),
        "missing": repack(good, folder / "missing.tar",
                          lambda name, data: None if name.startswith("wheels/") else data),
        "corrupt": repack(good, folder / "corrupt.tar", _flip),
        "truncated": _truncated(good, folder / "truncated.tar"),
        "sidecar": _wrong_sidecar(good, folder / "sidecar.tar"),
        # Here the images do not fit the engine's disk; on the offline machine the unpacked
        # wheels and packages do not fit its 16 MB TMPDIR (checked first).
        "disk": small_bundle(folder, "disk.tar", needs=Needs(
            stage=100 * 10**6, venv=10**4, packages=10**4, images=10**15)),
    }


HOST_ERRORS = {
    "arch": rf"the bundle is for arm64 but this machine is {HOST.arch} — make the bundle with "
            rf"`kfbox bundle` on a {re.escape(HOST.describe())} machine",
    "release": rf"the bundle is for Debian GNU/Linux 11 \(bullseye\) but this machine runs "
               rf"{re.escape(HOST.pretty_name)} — make the bundle",
    "missing": rf"member wheels/kfbox-0.1.0-py3-none-any.whl is missing — {FIX_COPY}",
    "corrupt": rf"member debs/docker.io_20.10.24_amd64.deb is corrupt \(sha256 \w+…, the "
               rf"manifest says \w+…\) — {FIX_COPY}",
    "truncated": rf"member {IMAGES} is truncated \(the file ends early\) — {FIX_COPY}",
    "sidecar": r"does not match sidecar.tar.sha256 \(its sha256 is \w+…\) — copy both files "
               r"again",
    # Where the Docker engine is not running, up would install the bundle's packages too, so
    # their sizes join the images'.
    "disk": r"not enough disk on /\S*: the bundle needs 1000000.\d GB there \(images 1000000.\d "
            r"GB(, packages to install [\d.]+ [GMk]B, installed packages [\d.]+ [GMk]B)?\), "
            r"[\d.]+ [GMk]B free — free space on /",
}
BOOTSTRAP_ERRORS = {
    "arch": rf"the bundle is for arm64 but this machine is {HOST.arch} — make the bundle with "
            rf"`kfbox bundle` on a {re.escape(HOST.pretty_name)} {HOST.arch} machine",
    "release": rf"the bundle is for Debian GNU/Linux 11 \(bullseye\) but this machine runs "
               rf"{re.escape(HOST.pretty_name)}",
    "missing": rf"member wheels/kfbox-0.1.0-py3-none-any.whl is missing — {FIX_COPY}",
    "corrupt": rf"member debs/docker.io_20.10.24_amd64.deb is corrupt \(sha256 differs\) — "
               rf"{FIX_COPY}",
    "truncated": rf"member {IMAGES} is truncated \(the file ends early\) — {FIX_COPY}",
    "sidecar": r"does not match /bundles/sidecar.tar.sha256 \(sha256 \w+\) — copy both files "
               r"again",
    "disk": r"not enough disk on /var/tmp: the bundle needs 100 MB there for the unpacked wheels "
            r"and packages \(TMPDIR=/var/tmp\), \d+ MB are free — free space there, or point "
            r"TMPDIR at a larger disk$",
}


@pytest.fixture(scope="module")
def cases(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return make_cases(tmp_path_factory.mktemp("bad-bundles"))


@pytest.mark.parametrize("case", sorted(HOST_ERRORS))
def test_kfbox_up_refuses_a_bad_bundle_in_one_line_and_makes_nothing(
        case: str, cases: dict[str, Path], tmp_path: Path) -> None:
    home = private_home(tmp_path / "home")
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    name = f"bad-{uuid.uuid4().hex[:6]}"
    done = kfbox_cli("--name", name, "up", "--from-bundle", str(cases[case]),
                     env={"KFBOX_HOME": str(home), "TMPDIR": str(tmp)})
    errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert done.returncode == 2, done.stderr
    assert len(errors) == 1 and re.search(HOST_ERRORS[case], errors[0]), done.stderr
    assert "Traceback" not in done.stderr
    assert not (home / "sandboxes" / name).exists()  # no state
    assert list(tmp.iterdir()) == []  # no unpacked packages
    assert sorted(p.name for p in home.iterdir()) == ["cache", "locks"]  # locks: never state


@pytest.fixture(scope="module")
def bootstrap_machine(cases: dict[str, Path],
                      docker_client: docker.DockerClient) -> Iterator[OfflineMachine]:
    """One fresh offline machine for every case, with a 16 MB /var/tmp (TMPDIR)."""
    label = f"offline-bad-bundles-{uuid.uuid4().hex[:6]}"
    try:
        yield OfflineMachine(docker_client, label, next(iter(cases.values())).parent,
                             tmpfs={"/var/tmp": "size=16m"})
    finally:
        remove_labelled(docker_client, label)


@pytest.mark.e2e
@pytest.mark.parametrize("case", sorted(BOOTSTRAP_ERRORS))
def test_bootstrap_refuses_a_bad_bundle_in_one_line_and_makes_nothing(
        case: str, bootstrap_machine: OfflineMachine, cases: dict[str, Path]) -> None:
    machine = bootstrap_machine
    packages = machine.must("dpkg-query -W")
    bundle = f"/bundles/{cases[case].name}"
    code, output = machine.run(f"cd /root && tar -xf {bundle} --occurrence bootstrap.sh && "
                               f"sh bootstrap.sh {bundle}")
    errors = [line for line in output.splitlines() if line.startswith("kfbox bootstrap: error:")]
    assert code == 1, output
    assert len(errors) == 1 and re.search(BOOTSTRAP_ERRORS[case], errors[0]), output
    left = machine.must("ls -d /opt/kfbox /usr/local/bin/kfbox /var/tmp/* 2>/dev/null || true")
    assert left.strip() == ""  # no venv, no link, nothing unpacked
    assert machine.must("dpkg-query -W") == packages  # nothing installed
    assert machine.fetches() == []

