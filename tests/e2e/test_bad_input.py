"""Bad input to `kfbox up` and `kfbox test`: one clear line, a non-zero exit, nothing left."""

from __future__ import annotations

import socket
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from kfbox.scenarios.scenario import SCENARIO_FILE, load_scenario
from tests.support.cli import kfbox_cli
from tests.support.net import free_ports
from tests.support.sandboxes import labelled

pytestmark = pytest.mark.e2e


def one_line(stderr: str) -> str:
    lines = [ln for ln in stderr.strip().splitlines() if ln.strip()]
    assert len(lines) == 1, stderr
    return lines[0]


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--gpu", "maybe"], "gpu: 'maybe' is not valid"),
        (["--port", "jupyter=80"], "ports.jupyter: 80 is not valid"),
        (["--port", "notebook=9000"], "unknown key 'ports.notebook'"),
        (["--port", "jupyter"], "--port 'jupyter' is not COMPONENT=NUMBER"),
    ],
)
def test_bad_flags(docker_client, fresh_name: str, kfbox_home, args, expected) -> None:
    done = kfbox_cli("--name", fresh_name, "up", *args)
    assert done.returncode == 2
    assert expected in one_line(done.stderr)
    assert labelled(docker_client, fresh_name) == []


def test_unknown_key_in_config_file(docker_client, fresh_name, kfbox_home, tmp_path) -> None:
    (tmp_path / "kfbox.yaml").write_text(f"name: {fresh_name}\nengine: lite\nmemory: 8g\n")
    done = kfbox_cli("up", cwd=tmp_path)
    assert done.returncode == 2
    assert "kfbox.yaml: unknown key 'memory'" in one_line(done.stderr)
    assert labelled(docker_client, fresh_name) == []


def test_port_already_taken(docker_client, fresh_name: str, kfbox_home) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        registry, tracking = free_ports(2)  # never `port`: it is bound
        done = kfbox_cli(
            "--name",
            fresh_name,
            "up",
            "--port",
            f"jupyter={port}",
            "--port",
            f"registry={registry}",
            "--port",
            f"tracking={tracking}",
        )
    assert done.returncode == 3
    line = one_line(done.stderr)
    assert f"127.0.0.1:{port} is already in use" in line and "--port jupyter=N" in line
    assert labelled(docker_client, fresh_name) == []


def test_no_engine_and_no_provision(docker_client, fresh_name: str, kfbox_home, tmp_path) -> None:
    nowhere = f"unix://{tmp_path}/no-docker.sock"
    done = kfbox_cli("--name", fresh_name, "up", env={"DOCKER_HOST": nowhere})
    assert done.returncode == 3
    line = one_line(done.stderr)
    assert "docker engine" in line and "kfbox provision" in line
    assert labelled(docker_client, fresh_name) == []


def drop_last_check(folder: Path) -> str:
    """Remove the scenario's last step check; the loader's line names it."""
    raw = yaml.safe_load((folder / SCENARIO_FILE).read_text())
    name = list(raw["checks"])[-1]
    del raw["checks"][name]
    (folder / SCENARIO_FILE).write_text(yaml.safe_dump(raw, sort_keys=False))
    return f"missing key 'checks.{name}'"


def drop_a_build_file(folder: Path) -> str:
    """Delete a file the scenario names (its first build file: the model server)."""
    name = load_scenario(folder).build_files[0]
    (folder / name).unlink()
    return f"missing file '{name}'"


@pytest.mark.parametrize("breaks", [drop_last_check, drop_a_build_file])
def test_broken_scenario_is_refused_before_anything_runs(
    docker_client,
    fresh_name: str,
    kfbox_home,
    digits_copy: Path,
    tmp_path: Path,
    breaks: Callable[[Path], str],
) -> None:
    expected = f"scenario {digits_copy.name}: {breaks(digits_copy)}"
    out = tmp_path / "out"
    done = kfbox_cli(
        "--name",
        fresh_name,
        "test",
        "--profile",
        "quick",
        "--scenario",
        str(digits_copy),
        "--out",
        str(out),
    )
    assert done.returncode == 2, done.stdout[-2000:] + done.stderr
    assert expected in one_line(done.stderr)
    assert not out.exists()  # no run folder: the journey never started
    assert labelled(docker_client, fresh_name) == []
