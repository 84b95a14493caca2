"""A lite sandbox in a rootless Docker engine of its own (`lite.docker: rootless`), end to end:
`up`, the quick journey, a person's notebook training over two nodes with the Kubeflow SDK from a
cell, every escape of the table attempted from that notebook's own kernel, and `down` taking the
engine and its user away."""

from __future__ import annotations

import json
import os
import re
import secrets
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import nbformat
import pytest
import requests
from nbformat.v4 import new_code_cell, new_notebook

from kfbox.engines.jupyter import JupyterClient
from kfbox.engines.lite.rootless import ENGINE_SOCKET, notebook_home
from kfbox.host.images.base import ensure_base_image
from kfbox.host.progress import quiet_reporter
from kfbox.host.rootless_docker import RootlessDocker, find_rootless_docker
from tests.support import escapes
from tests.support.cli import kfbox_cli
from tests.support.escape_table import ATTEMPTS, attempt_spec, judge
from tests.support.net import free_port
from tests.support.sandboxes import labelled, run_folder, run_record, sandbox_name

pytestmark = pytest.mark.e2e
RUN = secrets.token_hex(3)
TUTORIALS = Path(__file__).resolve().parents[2] / "kfbox" / "engines" / "lite" / "tutorials"


class Sandbox:
    def __init__(self, name: str, home: Path, config: Path) -> None:
        self.name, self.home, self.config = name, home, config

    def cli(self, *args: str):
        return kfbox_cli("--name", self.name, "--config", str(self.config), *args,
                         env={"KFBOX_HOME": str(self.home)})

    @property
    def engine(self) -> RootlessDocker:
        engine = find_rootless_docker(self.name)
        assert engine is not None, f"sandbox {self.name} has no rootless Docker engine"
        return engine

    def jupyter_login(self) -> tuple[str, str]:
        """(the notebook server's base URL, its token)."""
        status = json.loads(self.cli("status", "--json", "--show-token").stdout)
        url = urlsplit(next(c["url"] for c in status["components"] if c["name"] == "jupyter"))
        return f"{url.scheme}://{url.netloc}", parse_qs(url.query)["token"][0]

    def jupyter(self) -> JupyterClient:
        return JupyterClient(*self.jupyter_login())


@pytest.fixture(scope="module")
def sandbox(docker_client, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    home = tmp_path_factory.mktemp("kfbox-home")
    shared = Path(os.environ.get("KFBOX_HOME", Path.home() / ".kfbox")) / "cache"
    shared.mkdir(parents=True, exist_ok=True)
    (home / "cache").symlink_to(shared)
    config = home / "kfbox.yaml"
    config.write_text("lite: {docker: rootless}\n")
    made = Sandbox(sandbox_name("rootless"), home, config)
    try:
        up = made.cli("up", "--port", f"jupyter={free_port()}",
                      "--port", f"registry={free_port()}")
        assert up.returncode == 0, up.stdout[-2000:] + up.stderr[-3000:]
        yield made
    finally:
        down = made.cli("down")
        assert down.returncode == 0, down.stderr[-2000:]
        assert find_rootless_docker(made.name) is None
        assert labelled(docker_client, made.name) == []


def execute(sandbox: Sandbox, notebook: Path, tmp_path: Path, folder: str) -> list[dict]:
    """Run `notebook` in the sandbox's own kernel; the executed cells."""
    result = sandbox.jupyter().execute_notebook(notebook, folder, tmp_path / "executed.ipynb",
                                                timeout_s=600)
    return json.loads(result.executed.read_text())["cells"]


def printed(cell: dict) -> str:
    return "".join("".join(o.get("text", "")) for o in cell.get("outputs", []))


def test_the_sandbox_runs_in_its_own_rootless_engine(sandbox: Sandbox, docker_client) -> None:
    engine = sandbox.engine
    names = {c.name for c in engine.client().containers.list()}
    assert {f"kfbox-{sandbox.name}-jupyter", f"kfbox-{sandbox.name}-registry"} <= names
    assert labelled(docker_client, sandbox.name) == []  # nothing on the host's engine
    status = json.loads(sandbox.cli("status", "--json").stdout)
    assert status["state"] == "running" and status["facts"]["docker"] == "rootless"
    # `up` offered the tutorials in the notebook server, where a person finds them.
    url, token = sandbox.jupyter_login()
    listing = requests.get(f"{url}/api/contents/tutorials", timeout=30,
                           headers={"Authorization": f"token {token}"}).json()
    assert {c["name"] for c in listing["content"]} == {p.name for p in TUTORIALS.glob("*.ipynb")}


def test_the_quick_journey_passes_in_the_rootless_engine(sandbox: Sandbox, tmp_path) -> None:
    done = sandbox.cli("test", "--profile", "quick", "--out", str(tmp_path))
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    [journey] = run_record(run_folder(tmp_path))["journeys"]
    assert {s["name"]: s["status"] for s in journey["steps"]} == {
        "notebook": "passed", "build": "passed", "train": "passed", "tune": "passed",
        "serve": "passed"}


def test_a_cell_serves_a_model_queried_from_the_notebook_and_the_host(
    sandbox: Sandbox, tmp_path
) -> None:
    tutorial = json.loads((TUTORIALS / "serve-from-the-notebook.ipynb").read_text())
    undeploy = tutorial["cells"][-1]
    tutorial["cells"] = tutorial["cells"][:-1]  # keep it deployed, to query from the host
    (tmp_path / "serve.ipynb").write_text(json.dumps(tutorial))
    cells = execute(sandbox, tmp_path / "serve.ipynb", tmp_path, "tutorials")
    output = "\n".join(printed(c) for c in cells)
    answers = {k: v for k, v in re.findall(r"^(v1|v2|expected): (\[.*\])$", output, re.M)}
    assert answers["v1"] == answers["v2"] == answers["expected"], output[-2000:]
    url = re.search(r"from the host: (\S+)", output).group(1)
    assert url.startswith("http://127.0.0.1:")
    from_host = requests.post(url, json={"instances": [[0.0] * 64]}, timeout=30)
    assert from_host.ok and len(from_host.json()["predictions"]) == 1
    status = json.loads(sandbox.cli("status", "--json").stdout)
    assert "digits-server" in {w["name"] for w in status["workloads"]}
    # The tutorial's last cell undeploys it (in a new kernel: first find the server again).
    find = new_code_cell("import docker\nengine = docker.from_env()\n"
                         "container = engine.containers.get('digits-server')")
    (tmp_path / "undeploy.ipynb").write_text(json.dumps({**tutorial, "cells": [find, undeploy]}))
    cells = execute(sandbox, tmp_path / "undeploy.ipynb", tmp_path, "tutorials")
    assert "servers left: []" in printed(cells[-1])


def test_the_notebook_profile_certifies_a_persons_work(sandbox: Sandbox, tmp_path) -> None:
    """The training (2 nodes), tuning, building and serving tutorials, each run top to bottom in the
    sandbox's kernel and judged against its conditions (tutorials/checks.yaml)."""
    done = sandbox.cli("certify", "--profile", "notebook", "--out", str(tmp_path))
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    report = json.loads((run_folder(tmp_path) / "report.json").read_text())
    assert report["certified"] is True
    statuses = {r["id"]: r["status"] for r in report["requirements"]}
    assert statuses == {"person.boundary": "passed", "person.trains": "passed",
                        "person.tunes": "passed", "person.builds": "passed",
                        "person.serves": "passed"}
    evidence = {r["id"]: [e["detail"] for e in r["evidence"]] for r in report["requirements"]}
    assert "train-from-the-notebook.ipynb: world_size=2 meets world_size >= 2" in \
        evidence["person.trains"]
    # The jobs ran, and went, in the sandbox's engine only.
    assert [c.name for c in sandbox.engine.client().containers.list(all=True)
            if c.labels.get("kfbox.role") != "component"] == []


@pytest.fixture(scope="module")
def kernel_attempts(sandbox: Sandbox, docker_client, canary, marker,
                    tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[dict, str, int]]:
    """Every attempt of the escape table, made from the notebook's own kernel through the socket
    it holds, in one notebook (one kernel): name → (result, token, canary count before)."""
    image = ensure_base_image(quiet_reporter(), docker_client)  # copied in at `up`
    labels = {"kfbox.test": RUN}
    specs = {name: attempt_spec(name, RUN, image, labels, canary, marker)
             for name, *_ in ATTEMPTS}
    setup = (f"import json, os\nos.environ['KFBOX_PROBE'] = {escapes.source()!r}\n"
             "ns = {'__name__': 'escapes'}\n"
             "exec(compile(os.environ['KFBOX_PROBE'], 'escapes.py', 'exec'), ns)\n"
             "print(json.dumps({'docker_host': os.environ.get('DOCKER_HOST'), "
             "'host_socket': os.path.exists('/var/run/docker.sock'), "
             "'uid_map': open('/proc/self/uid_map').read().split()}))")
    cells = [new_code_cell(setup)] + [
        new_code_cell(f"print(json.dumps(ns['attempt']({spec!r})))")
        for spec, _ in specs.values()]
    notebook = new_notebook(cells=cells)
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3"}
    folder = tmp_path_factory.mktemp("escapes")
    nbformat.write(notebook, folder / "escapes.ipynb")
    before = canary.accepted
    executed = execute(sandbox, folder / "escapes.ipynb", folder, "kfbox-escapes")
    kernel = json.loads(printed(executed[0]).strip())
    results = {"kernel": (kernel, "", before)}
    for (name, (_, token)), cell in zip(specs.items(), executed[1:], strict=True):
        results[name] = (json.loads(printed(cell).strip().splitlines()[-1]), token, before)
    return results


def test_the_notebook_holds_only_its_sandboxs_engine(sandbox: Sandbox, kernel_attempts) -> None:
    kernel, _, _ = kernel_attempts["kernel"]
    assert kernel["docker_host"] == f"unix://{ENGINE_SOCKET}"
    assert kernel["host_socket"] is False
    # The kernel's root is the engine's user on the host, never the host's root.
    assert kernel["uid_map"][:3] == ["0", str(sandbox.engine.uid), "1"]
    assert str(notebook_home(sandbox.engine)).startswith(str(sandbox.engine.home))


@pytest.mark.parametrize("name", [a[0] for a in ATTEMPTS])
def test_each_escape_from_the_kernel_is_refused_or_confined(
    sandbox: Sandbox, kernel_attempts, canary, name: str
) -> None:
    result, token, before = kernel_attempts[name]
    outcome, escaped = judge(result, sandbox.engine.uid, token, canary, before)
    print(f"\n{name}: {outcome}")
    assert not escaped, f"{name} escaped: {escaped} ({outcome})"
    leftover = sandbox.engine.client().containers.list(all=True,
                                                       filters={"label": f"kfbox.test={RUN}"})
    assert leftover == []
