"""Load and validate a scenario folder (scenario.yaml and the files it names) into a Scenario.

A scenario is a folder under kfbox/scenarios/ holding scenario.yaml; adding a folder adds a
scenario, with no code change. Every problem is reported as one line naming the scenario. The
format is documented in docs/scenarios.md; files in the first format (`thresholds:`) still load.
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
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    field_validator,
    model_validator,
)

from kfbox.engines import platform
from kfbox.host.config import deep_merge
from kfbox.host.errors import UsageError

SCENARIOS_DIR = Path(__file__).parent
SCENARIO_FILE = "scenario.yaml"
FORMAT_DOC = "docs/scenarios.md"
Variant = Literal["quick", "core", "gpu"]
VARIANTS: tuple[Variant, ...] = ("quick", "core", "gpu")
"""The ways a journey runs a scenario: quick (minimal trials), core (as written, on CPU), gpu
(with GPU requests). A conformance profile says which variants it needs."""
OVERRIDE_KEYS: tuple[Variant, ...] = ("quick", "gpu")
"""Top-level blocks overriding the rest for a variant; core runs the file as written."""
CHECKED_STEPS = ("notebook", "train", "tune", "serve")
"""The steps a scenario states conditions for (build has no metric to judge)."""


class _Strict(BaseModel):
    # Numbers in YAML (epochs: 20) are accepted where the platform wants strings (--epochs=20).
    model_config = ConfigDict(extra="forbid", frozen=True, coerce_numbers_to_str=True)


class TrainSpec(_Strict):
    command: list[str] = Field(min_length=1)
    nodes: int = Field(ge=1)
    args: dict[str, str] = Field(default_factory=dict)
    """Hyperparameters, passed as --key=value."""
    timeout_s: float = Field(default=600, gt=0)
    """The longest a training job (the train step's, and each trial's) may run: one still
    running then is stopped, removed, and reported with its last output."""


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

    def experiment(self, name: str, trial: platform.TrainJob) -> platform.Experiment:
        """This search as the platform's experiment, each trial a copy of `trial`."""
        return platform.Experiment(
            name=name, trial=trial, parameters=self.platform_parameters(),
            objective=self.objective, goal=self.goal, algorithm=self.algorithm,
            max_trials=self.max_trials, parallel_trials=self.parallel_trials,
        )


class ServeSpec(_Strict):
    command: list[str] = Field(min_length=1)
    model_name: str
    answers: Literal["labels", "numbers"] = "labels"
    """How served answers are compared with the model evaluated locally: `labels` must be
    equal, `numbers` may differ by at most `tolerance`."""
    tolerance: float | None = Field(default=None, ge=0)

    @model_validator(mode="after")
    def _tolerance(self) -> ServeSpec:
        if self.answers == "numbers" and self.tolerance is None:
            raise ValueError("answers: numbers needs a tolerance (the largest difference allowed)")
        if self.answers == "labels" and self.tolerance is not None:
            raise ValueError("a tolerance applies to answers: numbers only; labels must be equal")
        return self


class ReproduceSpec(_Strict):
    """What `kfbox reproduce` compares when it trains the served model again from its lineage."""

    metrics: list[str] = Field(default_factory=list)
    """The metrics that must match; empty: the tuning objective."""
    tolerance: float = Field(default=0.0, ge=0)
    """The largest difference allowed for each (0: the same value, as a seeded job on the same
    image and hardware gives)."""


class Condition(_Strict):
    """A condition on one named metric, with its direction: `at_least` or `at_most` a bar."""

    metric: str = Field(min_length=1)
    at_least: float | None = None
    at_most: float | None = None

    @model_validator(mode="after")
    def _one_bar(self) -> Condition:
        if (self.at_least is None) == (self.at_most is None):
            raise ValueError(
                f"the condition on '{self.metric}' needs exactly one of at_least, at_most"
            )
        return self

    @property
    def goal(self) -> Literal["maximize", "minimize"]:
        return "maximize" if self.at_least is not None else "minimize"

    def holds(self, value: float) -> bool:
        if self.at_least is not None:
            return value >= self.at_least
        return value <= self.at_most  # type: ignore[operator]  # one of the two is set

    def __str__(self) -> str:
        if self.at_least is not None:
            return f"{self.metric} >= {self.at_least:g}"
        return f"{self.metric} <= {self.at_most:g}"


def _one_or_more(value: Any) -> Any:
    return [value] if isinstance(value, dict) else value


class Checks(_Strict):
    """What each step's result must meet; every step with a metric has at least one condition."""

    notebook: list[Condition] = Field(min_length=1)
    """On the `name=value` lines the notebook prints (its baseline)."""
    train: list[Condition] = Field(min_length=1)
    """On the `name=value` lines the training job prints (its last value of each)."""
    tune: list[Condition] = Field(min_length=1)
    """On the best trial's metrics; one of them is the tuning objective, in the goal's direction."""
    serve: list[Condition] = Field(min_length=1)
    """On the served answers scored against the held-out truth (see docs/scenarios.md)."""

    @field_validator("notebook", "train", "tune", "serve", mode="before")
    @classmethod
    def _listed(cls, value: Any) -> Any:
        return _one_or_more(value)


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
    pipeline: str | None = None
    """Python file with journey_pipeline(image): the scenario's own journey pipeline (KFP);
    without it kfbox derives one from this file (kfbox/harness/pipeline.py)."""
    train: TrainSpec
    tune: TuneSpec
    serve: ServeSpec
    checks: Checks
    reproduce: ReproduceSpec = Field(default_factory=ReproduceSpec)
    quick: dict[str, Any] | None = None
    gpu: dict[str, Any] | None = None

    _root: Path = PrivateAttr()
    _raw: dict[str, Any] = PrivateAttr()
    _variant: Variant = PrivateAttr(default="core")

    @model_validator(mode="after")
    def _objective_is_checked(self) -> Scenario:
        """The best trial is judged on the tuning objective, in the direction of its goal."""
        tune = self.tune
        on_objective = [c for c in self.checks.tune if c.metric == tune.objective]
        if not on_objective:
            raise ValueError(f"checks.tune has no condition on the objective '{tune.objective}'")
        wrong = [c for c in on_objective if c.goal != tune.goal]
        if wrong:
            bar = "at_most" if tune.goal == "minimize" else "at_least"
            raise ValueError(
                f"checks.tune: '{wrong[0]}' runs against the goal '{tune.goal}'; use {bar}"
            )
        return self

    @property
    def root(self) -> Path:
        return self._root

    @property
    def variant(self) -> Variant:
        return self._variant

    def for_variant(self, variant: Variant) -> Scenario:
        """This scenario with the variant's override block merged in (core: unchanged)."""
        if variant not in VARIANTS:
            raise UsageError(f"scenario {self.name}: unknown variant '{variant}'")
        base = {k: v for k, v in self._raw.items() if k not in OVERRIDE_KEYS}
        overrides = self._raw.get(variant) if variant in OVERRIDE_KEYS else None
        merged = deep_merge(base, overrides or {})
        scenario = _validate(merged, self._root, f"scenario {self.name}: {variant}")
        scenario._variant = variant
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
    label = f"scenario {raw.get('name') or root.name}"
    scenario = _validate(_from_first_format(raw, label), root, label)
    if scenario.name != root.name:
        raise UsageError(
            f"scenario {scenario.name}: its folder is named '{root.name}'",
            fix="name the folder after the scenario",
        )
    _check_files(scenario)
    _check_world_size(scenario, first_format="thresholds" in raw)
    for variant in OVERRIDE_KEYS:  # a broken override must fail now, not mid-journey
        scenario.for_variant(variant)
    return scenario


FIRST_FORMAT = {
    "baseline_accuracy": ("notebook", "baseline_accuracy"),
    "train_accuracy": ("train", "accuracy"),
    "tune_accuracy": ("tune", None),  # the tuning objective, whatever its name
    "serve_accuracy": ("serve", "accuracy"),
}
"""The first format's `thresholds:` keys: the step each one judged and the metric it read."""


def _from_first_format(raw: dict[str, Any], label: str) -> dict[str, Any]:
    """A scenario.yaml in the first format (`thresholds:`, every bar an 'at least') as `checks:`.
    It only ever judged classification: a minimizing objective cannot be read from it."""
    if "thresholds" not in raw:
        return raw
    thresholds = raw["thresholds"]
    rewrite = f"rewrite 'thresholds:' as 'checks:' ({FORMAT_DOC})"
    if "checks" in raw:
        raise UsageError(f"{label}: has both 'thresholds' and 'checks'", fix=rewrite)
    if not isinstance(thresholds, dict):
        raise UsageError(f"{label}: 'thresholds' must be a mapping", fix=rewrite)
    unknown = sorted(set(thresholds) - set(FIRST_FORMAT))
    if unknown:
        raise UsageError(f"{label}: unknown threshold '{unknown[0]}'", fix=rewrite)
    missing = [key for key in FIRST_FORMAT if key not in thresholds]
    if missing:
        raise UsageError(f"{label}: missing threshold '{missing[0]}'", fix=rewrite)
    tune = raw.get("tune") if isinstance(raw.get("tune"), dict) else {}
    if tune.get("goal") == "minimize":
        raise UsageError(
            f"{label}: 'thresholds' are 'at least' bars, but tune.goal is minimize", fix=rewrite
        )
    checks: dict[str, Any] = {}
    for key, (step, metric) in FIRST_FORMAT.items():
        checks[step] = {"metric": metric or tune.get("objective"), "at_least": thresholds[key]}
    return {**{k: v for k, v in raw.items() if k != "thresholds"}, "checks": checks}


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
        return f"missing key '{where}'"
    if error["type"] == "extra_forbidden":
        return f"unknown key '{where}'"
    message = error["msg"].removeprefix("Value error, ")
    return f"'{where}': {message}" if where else message


def _check_files(scenario: Scenario) -> None:
    named = [scenario.notebook, scenario.dockerfile, scenario.reference, *scenario.build_files,
             *([scenario.pipeline] if scenario.pipeline else [])]
    for name in named:
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


def _check_world_size(scenario: Scenario, *, first_format: bool) -> None:
    """The train step checks the `world_size=N` line the training script prints (the proof that
    its nodes train as one process group), a contract the first format (`thresholds:`) never
    had: a script that never mentions world_size is refused now, not after its job ran."""
    script = Path(scenario.train.command[-1]).name
    try:
        code = scenario.training_code()
    except UsageError:
        return  # the notebook writes it some other way: only its job's output can tell
    if "world_size" in code:
        return
    since = " (a contract added after the first format, 'thresholds:')" if first_format else ""
    raise UsageError(
        f"scenario {scenario.name}: {script} (the notebook's '%%writefile {script}' cell) never "
        f"prints the world_size=N line the train step checks{since}",
        fix="have rank 0 print it once after init_process_group, e.g. "
        'print(f"world_size={torch.distributed.get_world_size()}")',
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
