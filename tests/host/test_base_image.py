"""The base image: its Debian mirror (the explicit setting, else the host's own apt sources),
and the fallback to debootstrap when installing packages into the pulled image fails."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from docker.errors import BuildError, ImageNotFound
from rich.console import Console

from kfbox.host.errors import PreflightError
from kfbox.host.images import base
from kfbox.host.progress import Reporter

# Tests that need no engine never read or write the user's real kfbox state.
pytestmark = pytest.mark.usefixtures("kfbox_home")


def apt_root(tmp_path: Path, sources_list: str = "", deb822: str = "") -> Path:
    (tmp_path / "sources.list.d").mkdir()
    (tmp_path / "sources.list").write_text(sources_list)
    (tmp_path / "sources.list.d" / "debian.sources").write_text(deb822)
    return tmp_path


def test_deb822_sources_give_the_main_archive(tmp_path, monkeypatch) -> None:
    root = apt_root(
        tmp_path,
        deb822=(
            "Types: deb\nURIs: http://mirror.example/debian-security\nSuites: bookworm-security\n\n"
            "Types: deb\nURIs: http://mirror.example/debian/\nSuites: bookworm\n"
        ),
    )
    monkeypatch.setattr(base, "APT_SOURCES", root)
    monkeypatch.delenv("KFBOX_DEBIAN_MIRROR", raising=False)
    assert base.mirror() == "http://mirror.example/debian"


def test_one_line_sources_and_options(tmp_path, monkeypatch) -> None:
    root = apt_root(
        tmp_path,
        sources_list=(
            "# deb http://old.example/debian bookworm main\n"
            "deb [signed-by=/k.gpg] https://proxy.example/debian bookworm main\n"
        ),
    )
    monkeypatch.setattr(base, "APT_SOURCES", root)
    monkeypatch.delenv("KFBOX_DEBIAN_MIRROR", raising=False)
    assert base.mirror() == "https://proxy.example/debian"


def test_the_setting_wins_and_no_source_is_one_clear_error(tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(base, "APT_SOURCES", apt_root(tmp_path))
    monkeypatch.setenv("KFBOX_DEBIAN_MIRROR", "http://local.example/debian")
    assert base.mirror() == "http://local.example/debian"
    monkeypatch.delenv("KFBOX_DEBIAN_MIRROR")
    with pytest.raises(PreflightError, match="no Debian archive") as caught:
        base.mirror()
    assert "KFBOX_DEBIAN_MIRROR" in caught.value.line()


class FakeDocker:
    """An engine whose pull works and whose build answers as the Docker API streams it, or
    raises BuildError as the high-level `images.build` does."""

    def __init__(self, build_stream: list[dict]) -> None:
        self.images = self
        self.api = self
        self.build_stream = build_stream
        self.dockerfiles: list[str] = []

    def get(self, tag: str) -> None:
        raise ImageNotFound(tag)

    def info(self) -> dict[str, str]:
        return {"DockerRootDir": "/"}  # free space is read off this machine's own root

    def pull(self, reference: str) -> None:
        pass

    def build(self, path: str | None = None, fileobj: Any = None, **_: Any) -> Iterator[dict]:
        if path is None:  # the images.build path: a failure is an uncaught BuildError
            raise BuildError("apt-get returned a non-zero code: 100", iter(()))
        self.dockerfiles.append((Path(path) / "Dockerfile").read_text())
        return iter(self.build_stream)


def warnings_of(reporter: Reporter) -> str:
    return reporter.console.file.getvalue()


def recording_reporter() -> Reporter:
    return Reporter(console=Console(file=io.StringIO(), width=400))


def test_a_failing_package_install_falls_back_to_debootstrap(monkeypatch) -> None:
    fallback: list[str] = []
    monkeypatch.setattr(base, "_from_debootstrap", lambda _c, tag, _u: fallback.append(tag))
    client = FakeDocker([
        {"stream": "Step 2/4 : RUN apt-get update\n"},
        {"error": "The command '/bin/sh -c apt-get update' returned a non-zero code: 100"},
    ])
    reporter = recording_reporter()
    assert base.ensure_base_image(reporter, client) == base.base_tag()
    assert fallback == [base.base_tag()]
    assert client.dockerfiles[0].startswith(f"FROM {base.PULL_REFERENCE}\n")
    warned = warnings_of(reporter)
    assert "image build failed" in warned and "returned a non-zero code: 100" in warned
    assert "debootstrap instead" in warned


def test_a_good_package_install_needs_no_debootstrap(monkeypatch) -> None:
    monkeypatch.setattr(base, "_from_debootstrap", lambda *_: pytest.fail("debootstrap ran"))
    client = FakeDocker([{"stream": "Step 1/4 : FROM debian\n"}, {"aux": {"ID": "sha256:ab"}}])
    assert base.ensure_base_image(recording_reporter(), client) == base.base_tag()
    assert len(client.dockerfiles) == 1
