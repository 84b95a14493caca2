"""The lite sandbox on the host's Docker engine (`lite.docker: host`): up, status, idempotent up,
repair, down; the default, a rootless engine of its own, is tests/e2e/test_journey_lite.py's."""

from __future__ import annotations

import json

import pytest
import requests

from kfbox.engines.lite.components import network_name
from kfbox.host.docker_engine import LABEL, ROLE_LABEL, RUN_LABEL
from kfbox.host.images.base import ensure_base_image
from kfbox.host.progress import quiet_reporter
from tests.support.cli import kfbox_cli
from tests.support.net import free_ports
from tests.support.sandboxes import free_ports_args, labelled

pytestmark = pytest.mark.e2e


def test_lifecycle_up_status_repair_down(
    docker_client, fresh_name: str, kfbox_home, on_host_engine: list[str]
) -> None:
    jupyter, registry, tracking = free_ports(3)
    base = ["--name", fresh_name, *on_host_engine]
    ports = ["--port", f"jupyter={jupyter}", "--port", f"registry={registry}",
             "--port", f"tracking={tracking}"]

    first = kfbox_cli(*base, "up", *ports, "--json")
    assert first.returncode == 0, first.stderr
    status = json.loads(first.stdout)
    assert status["state"] == "running"
    assert {c["name"]: c["healthy"] for c in status["components"]} == {
        "jupyter": True,
        "registry": True,
        "store": True,
        "tracking": True,
        "runtime": True,
    }

    # Every published port is on 127.0.0.1, and the token never shows in status output.
    for container in docker_client.containers.list(
        ignore_removed=True, filters={"label": f"kfbox.sandbox={fresh_name}"}
    ):
        for bindings in container.attrs["HostConfig"]["PortBindings"].values():
            assert all(b["HostIp"] == "127.0.0.1" for b in bindings), container.name
    token = (kfbox_home / "sandboxes" / fresh_name / "jupyter-token").read_text().strip()
    shown = kfbox_cli(*base, "status", *[], "--json")
    assert shown.returncode == 0 and token not in shown.stdout
    revealed = kfbox_cli(*base, "status", "--json", "--show-token")
    assert token in revealed.stdout

    # The table says how to log in without showing the token.
    table = kfbox_cli(*base, "status")
    words = " ".join(table.stdout.split())  # the caption wraps with the terminal's width
    assert ("jupyter and tracking ask for their login: `kfbox status --show-token` shows each "
            "URL with it") in words
    assert token not in table.stdout

    # Jupyter refuses requests without the token, answers with it.
    url = f"http://127.0.0.1:{jupyter}"
    auth = {"Authorization": f"token {token}"}
    assert requests.get(f"{url}/api/contents", timeout=10).status_code == 403
    assert requests.get(f"{url}/api/contents", timeout=10, headers=auth).status_code == 200
    # JupyterLab never asks to fetch Jupyter's news nor checks for updates (no request to
    # the internet a user did not ask for): the defaults its settings API serves.
    notification = requests.get(
        f"{url}/lab/api/settings/@jupyterlab/apputils-extension:notification",
        timeout=10, headers=auth,
    ).json()["schema"]["properties"]
    assert notification["fetchNews"]["default"] == "false"
    assert notification["checkForUpdates"]["default"] is False

    ids = {
        c.name: c.id
        for c in docker_client.containers.list(
            ignore_removed=True, filters={"label": f"kfbox.sandbox={fresh_name}"})
    }
    again = kfbox_cli(*base, "up", *ports, "--json")
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout)["facts"]["actions"] == {
        "registry": "unchanged",
        "tracking": "unchanged",
        "jupyter": "unchanged",
    }
    assert ids == {
        c.name: c.id
        for c in docker_client.containers.list(
            ignore_removed=True, filters={"label": f"kfbox.sandbox={fresh_name}"})
    }

    # A stopped component is started again, a removed one re-created.
    docker_client.containers.get(f"kfbox-{fresh_name}-jupyter").stop(timeout=5)
    docker_client.containers.get(f"kfbox-{fresh_name}-registry").remove(force=True)
    degraded = kfbox_cli(*base, "status")
    assert degraded.returncode == 1
    repaired = kfbox_cli(*base, "up", *ports, "--json")
    assert repaired.returncode == 0, repaired.stderr
    assert json.loads(repaired.stdout)["facts"]["actions"] == {
        "registry": "created",
        "tracking": "unchanged",
        "jupyter": "started",
    }
    assert json.loads(repaired.stdout)["state"] == "running"

    seeded = [
        t
        for i in docker_client.images.list()
        for t in i.tags
        if t.startswith(f"127.0.0.1:{registry}/")
    ]
    assert seeded, "up pushed the ML runtime into the sandbox registry"
    down = kfbox_cli(*base, "down")
    assert down.returncode == 0, down.stderr
    assert labelled(docker_client, fresh_name) == []
    assert not [
        t
        for i in docker_client.images.list()
        for t in i.tags
        if t.startswith(f"127.0.0.1:{registry}/")
    ]
    assert kfbox_cli(*base, "status").returncode == 1


def test_down_keep_data_keeps_only_volumes(
    docker_client, fresh_name: str, kfbox_home, on_host_engine: list[str]
) -> None:
    base = ["--name", fresh_name, *on_host_engine]
    ports = free_ports_args()
    assert kfbox_cli(*base, "up", *ports).returncode == 0
    kept = kfbox_cli(*base, "down", "--keep-data")
    assert kept.returncode == 0, kept.stderr
    left = labelled(docker_client, fresh_name)
    assert left and all(item.startswith("volume ") for item in left)
    assert kfbox_cli(*base, "down").returncode == 0
    assert labelled(docker_client, fresh_name) == []


def test_status_lists_a_kept_model_server(
    docker_client, fresh_name: str, kfbox_home, on_host_engine: list[str]
) -> None:
    # A container labelled as `kfbox test --keep` leaves a model server: a workload of a run,
    # its port any free one on 127.0.0.1 (the port a real model server would answer on).
    base = ["--name", fresh_name, *on_host_engine]
    ports = free_ports_args()
    assert kfbox_cli(*base, "up", *ports).returncode == 0
    server = docker_client.containers.run(
        ensure_base_image(quiet_reporter(), docker_client), ["sleep", "infinity"],
        name=f"kfbox-{fresh_name}-run-0e2e-serve-digits", detach=True,
        network=network_name(fresh_name),
        labels={LABEL: fresh_name, ROLE_LABEL: "workload", RUN_LABEL: "run-0e2e"},
        ports={"8080/tcp": ("127.0.0.1", None)},
    )
    server.reload()
    url = f"http://127.0.0.1:{server.ports['8080/tcp'][0]['HostPort']}"

    shown = kfbox_cli(*base, "status", "--json")
    assert shown.returncode == 0, shown.stderr  # a kept workload is not the platform's health
    assert json.loads(shown.stdout)["workloads"] == [
        {"name": server.name, "run": "run-0e2e", "url": url}
    ]
    assert f"  {server.name} (run-0e2e): {url}" in kfbox_cli(*base, "status").stdout.splitlines()

    assert kfbox_cli(*base, "down").returncode == 0  # kept workloads go with the sandbox
    assert labelled(docker_client, fresh_name) == []
