"""Conformance profiles: which journeys (scenario variants) each runs, and so which requirements
it proves. A profile is chosen with `kfbox certify --profile`; the verdict is `verdict.py`'s."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from kfbox.harness.requirements import (
    COMPONENTS,
    NOTEBOOK_WORK,
    REQUIREMENTS,
    Requirement,
    steps_for,
)
from kfbox.host.errors import UsageError

if TYPE_CHECKING:
    # A type only: the scenario loader is pydantic and YAML, and `kfbox --help` names the
    # profiles.
    from kfbox.scenarios.scenario import Variant


@dataclass(frozen=True)
class Profile:
    name: str
    description: str
    variants: tuple[Variant, ...]
    """The journeys it runs, one per scenario variant (quick, core, gpu)."""
    components: bool = False
    """Whether it runs the component tests (the platform.* requirements)."""
    notebook_work: bool = False
    """Whether it runs a person's work from the notebook (the person.* requirements: the
    tutorials the engine offers, in the sandbox's kernel)."""
    includes: tuple[str, ...] = ()
    """Profiles this one covers; their verdicts are reported alongside."""

    @property
    def pytest_markers(self) -> str:
        """The `pytest -m` expression selecting its tests: one marker per variant (the journey
        tests carry their variant's), plus `components`."""
        return " or ".join([*self.variants, *([COMPONENTS] if self.components else []),
                            *([NOTEBOOK_WORK] if self.notebook_work else [])])

    def journey(self) -> Profile:
        """This profile's journeys alone, without a person's notebook work (`kfbox test`)."""
        return replace(self, notebook_work=False)

    @property
    def needs_gpu(self) -> bool:
        return "gpu" in self.variants

    def requirements(self) -> list[tuple[Requirement, str]]:
        """(requirement, where it is checked: a variant's journey or COMPONENTS), in order."""
        pairs = [
            (requirement, variant)
            for variant in self.variants
            for step in steps_for(variant)
            for requirement in REQUIREMENTS.values()
            if requirement.where == step and (variant == "gpu" or not requirement.gpu_only)
        ]
        for where, wanted in ((COMPONENTS, self.components),
                              (NOTEBOOK_WORK, self.notebook_work)):
            if wanted:
                pairs += [(r, where) for r in REQUIREMENTS.values() if r.where == where]
        return pairs


PROFILES: dict[str, Profile] = {
    profile.name: profile
    for profile in (
        Profile("quick", "one CPU journey with minimal trials", ("quick",)),
        Profile("core", "the full CPU journey, and a person's work from the notebook",
                ("core",), notebook_work=True),
        Profile("gpu", "the journey with GPU requests", ("gpu",)),
        Profile("full", "core + gpu + the platform's own requirements", ("core", "gpu"),
                components=True, notebook_work=True, includes=("core", "gpu")),
        Profile("notebook", "a person's work from the notebook: train, tune and serve from a "
                "cell, behind the sandbox's boundary", (), notebook_work=True),
    )
}  # fmt: skip

JOURNEY_PROFILES: tuple[str, ...] = tuple(
    name for name, profile in PROFILES.items()
    if not profile.components and len(profile.variants) == 1
)
"""Profiles that are one journey each (quick, core, gpu): what `kfbox test` runs (the journey
only: a person's notebook work is certify's, see `Profile.journey`)."""


def get_profile(name: str) -> Profile:
    """The named profile; a UsageError (exit 2) naming the allowed ones otherwise."""
    try:
        return PROFILES[name]
    except KeyError:
        allowed = "|".join(PROFILES)
        raise UsageError(f"unknown profile {name!r}; use --profile {allowed}") from None
