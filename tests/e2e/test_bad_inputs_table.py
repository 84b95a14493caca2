"""Bad input to every command, from a table: each is exactly one line on stderr naming the bad
value and the fix, a non-zero exit (2 for usage), no traceback, no new labelled Docker object,
and nothing written to kfbox's state (the commands run in-process against the real engine)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from kfbox.cli import main
from kfbox.host.docker_engine import LABEL
from kfbox.scenarios.scenario import SCENARIOS_DIR
from tests.support.net import free_port

pytestmark = pytest.mark.e2e

NAME = "badin"
"""Every case names this sandbox: none may create it."""


@dataclass(frozen=True)
class Case:
    argv: tuple[str, ...]
    says: str
    """A piece of the one line: the bad value and, where there is one, the fix."""
    code: int = 2


def files(root: Path) -> dict[str, str]:
    """The inputs the table refers to as {name}: files of every bad kind."""
    made: dict[str, str] = {"tmp": str(root), "port": str(free_port())}

    def write(name: str, text: str) -> None:
        (root / name).write_text(text)
        made[name.replace(".", "_").replace("-", "_")] = str(root / name)

    write("memory.yaml", "resources: {memory: lots}\n")
    write("cpus.yaml", "resources: {cpus: -1}\n")
    write("unknown.yaml", "memory: 8g\n")
    write("list.yaml", "- just\n- a list\n")
    write("notyaml.yaml", "name: [unclosed\n")
    write("gpu.yaml", "gpu: maybe\n")
    write("components.yaml", "lite: {components: [jupyter, dashboard]}\n")
    write("engine.yaml", "engine: podman\n")
    write("kubeconfig-bad-yaml", "hello: [world\n")
    write("kubeconfig-text", "just text\n")
    write("garbage.tar.gz", "not a bundle at all")
    write("pem", "not a certificate\n")
    for breakage, change in {
        "broken-yaml": lambda folder: (folder / "scenario.yaml").write_text("name: [x\n"),
        "unknown-key": lambda folder: edit(folder, lambda d: d["train"].update(gpus=1)),
        "two-bars": lambda folder: edit(folder, lambda d: d["checks"].update(
            train={"metric": "accuracy", "at_least": 0.9, "at_most": 1.0})),
        "against-goal": lambda folder: edit(folder, lambda d: d["checks"].update(
            tune={"metric": "accuracy", "at_most": 0.9})),
        "missing-file": lambda folder: (folder / "model.py").unlink(),
        "no-yaml": lambda folder: (folder / "scenario.yaml").unlink(),
    }.items():
        folder = root / breakage / "digits"
        folder.parent.mkdir()
        import shutil

        shutil.copytree(SCENARIOS_DIR / "digits", folder,
                        ignore=shutil.ignore_patterns("__pycache__"))
        change(folder)
        made[f"scenario_{breakage.replace('-', '_')}"] = str(folder)
    (root / "afile").write_text("x")
    made["afile"] = str(root / "afile")
    return made


def edit(folder: Path, change) -> None:
    data = yaml.safe_load((folder / "scenario.yaml").read_text())
    change(data)
    (folder / "scenario.yaml").write_text(yaml.safe_dump(data))


N = ("--name", NAME)
CASES: dict[str, Case] = {
    # up: flags
    "up-gpu-word": Case((*N, "up", "--gpu", "maybe"), "gpu: 'maybe' is not valid (allowed: auto, on or off)"),
    "up-port-low": Case((*N, "up", "--port", "jupyter=80"), "ports.jupyter: 80 is not valid"),
    "up-port-high": Case((*N, "up", "--port", "jupyter=70000"), "ports.jupyter: 70000 is not valid"),
    "up-port-unknown": Case((*N, "up", "--port", "notebook=9000"), "unknown key 'ports.notebook'"),
    "up-port-shape": Case((*N, "up", "--port", "jupyter"), "--port 'jupyter' is not COMPONENT=NUMBER; e.g. --port jupyter=9999"),
    "up-port-twice": Case((*N, "up", "--port", "jupyter={port}", "--port", "registry={port}"), "jupyter and registry are both given port {port}; give each component its own port"),
    "up-port-missing": Case((*N, "up", "--port"), "Option '--port' requires an argument. — see"),
    "up-option-unknown": Case((*N, "up", "--memory", "8g"), "No such option: --memory"),
    "up-engine": Case((*N, "up", "--engine", "podman"), "engine: 'podman' is not valid (allowed: lite, kind or existing)"),
    "up-existing-no-kubeconfig": Case((*N, "up", "--engine", "existing"), "--engine existing needs"),
    "up-kubeconfig-missing": Case((*N, "up", "--engine", "existing", "--kubeconfig", "{tmp}/none"), "kubeconfig '{tmp}/none' does not exist"),
    "up-kubeconfig-bad-yaml": Case((*N, "up", "--engine", "existing", "--kubeconfig", "{kubeconfig_bad_yaml}"), "is not valid YAML at line 2"),
    "up-kubeconfig-text": Case((*N, "up", "--engine", "existing", "--kubeconfig", "{kubeconfig_text}"), "is not a kubeconfig (no clusters: list)"),
    "up-ca-bundle-missing": Case((*N, "up", "--ca-bundle", "{tmp}/none.pem"), "no such file '{tmp}/none.pem'; give a PEM bundle"),
    "up-nodes-zero": Case((*N, "up", "--nodes", "0"), "nodes: 0 is not valid"),
    "up-nodes-many": Case((*N, "up", "--nodes", "99"), "nodes: 99 is not valid"),
    "up-platform": Case((*N, "up", "--platform", "huge"), "platform: 'huge' is not valid (allowed: core or full)"),
    "up-nodes-word": Case((*N, "up", "--nodes", "many"), "Invalid value for '--nodes'"),
    "up-listen-word": Case((*N, "up", "--listen", "everywhere"), "listen: 'everywhere' is not valid (give an IPv4 address of this host, or 0.0.0.0 for all)"),
    "up-listen-not-ours": Case((*N, "up", "--listen", "203.0.113.7"), "listen address: 203.0.113.7 is not an address of this host — give one it has", 3),
    "up-listen-kind": Case((*N, "up", "--engine", "kind", "--listen", "0.0.0.0"), "listen '0.0.0.0' is supported by the lite engine only"),
    # names
    "name-capitals": Case(("--name", "Bad_Name", "up"), "name: 'Bad_Name' is not valid (must be 1-30 characters"),
    "name-long": Case(("--name", "a" * 40, "status"), "is not valid (must be 1-30 characters"),
    "name-digit-first": Case(("--name", "1box", "down"), "name: '1box' is not valid"),
    # config files
    "config-missing": Case(("--config", "{tmp}/none.yaml", "up"), "cannot read config '{tmp}/none.yaml'"),
    "config-memory": Case(("--config", "{memory_yaml}", *N, "up"), "resources.memory: 'lots' is not valid (String should match pattern '^[0-9]+[kmg]$')"),
    "config-cpus": Case(("--config", "{cpus_yaml}", *N, "up"), "resources.cpus: -1 is not valid"),
    "config-unknown": Case(("--config", "{unknown_yaml}", *N, "up"), "unknown key 'memory'; allowed keys here:"),
    "config-list": Case(("--config", "{list_yaml}", *N, "up"), "the top level must be a mapping of keys, not list"),
    "config-not-yaml": Case(("--config", "{notyaml_yaml}", *N, "up"), "not valid YAML"),
    "config-gpu": Case(("--config", "{gpu_yaml}", *N, "doctor"), "gpu: 'maybe' is not valid"),
    "config-components": Case(("--config", "{components_yaml}", *N, "up"), "unknown component 'dashboard'; allowed: jupyter, registry, store"),
    "config-engine": Case(("--config", "{engine_yaml}", *N, "status"), "engine: 'podman' is not valid"),
    # test
    "test-profile": Case((*N, "test", "--profile", "nightly"), "unknown --profile 'nightly'; use quick | core | gpu"),
    "test-profile-full": Case((*N, "test", "--profile", "full"), "unknown --profile 'full'"),
    "test-scenario-unknown": Case((*N, "test", "--scenario", "nosuch"), "unknown scenario 'nosuch' — name a folder or one of: diabetes, digits"),
    "test-scenario-no-yaml": Case((*N, "test", "--scenario", "{scenario_no_yaml}"), "no scenario.yaml in"),
    "test-scenario-broken-yaml": Case((*N, "test", "--scenario", "{scenario_broken_yaml}"), "scenario.yaml is not valid YAML"),
    "test-scenario-unknown-key": Case((*N, "test", "--scenario", "{scenario_unknown_key}"), "unknown key 'train.gpus'"),
    "test-scenario-two-bars": Case((*N, "test", "--scenario", "{scenario_two_bars}"), "needs exactly one of at_least, at_most"),
    "test-scenario-against-goal": Case((*N, "test", "--scenario", "{scenario_against_goal}"), "runs against the goal 'maximize'; use at_least"),
    "test-scenario-missing-file": Case((*N, "test", "--scenario", "{scenario_missing_file}"), "missing file 'model.py'"),
    "test-no-sandbox": Case((*N, "test", "--profile", "quick"), "sandbox 'badin' does not exist — run `kfbox up` (with --name badin)", 3),
    # certify, run
    "certify-profile": Case((*N, "certify", "--profile", "nightly"), "unknown profile 'nightly'; use --profile quick|core|gpu|full|notebook"),
    "certify-out": Case((*N, "certify", "--out", "{afile}/sub"), "--out '{afile}/sub' is not writable"),
    "certify-kubeconfig": Case((*N, "certify", "--kubeconfig", "{tmp}/none"), "--kubeconfig '{tmp}/none' is not a file"),
    "certify-kubeconfig-text": Case((*N, "certify", "--kubeconfig", "{kubeconfig_text}"), "is not a kubeconfig"),
    "certify-scenario": Case((*N, "certify", "--scenario", "nosuch"), "unknown scenario 'nosuch'"),
    "certify-no-sandbox": Case((*N, "certify", "--profile", "quick"), "sandbox 'badin' does not exist — run `kfbox up`", 3),
    "run-profile": Case((*N, "run", "--profile", "nightly", "--no-provision"), "unknown profile 'nightly'"),
    "run-scenario": Case((*N, "run", "--scenario", "nosuch", "--no-provision"), "unknown scenario 'nosuch'"),
    # results
    "results-missing": Case(("results", "{tmp}/none"), "no results bundle at '{tmp}/none'"),
    "results-garbage": Case(("results", "{garbage_tar_gz}"), "corrupt or truncated results bundle archive"),
    "results-mode": Case(("results", "{garbage_tar_gz}", "--mode", "json"), "unknown --mode 'json'; use --mode summary|detailed"),
    # workshop (its own file has the rest: tests/e2e/test_workshop_bad_input.py)
    "workshop-seats-zero": Case((*N, "workshop", "up", "--seats", "0"), "--seats 0: a workshop has 1 to 99 seats — e.g. --seats 3"),
    "workshop-absent": Case((*N, "workshop", "status"), "workshop 'badin' does not exist — bring it up with `kfbox workshop up --seats N` (with --name badin)", 3),
    # other commands
    "bench-runs": Case(("bench", "--train-runs", "-1"), "--train-runs -1 is negative; give 0 or more"),
    "bench-tune-runs": Case(("bench", "--tune-runs", "-2"), "--tune-runs -2 is negative; give 0 or more"),
    "provision-gpu": Case(("provision", "--gpu", "maybe"), "gpu: 'maybe' is not valid"),
    "command-unknown": Case(("frobnicate",), "No such command 'frobnicate'. — see `kfbox --help`"),
    "status-option-unknown": Case((*N, "status", "--verbose"), "No such option: --verbose"),
}  # fmt: skip


def labelled_objects(docker_client) -> set[str]:
    """What the engine holds for the sandbox every case names, and for any `bench` sandbox
    (the one command here that names its own): nothing may appear. (Sparse listings: other
    sandboxes may come and go meanwhile.)"""
    found = set()
    listings = (
        ("container", docker_client.containers.list(ignore_removed=True, all=True, sparse=True,
                                                    filters={"label": LABEL})),
        ("network", docker_client.networks.list(filters={"label": LABEL})),
        ("volume", docker_client.volumes.list(filters={"label": LABEL})),
    )
    for kind, items in listings:
        for item in items:
            sandbox = (item.attrs.get("Labels") or {}).get(LABEL, "")
            if sandbox == NAME or sandbox.startswith("bench-"):
                found.add(f"{kind} {item.id}")
    return found


def state_of(home: Path) -> list[str]:
    """What kfbox wrote under its home, leaving out the shared cache and the lock folder (a
    lock file names a sandbox, it is never its state)."""
    return sorted(str(p.relative_to(home)) for p in home.rglob("*")
                  if p.parts[len(home.parts)] not in ("cache", "locks"))


def test_there_are_forty_bad_inputs_or_more() -> None:
    assert len(CASES) >= 40


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_bad_input_is_one_line_and_leaves_nothing(
    case: Case, docker_client, kfbox_home: Path, tmp_path: Path, capsys, monkeypatch
) -> None:
    monkeypatch.chdir(tmp_path)  # no kfbox.yaml from the developer's folder
    fill = files(tmp_path)
    before, state_before = labelled_objects(docker_client), state_of(kfbox_home)
    with pytest.raises(SystemExit) as done:
        main([arg.format(**fill) for arg in case.argv])
    captured = capsys.readouterr()
    lines = [line for line in captured.err.splitlines() if line.strip()]
    assert len(lines) == 1, captured.err
    assert "Traceback" not in captured.err + captured.out
    assert lines[0].startswith("error: ")
    assert case.says.format(**fill) in lines[0], lines[0]
    assert done.value.code == case.code
    assert labelled_objects(docker_client) == before
    assert state_of(kfbox_home) == state_before, json.dumps(state_of(kfbox_home))
