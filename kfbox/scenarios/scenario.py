"""Load and validate a scenario folder (scenario.yaml and the files it names) into a Scenario.

A scenario is a folder under kfbox/scenarios/ holding scenario.yaml; adding a folder adds a
scenario, with no code change. Every problem is reported as one line naming the scenario.
"""

from __future__ import annotations

import importlib.util
import json
import shlex
import shutil
from pathlib import Path
from types import ModuleType
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, model_validator

from kfbox.sandbox import platform
from kfbox.sandbox.config import deep_merge
from kfbox.sandbox.errors import UsageError

SCENARIOS_DIR = Path(__file__).parent
SCENARIO_FILE = "scenario.yaml"
Profile = Literal["quick", "core", "gpu"]
OVERRIDE_KEYS = ("quick", "gpu")
"""Top-level blocks overriding the rest for a profile; core runs the file as written."""


class _Strict(BaseModel):
    # Numbers in YAML (epochs: 20) are accepted where the platform wants strings (--epochs=20).
    model_config = ConfigDict(extra="forbid", frozen=True, coerce_numbers_to_str=True)


class TrainSpec(_Strict):
    command: list[str] = Field(min_length=1)
    nodes: int = Field(ge=1)
    args: dict[str, str] = Field(default_factory=dict)
    """Hyperparameters, passed as --key=value."""


class ParameterSpec(_Strict):
    name: str
    type: Literal["double", "int", "categorical"]
    min: float | None = None
    max: float | None = None
    values: list[str] = Field(default_factory=list)
    log: bool = False

    @model_validator(mode="after")
    def _bounds(self) -> ParameterSpec:
        if self.type == "categorical":
            if not self.values:
                raise ValueError(f"categorical parameter '{self.name}' needs values")
        elif self.min is None or self.max is None or self.min >= self.max:
            raise ValueError(f"parameter '{self.name}' needs min < max")
        return self

    def to_platform(self) -> platform.Parameter:
        return platform.Parameter(**self.model_dump())


class TuneSpec(_Strict):
    algorithm: Literal["tpe", "random"]
    objective: str
    goal: Literal["maximize", "minimize"]
    max_trials: int = Field(ge=1)
    parallel_trials: int = Field(ge=1)
    parameters: list[ParameterSpec] = Field(min_length=1)

    def platform_parameters(self) -> list[platform.Parameter]:
        return [p.to_platform() for p in self.parameters]


class ServeSpec(_Strict):
    command: list[str] = Field(min_length=1)
    model_name: str


class Thresholds(_Strict):
    """Held-out accuracy each step must reach (0..1)."""

    baseline_accuracy: float = Field(ge=0, le=1)
    train_accuracy: float = Field(ge=0, le=1)
    tune_accuracy: float = Field(ge=0, le=1)
    serve_accuracy: float = Field(ge=0, le=1)


class Scenario(_Strict):
    name: str
    description: str
    notebook: str
    notebook_outputs: list[str] = Field(min_length=1)
    """Files the notebook writes into its working directory; they go into the build context."""
    dockerfile: str
    build_files: list[str] = Field(default_factory=list)
    """Scenario files copied into the build context beside the notebook outputs."""
    reference: str
    """Python file with held_out() and predict(model_dir, X): the model evaluated locally."""
    train: TrainSpec
    tune: TuneSpec
    serve: ServeSpec
    thresholds: Thresholds
    quick: dict[str, Any] | None = None
    gpu: dict[str, Any] | None = None

    _root: Path = PrivateAttr()
    _raw: dict[str, Any] = PrivateAttr()
    _profile: str = PrivateAttr(default="core")

    @property
    def root(self) -> Path:
        return self._root

    @property
    def profile(self) -> str:
        return self._profile

    def for_profile(self, profile: Profile) -> Scenario:
        """This scenario with the profile's override block merged in (core: unchanged)."""
        if profile not in ("quick", "core", "gpu"):
            raise UsageError(f"scenario {self.name}: unknown profile '{profile}'")
        base = {k: v for k, v in self._raw.items() if k not in OVERRIDE_KEYS}
        overrides = self._raw.get(profile) if profile in OVERRIDE_KEYS else None
        merged = deep_merge(base, overrides or {})
        scenario = _validate(merged, self._root, f"scenario {self.name}: {profile}")
        scenario._profile = profile
        return scenario

    def path(self, file: str) -> Path:
        return self._root / file

    def training_code(self) -> str:
        """The source the notebook writes to the training entry point (train.py), read from the
        notebook's `%%writefile` cell, so it can be run and tested without Jupyter."""
        return self.notebook_file(Path(self.train.command[-1]).name)

    def notebook_file(self, name: str) -> str:
        """The body of the notebook's `%%writefile <name>` cell, as the magic writes it."""
        for cell in _read_notebook(self.path(self.notebook), self.name)["cells"]:
            source = cell["source"]
            text = "".join(source) if isinstance(source, list) else source
            first, _, body = text.partition("\n")
            if cell["cell_type"] == "code" and first.split() == ["%%writefile", name]:
                return body.rstrip("\n") + "\n"
        raise UsageError(f"scenario {self.name}: {self.notebook} has no '%%writefile {name}' cell")

    def reference_module(self) -> ModuleType:
        """The scenario's reference.py, imported from its folder (it is data, not a package)."""
        spec = importlib.util.spec_from_file_location(
            f"kfbox_scenario_{self.name}_reference", self.path(self.reference)
        )
        assert spec and spec.loader  # the file's existence was checked at load
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module

    def build_context(self, notebook_outputs_dir: Path, dest: Path) -> Path:
        """Assemble the image build context in `dest`: the notebook's outputs fetched into
        `notebook_outputs_dir`, the build files and the Dockerfile (as `Dockerfile`)."""
        dest.mkdir(parents=True, exist_ok=True)
        for name in self.notebook_outputs:
            produced = notebook_outputs_dir / name
            if not produced.is_file():
                raise UsageError(f"scenario {self.name}: the notebook did not write '{name}'")
            shutil.copy2(produced, dest / name)
        for name in self.build_files:
            shutil.copy2(self.path(name), dest / name)
        shutil.copy2(self.path(self.dockerfile), dest / "Dockerfile")
        return dest


def list_scenarios() -> list[str]:
    """Names of the scenario folders shipped with kfbox (each holds a scenario.yaml)."""
    return sorted(p.parent.name for p in SCENARIOS_DIR.glob(f"*/{SCENARIO_FILE}"))


def load_scenario(path_or_name: str | Path) -> Scenario:
    """The scenario in folder `path_or_name`, or the shipped scenario of that name, validated."""
    candidate = Path(path_or_name)
    if candidate.is_dir():
        root = candidate.resolve()
    elif str(path_or_name) in list_scenarios():
        root = SCENARIOS_DIR / str(path_or_name)
    else:
        raise UsageError(
            f"unknown scenario '{path_or_name}'",
            fix=f"name a folder or one of: {', '.join(list_scenarios()) or 'none'}",
        )
    file = root / SCENARIO_FILE
    if not file.is_file():
        raise UsageError(f"scenario '{root.name}': no {SCENARIO_FILE} in {root}")
    try:
        raw = yaml.safe_load(file.read_text())
    except yaml.YAMLError as e:
        raise UsageError(
            f"scenario '{root.name}': {SCENARIO_FILE} is not valid YAML: {' '.join(str(e).split())}"
        ) from e
    if not isinstance(raw, dict):
        raise UsageError(f"scenario '{root.name}': {SCENARIO_FILE} must be a mapping")
    scenario = _validate(raw, root, f"scenario {raw.get('name') or root.name}")
    if scenario.name != root.name:
        raise UsageError(
            f"scenario {scenario.name}: its folder is named '{root.name}'",
            fix="name the folder after the scenario",
        )
    _check_files(scenario)
    for profile in OVERRIDE_KEYS:  # a broken override must fail now, not mid-journey
        scenario.for_profile(profile)
    return scenario


def _validate(raw: dict[str, Any], root: Path, label: str) -> Scenario:
    try:
        scenario = Scenario.model_validate(raw)
    except ValidationError as e:
        errors = e.errors()
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        raise UsageError(f"{label}: {_describe(errors[0])}{more}") from None
    scenario._root = root
    scenario._raw = raw
    return scenario


def _describe(error: Any) -> str:
    where = ".".join(str(part) for part in error["loc"])
    if error["type"] == "missing":
        if error["loc"][0] == "thresholds" and len(error["loc"]) == 2:
            return f"missing threshold '{error['loc'][1]}'"
        return f"missing key '{where}'"
    if error["type"] == "extra_forbidden":
        return f"unknown key '{where}'"
    message = error["msg"].removeprefix("Value error, ")
    return f"'{where}': {message}" if where else message


def _check_files(scenario: Scenario) -> None:
    for name in [scenario.notebook, scenario.dockerfile, scenario.reference, *scenario.build_files]:
        if not scenario.path(name).is_file():
            raise UsageError(f"scenario {scenario.name}: missing file '{name}'")
    _read_notebook(scenario.path(scenario.notebook), scenario.name)
    # The build context holds only the notebook outputs and build files: a COPY of anything
    # else would fail at build time, far from its cause.
    allowed = set(scenario.notebook_outputs) | set(scenario.build_files)
    for source in _copy_sources(scenario.path(scenario.dockerfile).read_text()):
        if source not in allowed:
            raise UsageError(
                f"scenario {scenario.name}: {scenario.dockerfile} copies '{source}', which is "
                "neither a notebook output nor a build file"
            )


def _copy_sources(dockerfile: str) -> list[str]:
    """Build-context files named by COPY/ADD lines (multi-stage `--from=` copies excluded)."""
    sources: list[str] = []
    for line in dockerfile.splitlines():
        words = line.strip().split(maxsplit=1)
        if len(words) < 2 or words[0].upper() not in ("COPY", "ADD"):
            continue
        rest = words[1].strip()
        args = json.loads(rest) if rest.startswith("[") else shlex.split(rest)
        if any(a.startswith("--from=") for a in args):
            continue
        sources += [a for a in args if not a.startswith("--")][:-1]
    return sources


def _read_notebook(path: Path, scenario: str) -> dict[str, Any]:
    try:
        notebook = json.loads(path.read_text())
    except ValueError:
        notebook = None
    if not isinstance(notebook, dict) or not isinstance(notebook.get("cells"), list):
        raise UsageError(f"scenario {scenario}: {path.name} is not a Jupyter notebook")
    return notebook
