"""A trained model for the serving figures: the digits image built into a bench sandbox, one
short training job, and the model server started from it, as the journey would do."""

from __future__ import annotations

import secrets
from pathlib import Path

from kfbox.engines.platform import BuiltImage, Endpoint, Platform, ServeRequest, TrainJob
from kfbox.scenarios.scenario import Scenario, load_scenario

SCENARIO = "digits"


def built_image(platform: Platform, scenario: Scenario, work: Path) -> BuiltImage:
    """The scenario's image from its notebook's training code, pushed to the sandbox registry."""
    outputs = work / "outputs"  # what the notebook would have written
    outputs.mkdir(parents=True, exist_ok=True)
    for name in scenario.notebook_outputs:
        (outputs / name).write_text(scenario.notebook_file(name))
    context = scenario.build_context(outputs, work / "context")
    return platform.images.build(context, f"kfbox/bench-{scenario.name}",
                                 build_args={"BASE_IMAGE": platform.runtime_image})


def serve_a_model(platform: Platform, work: Path) -> Endpoint:
    """Train the quick variant of digits on one node and serve what it saved."""
    scenario = load_scenario(SCENARIO).for_variant("quick")
    image = built_image(platform, scenario, work)
    key = f"bench/{secrets.token_hex(3)}"
    platform.training.run(TrainJob("bench-serve-model", image.reference,
                                   list(scenario.train.command), dict(scenario.train.args),
                                   model_key=key))
    return platform.serving.deploy(ServeRequest(
        "bench", image.reference, list(scenario.serve.command), scenario.serve.model_name, key))
