"""The lite engine's rootless settings that need no engine: preflight refuses a host that cannot
run a rootless Docker engine (before anything is made), the engine's limits, and what the
notebook server gets."""

from __future__ import annotations

from pathlib import Path

import pytest

from kfbox.engines.lite import rootless
from kfbox.engines.lite.engine import LiteEngine
from kfbox.engines.tutorials import notebooks, tutorial_checks
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
    host = SandboxSpec.model_validate({"name": "h", "lite": {"docker": "host"}})
    assert "rootless docker" not in {c.name for c in LiteEngine(host).preflight()}


@pytest.mark.parametrize(("gpu", "status"), [("on", "fail"), ("auto", "warn"), ("off", "pass")])
def test_preflight_says_a_rootless_sandbox_cannot_use_the_hosts_gpus(
    monkeypatch: pytest.MonkeyPatch, gpu: str, status: str
) -> None:
    """On a GPU host (detected as nvidia-smi reports it; no host here has one) a rootless sandbox
    gets no GPU: asked for one it is refused before anything is made, naming the fix."""
    from kfbox.engines.lite import engine as lite_engine
    from kfbox.host.gpu import GpuFacts

    present = GpuFacts(count=1, names=["NVIDIA H200"], driver="580.1")
    monkeypatch.setattr(lite_engine, "detect_gpus", lambda: present)
    spec = SandboxSpec.model_validate({"name": "rl", "gpu": gpu, "lite": {"docker": "rootless"}})
    [check] = [c for c in LiteEngine(spec).preflight() if c.name == "gpu"]
    assert check.status == status, check
    if status != "pass":
        assert "a rootless sandbox cannot use them yet" in check.detail
        assert "lite.docker: host" in check.fix


def test_the_engines_limits_hold_four_workloads_and_no_more_cpus_than_the_host(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(rootless.os, "cpu_count", lambda: 2)
    limits = rootless.sandbox_limits(Resources(memory="1g", cpus=2.0))
    assert limits == {"memory": str(4 * 2**30), "cpus": 2.0}


def test_the_notebook_gets_the_engines_socket_and_its_home_at_the_same_path() -> None:
    engine = rootless_docker.RootlessDocker("rl", "kfbox-rl", 999, 999, Path("/home/kfbox-rl"),
                                            Path("/run/kfbox-rootless/999/docker.sock"))
    settings = rootless.jupyter_settings(engine, "kfbox-rl", "127.0.0.1:5000",
                                         "kfbox/runtime:abc")
    home = "/home/kfbox-rl/notebook"
    assert settings["volumes"] == {
        "/run/kfbox-rootless/999/docker.sock": {"bind": rootless.ENGINE_SOCKET, "mode": "rw"},
        home: {"bind": home, "mode": "rw"}}
    assert settings["environment"] == {
        "DOCKER_HOST": f"unix://{rootless.ENGINE_SOCKET}", "HOME": home,
        "KFBOX_NETWORK": "kfbox-rl", "KFBOX_REGISTRY": "127.0.0.1:5000",
        "KFBOX_RUNTIME_IMAGE": "kfbox/runtime:abc"}
    # Container root is the engine's user on the host (the socket is that user's), never the
    # host's docker socket anywhere.
    assert settings["user"] == "root"
    assert not any("docker.sock" in target["bind"] and target["bind"] != rootless.ENGINE_SOCKET
                   for target in settings["volumes"].values())


def test_each_tutorial_proves_a_person_requirement() -> None:
    from kfbox.harness.requirements import REQUIREMENTS

    tutorials = tutorial_checks(rootless.TUTORIALS)
    assert {Path(t.notebook).name for t in tutorials} == {
        p.name for p in notebooks(rootless.TUTORIALS)}
    assert all(t.requirement in REQUIREMENTS and t.requirement.startswith("person.")
               for t in tutorials)


def test_a_notebook_that_takes_no_tutorials_fails_up_in_one_line(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """As on kind: a notebook server that refuses kfbox's token stops `up` with one line naming
    its answer and the container whose log says why, not a traceback."""
    from kfbox.engines.lite import components as comp
    from kfbox.host.errors import KfboxError
    from kfbox.host.progress import quiet_reporter
    from tests.support.net import Refusing, http_server

    monkeypatch.setenv("KFBOX_HOME", str(tmp_path / "home"))
    with http_server(Refusing) as port:
        spec = SandboxSpec.model_validate(
            {"name": "rl", "lite": {"docker": "rootless"}, "ports": {"jupyter": port}})
        engine = LiteEngine(spec)
        plan = comp.jupyter_plan(spec, "kfbox/jupyter:any", engine.token())
        with pytest.raises(KfboxError) as raised:
            engine._offer_tutorials(plan, quiet_reporter())
    assert raised.value.line() == (
        f"the sandbox notebook took no tutorials: jupyter at http://127.0.0.1:{port} rejected "
        f"the token (HTTP 403) — see `docker logs {plan.name('rl')}`, then `kfbox up` again")
