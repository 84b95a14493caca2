"""The sandbox spec: defaults, file + flag merging, and one clear line for every bad value."""

from __future__ import annotations

from pathlib import Path

import pytest

from kfbox.host.config import load_spec
from kfbox.host.errors import UsageError


def test_defaults_bind_known_ports_and_lite(tmp_path: Path, monkeypatch, kfbox_home) -> None:
    monkeypatch.chdir(tmp_path)
    spec = load_spec()
    assert spec.engine == "lite" and spec.name == "kfbox" and spec.gpu == "auto"
    assert set(spec.components) == {"jupyter", "registry", "store"}


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
        ({"components": ["jupyter", "mlflow"]}, "unknown component 'mlflow'"),
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
