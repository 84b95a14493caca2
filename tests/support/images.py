"""The images every e2e sandbox runs, built on the machine's engine once, before the e2e tests
start in two streams (bin/run-tests): a stream that found one missing would build it beside the
other's build of the same image (and the base image's debootstrap cache with it).

    python -m tests.support.images    build whichever is missing; print each tag
"""

from __future__ import annotations

from kfbox.host import docker_engine
from kfbox.host.images.base import base_tag
from kfbox.host.images.build import ensure_component_image
from kfbox.host.progress import quiet_reporter

COMPONENTS = ("registry", "jupyter", "tracking", "runtime")
"""The images a sandbox runs; with the base (its journeys' and the tests' FROM), what the fault
tests' own engine gets from the machine's."""


def ensure_images() -> list[str]:
    """The base and each component image, built on the machine's engine where missing."""
    machine = docker_engine.connect()
    return [base_tag(), *(ensure_component_image(c, quiet_reporter(), machine)
                          for c in COMPONENTS)]


if __name__ == "__main__":
    for tag in ensure_images():
        print(tag)
