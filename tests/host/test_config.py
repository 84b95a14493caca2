"""The sandbox spec: defaults, file + flag merging, and one clear line for every bad value."""

from __future__ import annotations

from pathlib import Path

import pytest

from kfbox.host.config import load_spec, record_spec
from kfbox.host.errors import UsageError

# Tests that need no engine never read or write the user's real kfbox state.
pytestmark = pytest.mark.usefixtures("kfbox_home")


def test_defaults_bind_known_ports_and_lite(tmp_path: Path, monkeypatch, kfbox_home) -> None:
    monkeypatch.chdir(tmp_path)
    spec = load_spec()
    assert spec.engine == "lite" and spec.name == "kfbox" and spec.gpu == "auto"
    assert set(spec.lite.components) == {"jupyter", "registry", "store", "tracking"}
    assert (spec.ports.jupyter, spec.ports.registry, spec.ports.tracking) == (8888, 5000, 5001)


def test_a_spec_recorded_with_the_earlier_default_components_gains_the_tracking_server(
    tmp_path: Path, monkeypatch, kfbox_home
) -> None:
    monkeypatch.chdir(tmp_path)
    record_spec(load_spec(None, {"lite.components": ["jupyter", "registry", "store"]}))
    assert "tracking" in load_spec().lite.components
    # A kfbox.yaml that names the same list is a choice, and it stands.
    (tmp_path / "kfbox.yaml").write_text("lite: {components: [jupyter, registry, store]}\n")
    assert "tracking" not in load_spec().lite.components


def test_flags_override_the_file(tmp_path: Path, kfbox_home) -> None:
    config = tmp_path / "kfbox.yaml"
    config.write_text("name: lab\nports: {jupyter: 9001, registry: 9002}\ngpu: off\n")
    spec = load_spec(config, {"ports.jupyter": 9100, "gpu": None})
    assert (spec.name, spec.ports.jupyter, spec.ports.registry, spec.gpu) == (
        "lab",
        9100,
        9002,
        "off",
    )


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({"gpu": "maybe"}, "gpu: 'maybe' is not valid (allowed: auto, on or off)"),
        ({"ports.jupyter": 80}, "ports.jupyter: 80 is not valid"),
        ({"colour": "blue"}, "unknown key 'colour'; allowed keys here:"),
        ({"ports.ssh": 22}, "unknown key 'ports.ssh'; allowed keys here: jupyter, registry"),
        ({"name": "Has Spaces"}, "name: 'Has Spaces' is not valid"),
        ({"lite.components": ["jupyter", "mlflow"]}, "unknown component 'mlflow'"),
        ({"resources.memory": "lots"}, "resources.memory: 'lots' is not valid"),
        ({"ca_bundle": "/no/such.pem"}, "no such file '/no/such.pem'"),
    ],
)
def test_bad_values_are_one_line_naming_key_and_value(overrides, expected: str) -> None:
    with pytest.raises(UsageError) as caught:
        load_spec(None, overrides)
    line = caught.value.line()
    assert expected in line
    assert "\n" not in line
    assert caught.value.exit_code == 2


def test_a_file_that_is_not_a_mapping(tmp_path: Path) -> None:
    config = tmp_path / "kfbox.yaml"
    config.write_text("- just\n- a list\n")
    with pytest.raises(UsageError, match="top level must be a mapping"):
        load_spec(config)


def test_a_file_that_is_not_yaml(tmp_path: Path) -> None:
    config = tmp_path / "kfbox.yaml"
    config.write_text("name: [unclosed\n")
    with pytest.raises(UsageError, match="not valid YAML"):
        load_spec(config)


def test_unknown_key_in_the_file_names_the_file(tmp_path: Path) -> None:
    config = tmp_path / "kfbox.yaml"
    config.write_text("engine: lite\nportz: {}\n")
    with pytest.raises(UsageError, match=r"kfbox.yaml: unknown key 'portz'"):
        load_spec(config)


def test_a_recorded_spec_is_the_base_that_file_and_flags_override(
    tmp_path: Path, kfbox_home
) -> None:
    from kfbox.host.config import forget_sandbox, record_spec

    record_spec(load_spec(None, {"name": "lab", "ports.jupyter": 9300, "gpu": "off"}))
    again = load_spec(None, {"name": "lab"})
    assert (again.ports.jupyter, again.gpu) == (9300, "off")
    config = tmp_path / "kfbox.yaml"
    config.write_text("name: lab\ngpu: auto\n")
    assert load_spec(config, {"ports.jupyter": 9400}).model_dump()["gpu"] == "auto"
    assert load_spec(config, {"ports.jupyter": 9400}).ports.jupyter == 9400
    forget_sandbox("lab")
    assert load_spec(None, {"name": "lab"}).ports.jupyter == 8888


def test_engine_settings_live_in_their_engine_block(tmp_path: Path, kfbox_home) -> None:
    config = tmp_path / "kfbox.yaml"
    config.write_text("lite: {listen: 0.0.0.0, components: [jupyter]}\n"
                      "kubernetes: {nodes: 3, platform: full}\n")
    spec = load_spec(config, {"kubernetes.trust_on_first_use": True})
    assert (spec.lite.listen, spec.lite.components) == ("0.0.0.0", ["jupyter"])
    assert (spec.kubernetes.nodes, spec.kubernetes.platform) == (3, "full")
    assert spec.kubernetes.trust_on_first_use


def test_old_top_level_keys_load_into_their_block_with_a_notice(
    tmp_path: Path, kfbox_home, capsys
) -> None:
    config = tmp_path / "kfbox.yaml"
    config.write_text("engine: kind\nnodes: 2\nplatform: full\nlisten: 0.0.0.0\n"
                      "kubernetes: {notebook_image: example.invalid/nb:v1}\n")
    spec = load_spec(config)
    assert (spec.kubernetes.nodes, spec.kubernetes.platform) == (2, "full")
    assert spec.kubernetes.notebook_image == "example.invalid/nb:v1"  # the block's own keys stay
    assert spec.lite.listen == "0.0.0.0"
    notices = capsys.readouterr().err.splitlines()
    assert f"{config}: 'nodes' belongs in the 'kubernetes' block now; move it there (the old " \
        "place still works in this release)" in notices
    assert f"{config}: 'listen' belongs in the 'lite' block now; move it there (the old place " \
        "still works in this release)" in notices
    assert len(notices) == 3


def test_a_key_in_both_places_is_one_usage_line(tmp_path: Path, kfbox_home) -> None:
    config = tmp_path / "kfbox.yaml"
    config.write_text("nodes: 2\nkubernetes: {nodes: 3}\n")
    with pytest.raises(UsageError) as caught:
        load_spec(config)
    line = caught.value.line()
    assert line.startswith(f"{config}: 'nodes' is given twice, at the top level and as "
                           "kubernetes.nodes")
    assert "\n" not in line and caught.value.exit_code == 2


def test_a_spec_recorded_by_an_older_kfbox_loads_silently(kfbox_home, capsys) -> None:
    from kfbox.host.statefiles import StateFolder

    old = {"name": "lab", "engine": "kind", "components": ["jupyter", "registry", "store"],
           "gpu": "off", "ports": {"jupyter": 9300, "registry": 9301}, "listen": "127.0.0.1",
           "resources": {"memory": "4g", "cpus": 2.0}, "ca_bundle": None,
           "kubeconfig": None, "nodes": 3, "from_bundle": None, "trust_on_first_use": True,
           "platform": "full", "kubernetes": {"registry": None,
                                              "notebook_image": "example.invalid/nb:v1"}}
    StateFolder("lab").write_json(StateFolder.SPEC, old)
    spec = load_spec(None, {"name": "lab"})
    assert (spec.ports.jupyter, spec.kubernetes.nodes, spec.kubernetes.platform) == (
        9300, 3, "full")
    assert spec.kubernetes.trust_on_first_use
    assert spec.kubernetes.notebook_image == "example.invalid/nb:v1"
    assert capsys.readouterr().err == ""


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("lite: {listen: everywhere}\n", "lite.listen: 'everywhere' is not valid"),
        ("kubernetes: {nodes: 0}\n", "kubernetes.nodes: 0 is not valid"),
        ("kubernetes: {platform: huge}\n",
         "kubernetes.platform: 'huge' is not valid (allowed: core or full)"),
        ("nodes: 9\n", "kubernetes.nodes: 9 is not valid"),
        ("lite: {colour: blue}\n",
         "unknown key 'lite.colour'; allowed keys here: components, docker, listen"),
    ],
)
def test_a_bad_value_in_a_block_names_block_and_key(
    tmp_path: Path, kfbox_home, text: str, expected: str
) -> None:
    config = tmp_path / "kfbox.yaml"
    config.write_text(text)
    with pytest.raises(UsageError) as caught:
        load_spec(config)
    assert expected in caught.value.line() and "\n" not in caught.value.line()
