"""A scenario that brings its own pipeline: a copy of digits with a pipeline.py of one task
that writes a model and reports its metrics (compiled in tests/harness, run for real on a
sandbox in tests/e2e)."""

from __future__ import annotations

import shutil
from pathlib import Path

import yaml

from kfbox.scenarios.scenario import SCENARIOS_DIR

OWN_PIPELINE = '''
from typing import NamedTuple

from kfp import dsl


class Outputs(NamedTuple):
    model: dsl.Model
    picked: dict


def journey_pipeline(image):
    @dsl.component(base_image=IMAGE_OF_TRAIN, install_kfp_package=False)
    def train(model: dsl.Output[dsl.Model]) -> dict:
        with open(model.path, "w") as weights:
            weights.write("weights")
        return {"metrics": {"accuracy": 0.97}, "args": {}}

    @dsl.pipeline(name="own")
    def own() -> Outputs:
        trained = train()
        SETTINGS
        return Outputs(model=trained.outputs["model"], picked=trained.outputs["Output"])

    return own
'''


def own_pipeline(tmp_path: Path, image: str = "image", settings: str = "",
                 text: str | None = None) -> Path:
    """A copy of digits that brings its own pipeline.py (written from OWN_PIPELINE)."""
    folder = tmp_path / "own"
    shutil.copytree(SCENARIOS_DIR / "digits", folder,
                    ignore=shutil.ignore_patterns("__pycache__"))
    (folder / "pipeline.py").write_text(text if text is not None else OWN_PIPELINE.replace(
        "IMAGE_OF_TRAIN", image).replace("SETTINGS", settings or "pass"))
    data = yaml.safe_load((folder / "scenario.yaml").read_text())
    data.update(name="own", pipeline="pipeline.py")
    (folder / "scenario.yaml").write_text(yaml.safe_dump(data))
    return folder
