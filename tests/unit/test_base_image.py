"""The base image's Debian mirror: the explicit setting, else the host's own apt sources."""

from __future__ import annotations

from pathlib import Path

import pytest

from kfbox.sandbox.errors import PreflightError
from kfbox.sandbox.images import base


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
