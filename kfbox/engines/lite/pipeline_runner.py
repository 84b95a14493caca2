"""Runs one compiled pipeline with kfp.local's DockerRunner, in a process of its own (`python -m
kfbox.engines.lite.pipeline_runner REQUEST.json`): kfp's local configuration is process-wide and
its Docker client reads DOCKER_HOST. kfp.local logs each task's start and end on stdout; the
pipeline's outputs, or why it could not run, go to the request's `result` file. A program, never
imported: it skips the optional imports kfbox's programs skip before kfp loads the Kubernetes
client."""

from __future__ import annotations

import contextlib
import json
import logging
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from kfbox.host.imports import skip_unused_optional_imports

skip_unused_optional_imports()

import docker  # noqa: E402
from docker.errors import APIError, ImageNotFound, NotFound  # noqa: E402
from kfp import components, local  # noqa: E402
from kfp.local import docker_task_handler, logging_utils  # noqa: E402


@contextlib.contextmanager
def _logging_as_it_is() -> Iterator[None]:
    yield


def log_every_task() -> None:
    """kfp 2.17.3 kfp/local/logging_utils.py: `local_logger_context()` puts its own handler on
    the root logger for each task and takes every handler off when the task ends; ParallelFor
    runs iterations in threads, so one ending silences a sibling and its "finished" line is lost.
    The runner installs kfp's own format once, for the whole process, and leaves it there."""
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(logging_utils.MillisecondFormatter(
        fmt="%(asctime)s - %(levelname)s - %(message)s", datefmt="%H:%M:%S.%f"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.INFO)
    logging_utils.local_logger_context = _logging_as_it_is


def run_task_container(client: docker.DockerClient, image: str, command: list[str],
                       volumes: dict[str, Any], **run_args: Any) -> int:
    """One task's container, run to its end: its output streamed, its exit code read, then the
    container removed. kubeflow/pipelines#13332 (open at kfp 2.17.3,
    kfp/local/docker_task_handler.py `run_docker_container`): DockerRunner starts each task with
    auto_remove=True and reads the exit code afterwards, so a task that fails fast is already
    gone and counts as a success."""
    try:
        client.images.get(image)
    except ImageNotFound:  # kfp pulls what the engine lacks: here, from the sandbox registry
        print(f"Pulling image {image!r}", flush=True)
        client.images.pull(image)
    container = client.containers.run(image=image, command=command, volumes=volumes,
                                      detach=True, **run_args)
    try:
        for chunk in container.logs(stream=True, follow=True):
            print(chunk.decode(errors="replace"), end="", flush=True)
        return int(container.wait()["StatusCode"])
    finally:
        with contextlib.suppress(NotFound, APIError):  # gone already: nothing to remove
            container.remove(force=True)


def describe(value: Any) -> Any:
    """A pipeline output as JSON: an artifact by its local path, a parameter as it is."""
    path = getattr(value, "path", None)
    return {"path": path, "metadata": getattr(value, "metadata", {})} if path else value


def main(request_file: str) -> int:
    request = json.loads(Path(request_file).read_text())
    log_every_task()
    docker_task_handler.run_docker_container = run_task_container
    local.init(runner=local.DockerRunner(**request["container"]),
               pipeline_root=request["pipeline_root"], raise_on_error=False)
    pipeline = components.load_component_from_file(request["package"])
    result: dict[str, Any] = {"outputs": {}, "error": ""}
    try:
        run = pipeline()
        result["outputs"] = {name: describe(value) for name, value in run.outputs.items()}
    except Exception as exc:  # the orchestrator's own failure: reported, not a traceback
        result["error"] = f"{type(exc).__name__}: {exc}".splitlines()[0]
    Path(request["result"]).write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
