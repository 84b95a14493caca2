"""Space in Docker's data-root: too little is one line naming the work and the space it needs,
before anything is built; a full disk met during a build says the same, not the engine's wall."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from kfbox.host import diskspace
from kfbox.host.errors import PreflightError
from kfbox.host.images.dockerbuild import docker_build

# Tests that need no engine never read or write the user's real kfbox state.
pytestmark = pytest.mark.usefixtures("kfbox_home")


class Engine:
    """Answers `info` with a data-root, and a build with the stream it is given."""

    def __init__(self, root: Path, stream: list[dict[str, Any]] | None = None) -> None:
        self.root, self.stream = root, stream or []
        self.api = self

    def info(self) -> dict[str, str]:
        return {"DockerRootDir": str(self.root)}

    def build(self, **_: Any) -> Iterator[dict[str, Any]]:
        return iter(self.stream)


def test_too_little_space_names_the_work_the_need_and_the_free(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(diskspace, "free_bytes", lambda path: int(0.4 * diskspace.GIB))
    with pytest.raises(PreflightError) as caught:
        diskspace.require_space(Engine(tmp_path), "building image kfbox/runtime:x", 4.5)  # type: ignore[arg-type]
    assert caught.value.line() == (
        f"building image kfbox/runtime:x needs about 4.5 GiB free in {tmp_path}; 0.4 GiB is "
        f"free — {diskspace.FIX}")
    assert caught.value.exit_code == 3


def test_enough_space_passes(tmp_path: Path) -> None:
    diskspace.require_space(Engine(tmp_path), "anything", 0.001)  # type: ignore[arg-type]


def test_a_full_disk_during_a_build_is_one_line(tmp_path: Path) -> None:
    engine = Engine(tmp_path, [
        {"stream": "Step 3/7 : RUN pip install ...\n"},
        {"error": "failed to copy files: write /var/lib/docker/overlay2/x: no space left on "
                  "device"},
    ])
    with pytest.raises(PreflightError) as caught:
        docker_build(engine, tmp_path, "kfbox/jupyter:x")  # type: ignore[arg-type]
    assert caught.value.line().startswith(
        f"building image kfbox/jupyter:x ran out of space in {tmp_path} (no space left on "
        "device) — free space there")
