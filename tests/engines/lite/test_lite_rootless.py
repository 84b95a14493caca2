"""The lite engine's rootless settings that need no engine: preflight refuses a host that cannot
run a rootless Docker engine (before anything is made), the engine's limits, and what the
notebook server gets."""

from __future__ import annotations

from pathlib import Path

import pytest

from kfbox.engines.lite import rootless
from kfbox.engines.lite.engine import LiteEngine
from kfbox.host import rootless_docker
from kfbox.host.config import Resources, SandboxSpec


def rootless_spec() -> SandboxSpec:
    return SandboxSpec.model_validate({"name": "rl", "lite": {"docker": "rootless"}})


def test_preflight_refuses_a_host_without_what_a_rootless_engine_needs(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(rootless_docker, "TOOLS", (*rootless_docker.TOOLS, "no-such-tool-here"))
    [check] = [c for c in LiteEngine(rootless_spec()).preflight() if c.name == "rootless docker"]
    assert check.status == "fail" and "no-such-tool-here missing" in check.detail
    assert "kfbox provision" in check.fix
    # The host's engine needs none of it.
    host = SandboxSpec.model_validate({"name": "h"})
    assert "rootless docker" not in {c.name for c in LiteEngine(host).preflight()}


def test_the_engines_limits_hold_four_workloads_and_no_more_cpus_than_the_host(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(rootless.os, "cpu_count", lambda: 2)
    limits = rootless.sandbox_limits(Resources(memory="1g", cpus=2.0))
    assert limits == {"memory": str(4 * 2**30), "cpus": 2.0}


def test_the_notebook_gets_the_engines_socket_and_its_home_at_the_same_path() -> None:
    engine = rootless_docker.RootlessDocker("rl", "kfbox-rl", 999, 999, Path("/home/kfbox-rl"),
                                            Path("/run/kfbox-rootless/999/docker.sock"))
    settings = rootless.jupyter_settings(engine, "kfbox-rl", "127.0.0.1:5000")
    home = "/home/kfbox-rl/notebook"
    assert settings["volumes"] == {
        "/run/kfbox-rootless/999/docker.sock": {"bind": rootless.ENGINE_SOCKET, "mode": "rw"},
        home: {"bind": home, "mode": "rw"}}
    assert settings["environment"] == {
        "DOCKER_HOST": f"unix://{rootless.ENGINE_SOCKET}", "HOME": home,
        "KFBOX_NETWORK": "kfbox-rl", "KFBOX_REGISTRY": "127.0.0.1:5000"}
    # Container root is the engine's user on the host (the socket is that user's), never the
    # host's docker socket anywhere.
    assert settings["user"] == "root"
    assert not any("docker.sock" in target["bind"] and target["bind"] != rootless.ENGINE_SOCKET
                   for target in settings["volumes"].values())


def test_each_tutorial_proves_a_person_requirement() -> None:
    from kfbox.harness.requirements import REQUIREMENTS

    tutorials = rootless.tutorial_checks()
    assert {Path(t.notebook).name for t in tutorials} == {p.name for p in rootless.tutorials()}
    assert all(t.requirement in REQUIREMENTS and t.requirement.startswith("person.")
               for t in tutorials)
