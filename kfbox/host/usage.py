"""What a sandbox's containers use, read from their cgroups (the engine runs on this host):
resident memory now, and over a span of work the memory peak and the CPU time, sampled often
enough to follow workloads that live for seconds."""

from __future__ import annotations

import contextlib
import threading
import time
from pathlib import Path

import docker

from kfbox.host.docker_engine import LABEL
from kfbox.host.rootless_docker import find_rootless_docker, usage_files

MIB = 2**20
SAMPLE_S = 0.25
"""How often a sampler reads: a trial's containers live for seconds."""
_MEMORY_STATS = (
    ("/sys/fs/cgroup/memory/docker/{id}/memory.stat", "rss"),  # cgroup v1, cgroupfs driver
    ("/sys/fs/cgroup/system.slice/docker-{id}.scope/memory.stat", "anon"),  # v2, systemd
    ("/sys/fs/cgroup/docker/{id}/memory.stat", "anon"),  # v2, cgroupfs driver
)
_CPU_STATS = (
    ("/sys/fs/cgroup/cpuacct/docker/{id}/cpuacct.usage", "", 1e-9),  # v1: nanoseconds
    ("/sys/fs/cgroup/system.slice/docker-{id}.scope/cpu.stat", "usage_usec", 1e-6),  # v2
    ("/sys/fs/cgroup/docker/{id}/cpu.stat", "usage_usec", 1e-6),
)


def _read(path: str, key: str) -> int | None:
    """The value of `key` in a cgroup file (the whole file when key is empty); None if absent."""
    with contextlib.suppress(OSError, ValueError):
        text = Path(path).read_text()
        if not key:
            return int(text)
        for line in text.splitlines():
            name, _, value = line.partition(" ")
            if name == key:
                return int(value)
    return None


def resident_bytes(container_id: str) -> int:
    """The container's resident memory (not page cache); 0 when it is gone or unreadable."""
    for template, key in _MEMORY_STATS:
        value = _read(template.format(id=container_id), key)
        if value is not None:
            return value
    return 0


def cpu_seconds(container_id: str) -> float:
    """CPU time the container has used since it started; 0 when it is gone or unreadable."""
    for template, key, scale in _CPU_STATS:
        value = _read(template.format(id=container_id), key)
        if value is not None:
            return value * scale
    return 0.0


def _running(client: docker.DockerClient, sandbox: str) -> list[str]:
    found = client.containers.list(
        ignore_removed=True, sparse=True, filters={"label": f"{LABEL}={sandbox}"})
    return [container.id for container in found]


class _Counters:
    """Where a sandbox's use is counted: each of its containers' cgroups in the host's engine,
    or, for a sandbox in a rootless engine of its own, that engine's one cgroup (its daemons
    included: what the sandbox costs the host)."""

    def __init__(self, client: docker.DockerClient, sandbox: str) -> None:
        self.client, self.sandbox = client, sandbox
        engine = find_rootless_docker(sandbox)
        self.engine = usage_files(engine.user) if engine is not None else None

    def sample(self) -> dict[str, tuple[int, float]]:
        """Counter → (resident bytes, CPU seconds so far)."""
        if self.engine is not None:
            (memory, key), (cpu, cpu_key, scale) = self.engine
            return {"engine": (_read(str(memory), key) or 0,
                               (_read(str(cpu), cpu_key) or 0) * scale)}
        return {cid: (resident_bytes(cid), cpu_seconds(cid))
                for cid in _running(self.client, self.sandbox)}


def sandbox_memory_mib(client: docker.DockerClient, sandbox: str) -> float:
    """Resident memory of the sandbox's running containers, components and workloads (of its
    whole engine, when it has one of its own)."""
    return sum(memory for memory, _ in _Counters(client, sandbox).sample().values()) / MIB


class UsageSampler:
    """While its `with` block runs: the peak of the sandbox's summed resident memory, and the
    CPU time its containers used (those that start and end within it included, up to their
    last sample; those already running counted from the block's start)."""

    def __init__(self, client: docker.DockerClient, sandbox: str) -> None:
        self.counters = _Counters(client, sandbox)
        self.sandbox = sandbox
        self.peak_memory_mib = 0.0
        self.seconds = 0.0
        self._cpu_at_start: dict[str, float] = {}
        self._cpu_last: dict[str, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"usage-{sandbox}", daemon=True)
        self._started = 0.0

    def __enter__(self) -> UsageSampler:
        self._cpu_at_start = {key: cpu for key, (_, cpu) in self.counters.sample().items()}
        self._started = time.monotonic()
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join()
        self.seconds = time.monotonic() - self._started

    def _run(self) -> None:
        while True:
            with contextlib.suppress(docker.errors.DockerException):  # a missed sample only
                sample = self.counters.sample()
                memory = sum(memory for memory, _ in sample.values()) / MIB
                self.peak_memory_mib = max(self.peak_memory_mib, memory)
                for key, (_, cpu) in sample.items():
                    self._cpu_last[key] = max(self._cpu_last.get(key, 0.0), cpu)
            if self._stop.wait(SAMPLE_S):
                return

    @property
    def cpu_seconds(self) -> float:
        return sum(last - self._cpu_at_start.get(cid, 0.0) for cid, last in self._cpu_last.items())

    @property
    def busy_cores(self) -> float:
        """Cores the sandbox kept busy on average over the block."""
        return self.cpu_seconds / self.seconds if self.seconds else 0.0
