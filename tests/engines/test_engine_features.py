"""Engines declare what they can do (EngineFeatures) and callers ask: each test turns one
declaration around and shows the caller following it, never the engine's name."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from kfbox.apps.offline.writer import read_verification
from kfbox.apps.workshop import seats
from kfbox.cli.lifecycle import refuse_listen
from kfbox.engines import engine_class, lifecycle
from kfbox.engines.base import Capabilities, Engine, SandboxStatus
from kfbox.engines.kubernetes.kind import KindEngine
from kfbox.engines.lite.engine import LiteEngine
from kfbox.engines.platform import Platform
from kfbox.harness.certificate import __file__ as report_package
from kfbox.host.config import SandboxSpec, load_spec
from kfbox.host.errors import UsageError
from kfbox.host.preflight import Check
from kfbox.host.progress import Reporter, quiet_reporter

# Tests that need no engine never read or write the user's real kfbox state.
pytestmark = pytest.mark.usefixtures("kfbox_home")


def declare(monkeypatch: pytest.MonkeyPatch, engine: type[Engine], **changes: object) -> None:
    monkeypatch.setattr(engine, "features", dataclasses.replace(engine.features, **changes))


def test_an_engine_class_is_found_by_name_and_lite_loads_no_kubernetes_code() -> None:
    assert engine_class("lite") is LiteEngine and engine_class("kind") is KindEngine
    with pytest.raises(UsageError) as caught:
        engine_class("podman")
    assert caught.value.line() == "no engine 'podman' — give one of: lite, kind, existing"
    # A fresh interpreter: this one imported the Kubernetes engines above.
    probe = ("import sys; from kfbox.engines import engine_class; engine_class('lite'); "
             "print(any(m.startswith('kfbox.engines.kubernetes') for m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                          check=True)
    assert done.stdout.strip() == "False"


def test_seats_run_where_the_engine_declares_them(monkeypatch, tmp_path: Path) -> None:
    config = tmp_path / "kfbox.yaml"
    config.write_text("engine: kind\n")
    workshop = seats.new_workshop("lab", 1, 20000, "127.0.0.1", {})
    with pytest.raises(UsageError, match="engine 'kind': a workshop's seats run on the lite"):
        workshop.spec(workshop.seats[0], config)
    declare(monkeypatch, KindEngine, seats=True)
    assert workshop.spec(workshop.seats[0], config).engine == "kind"


def test_listen_beyond_loopback_where_the_engine_declares_it(monkeypatch) -> None:
    spec = load_spec(None, {"name": "lt", "engine": "kind", "lite.listen": "0.0.0.0"})
    with pytest.raises(UsageError) as caught:
        refuse_listen(spec)
    assert caught.value.line() == ("listen '0.0.0.0' is supported by the lite engine only; the "
                                   "kind engine publishes on 127.0.0.1 — drop --listen, or use "
                                   "--engine lite")
    refuse_listen(load_spec(None, {"name": "lt", "engine": "kind"}))  # loopback: any engine
    declare(monkeypatch, KindEngine, listen=True)
    refuse_listen(spec)


def test_the_bundle_writer_is_the_one_the_engine_declares(monkeypatch, tmp_path, capsys,
                                                          kfbox_home) -> None:
    from kfbox.cli import main

    monkeypatch.chdir(tmp_path)
    declare(monkeypatch, LiteEngine, bundle="folder")
    with pytest.raises(SystemExit) as exited:
        main(["bundle"])
    assert exited.value.code == 2
    assert "error: --engine lite needs --output FOLDER" in capsys.readouterr().err


def certificate(tmp_path: Path, engine: str) -> Path:
    """A certified run's results, as `kfbox certify` on `engine` writes them."""
    run = tmp_path / "run"
    run.mkdir()
    example = (Path(report_package).parent / "SCHEMA.md").read_text()
    report = example.split("```json\n", 1)[1].split("```", 1)[0]
    (run / "report.json").write_text(report.replace('"engine": "lite"', f'"engine": "{engine}"'))
    for name in ("junit.xml", "report.html"):
        (run / name).write_text("")
    return run


def test_a_bundle_is_verified_by_a_run_on_an_archive_engine(monkeypatch, tmp_path) -> None:
    run = certificate(tmp_path, "kind")
    with pytest.raises(UsageError, match=r"certified a kind sandbox, not a lite one"):
        read_verification(run)
    declare(monkeypatch, KindEngine, bundle="archive")
    verified, _ = read_verification(run)
    assert verified.certified


class BundleHook(Engine):
    """An engine whose from-bundle hook says when it runs, around preflight."""

    name = "stand-in"
    features = LiteEngine.features
    events: list[str] = []

    def preflight(self) -> list[Check]:
        self.events.append("preflight")
        return []

    @contextmanager
    def installing_from_bundle(self, bundle: Path, reporter: Reporter) -> Iterator[Path | None]:
        self.events.append(f"verify {bundle.name}")
        yield None
        self.events.append("load images")

    def up(self, reporter: Reporter) -> SandboxStatus:
        self.events.append("up")
        return SandboxStatus(self.spec.name, self.name, "running")

    def status(self) -> SandboxStatus:
        return SandboxStatus(self.spec.name, self.name, "running")

    def down(self, reporter: Reporter, *, keep_data: bool = False) -> list[str]:
        return []

    def capabilities(self) -> Capabilities:
        return Capabilities()

    def platform(self, run_dir: Path) -> Platform:
        raise NotImplementedError("no journey runs on a stand-in")


def test_up_from_a_bundle_is_the_engines_own_hook(monkeypatch, tmp_path, kfbox_home) -> None:
    monkeypatch.setattr(lifecycle, "get_engine", BundleHook)
    bundle = tmp_path / "b.tar"
    spec = SandboxSpec(name="hooked", from_bundle=bundle)
    BundleHook.events = []
    lifecycle.bring_up(spec, quiet_reporter(), provision=False, from_bundle=True)
    assert BundleHook.events == ["verify b.tar", "preflight", "load images", "up"]
    BundleHook.events = []  # a repairing `up` that names no bundle reads none
    lifecycle.bring_up(spec, quiet_reporter(), provision=False)
    assert BundleHook.events == ["preflight", "up"]
