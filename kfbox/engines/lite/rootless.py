"""A lite sandbox in its own rootless Docker engine (`lite.docker: rootless`): the engine's limits,
the images copied in from the host's Docker engine, and what the notebook gets to start
workloads from a cell: the engine's socket, and a home at the same path on both sides."""

from __future__ import annotations

import os
from pathlib import Path

import docker
from docker.errors import ImageNotFound

from kfbox.engines.base import BoundaryProbe
from kfbox.engines.lite.runtime_file import write_runtime
from kfbox.engines.tutorials import RUNTIME_IMAGE_ENV
from kfbox.host.config import Resources, SandboxSpec
from kfbox.host.progress import Reporter
from kfbox.host.rootless_docker import (
    RootlessDocker,
    ensure_rootless_docker,
    load_images,
    parse_memory,
)

ENGINE_SOCKET = "/run/kfbox/engine.sock"
"""Where the notebook finds the engine's socket (DOCKER_HOST names it: docker-py, the Kubeflow
SDK's Docker adapter and kfp's DockerRunner all read that variable)."""
WORKLOADS_AT_ONCE = 4
"""The most of the spec's per-container limits the sandbox runs at once (the notebook server,
and two trials of two nodes, or a job and a model server): the engine's cgroup holds them all.
A rootless engine on a host without cgroup delegation enforces no per-container limit (its
cgroup driver is `none`), so the sandbox's total is what holds (docs/security.md)."""
TUTORIALS = Path(__file__).parent / "tutorials"
"""Notebooks a person follows to use the sandbox from a cell; `up` offers them in the notebook
server's `tutorials/` folder."""
BOUNDARY = BoundaryProbe(
    source="""import os
sockets = [p for p in ("/var/run/docker.sock", "/run/docker.sock") if os.path.exists(p)]
print(f"host_engine_sockets={len(sockets)}")
host = os.environ.get("DOCKER_HOST", "")
print(f"own_engine={int(host.startswith('unix://') and os.path.exists(host[7:]))}")
first = open("/proc/self/uid_map").read().split()
print(f"root_is_host_root={int(first[:2] == ['0', '0'])}")
""",
    prints=[{"metric": "host_engine_sockets", "at_most": 0},
            {"metric": "own_engine", "at_least": 1},
            {"metric": "root_is_host_root", "at_most": 0}])
"""The rootless sandbox's boundary from its kernel: which engine sockets the kernel holds (its
own only: DOCKER_HOST names it), and whom its root is on the host (a user namespace maps it to an
unprivileged uid; none leaves it the host's uid 0). The escape table itself runs in the suite
(tests/e2e/test_journey_lite.py)."""
NOTEBOOK_HOME = "notebook"
"""The notebook's HOME, inside the engine user's home: the Kubeflow SDK's container backend and
kfp bind folders under HOME into the workloads they start, and the engine resolves a bind's
source on the host, so the notebook sees that folder at the same absolute path."""


def sandbox_limits(resources: Resources) -> dict[str, float | str]:
    """The engine's cgroup limits: room for WORKLOADS_AT_ONCE containers of the spec's size,
    never more CPUs than the host has."""
    memory = parse_memory(resources.memory) * WORKLOADS_AT_ONCE
    cpus = min(resources.cpus * WORKLOADS_AT_ONCE, float(os.cpu_count() or 1))
    return {"memory": str(memory), "cpus": cpus}


def ensure_engine(spec: SandboxSpec, reporter: Reporter) -> RootlessDocker:
    with reporter.step(f"Rootless Docker engine for sandbox {spec.name!r}",
                       action="rootless-docker") as update:
        limits = sandbox_limits(spec.resources)
        engine = ensure_rootless_docker(spec.name, memory=str(limits["memory"]),
                                        cpus=float(limits["cpus"]))
        update(f"user {engine.user}, socket {engine.socket}")
    return engine


def copy_images(engine: RootlessDocker, host: docker.DockerClient, tags: list[str],
                reporter: Reporter) -> None:
    """Load into the sandbox's engine each image it lacks (by id, so a rebuilt tag is copied
    again); images are built on the host's Docker engine, once for every sandbox."""
    client = engine.client()
    missing = []
    for tag in tags:
        try:
            if client.images.get(tag).id == host.images.get(tag).id:
                continue
        except ImageNotFound:
            pass
        missing.append(tag)
    if missing:
        with reporter.step(f"Copying {len(missing)} image(s) into the sandbox's engine",
                           action="images:rootless") as update:
            update(", ".join(missing))
            load_images(engine, host, missing)


def notebook_home(engine: RootlessDocker) -> Path:
    return engine.home / NOTEBOOK_HOME


def prepare_notebook_home(engine: RootlessDocker, runtime_image: str) -> Path:
    """The notebook's home, the engine user's (0700), with the training runtime the Kubeflow
    SDK's container backend reads (`.kfbox/runtimes`, named in the tutorials)."""
    home = notebook_home(engine)
    runtimes = home / ".kfbox" / "runtimes"
    write_runtime(runtimes, runtime_image)
    for path in (home, home / ".kfbox", runtimes, *runtimes.iterdir()):
        os.chown(path, engine.uid, engine.gid)
    home.chmod(0o700)
    return home


def jupyter_settings(engine: RootlessDocker, network: str, registry: str,
                     runtime_image: str) -> dict:
    """What the notebook server's container gets in a rootless sandbox: the engine's socket, its
    home at the same path, container root (the engine's user on the host: the socket is that
    user's, 0660), and where the sandbox's network, registry and ML runtime image are, which a
    model server, an image push or a pipeline's components need (the tutorials read them from
    the environment)."""
    home = str(notebook_home(engine))
    return {
        "volumes": {
            str(engine.socket): {"bind": ENGINE_SOCKET, "mode": "rw"},
            home: {"bind": home, "mode": "rw"},
        },
        "environment": {"DOCKER_HOST": f"unix://{ENGINE_SOCKET}", "HOME": home,
                        "KFBOX_NETWORK": network, "KFBOX_REGISTRY": registry,
                        RUNTIME_IMAGE_ENV: runtime_image},
        "user": "root",
        "extra_args": ["--allow-root"],
    }
