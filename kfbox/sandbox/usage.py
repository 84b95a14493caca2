"""What a sandbox's containers use, read from the engine's stats: memory now, and the memory
peak and CPU time over a span of work (sampled while it runs)."""

from __future__ import annotations

import threading
import time
from typing import Any

import docker
from docker.errors import APIError, NotFound

from kfbox.sandbox.docker_engine import LABEL

MIB = 2**20


def memory_bytes(stats: dict[str, Any]) -> int:
    """A container's resident memory (cgroup rss on v1, anon on v2), not its page cache."""
    memory = stats.get("memory_stats") or {}
    inner = memory.get("stats") or {}
    return int(inner.get("rss", inner.get("anon", memory.get("usage", 0))))


def cpu_nanoseconds(stats: dict[str, Any]) -> int:
    """CPU time a container has used since it started."""
    return int(((stats.get("cpu_stats") or {}).get("cpu_usage") or {}).get("total_usage", 0))


def _snapshot(client: docker.DockerClient, sandbox: str) -> dict[str, dict[str, Any]]:
    """Stats of each running container labelled with `sandbox`, by container id; one read per
    container (one_shot: no second sample to wait for)."""
    found = {}
    for container in client.containers.list(filters={"label": f"{LABEL}={sandbox}"}):
        try:
            found[container.id] = container.stats(stream=False, one_shot=True)
        except (NotFound, APIError):  # it ended between the listing and the read
            continue
    return found


def sandbox_memory_mib(client: docker.DockerClient, sandbox: str) -> float:
    """Resident memory of the sandbox's running containers, summed."""
    return sum(memory_bytes(s) for s in _snapshot(client, sandbox).values()) / MIB


class UsageSampler:
    """Samples a sandbox's containers every `interval_s` between `start` and `stop`: the peak
    of their summed memory, and the CPU time they used in that span (containers that start and
    end within it included, up to their last sample)."""

    def __init__(self, client: docker.DockerClient, sandbox: str, interval_s: float = 1.0) -> None:
        self.client = client
        self.sandbox = sandbox
        self.interval_s = interval_s
        self.peak_memory_mib = 0.0
        self._cpu_at_start: dict[str, int] = {}
        self._cpu_last: dict[str, int] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"usage-{sandbox}", daemon=True)
        self._started = 0.0
        self.seconds = 0.0

    def start(self) -> UsageSampler:
        first = _snapshot(self.client, self.sandbox)
        self._cpu_at_start = {cid: cpu_nanoseconds(s) for cid, s in first.items()}
        self._take(first)
        self._started = time.monotonic()
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()
        self.seconds = time.monotonic() - self._started

    def _take(self, snapshot: dict[str, dict[str, Any]]) -> None:
        memory = sum(memory_bytes(s) for s in snapshot.values()) / MIB
        self.peak_memory_mib = max(self.peak_memory_mib, memory)
        for cid, stats in snapshot.items():
            self._cpu_last[cid] = max(self._cpu_last.get(cid, 0), cpu_nanoseconds(stats))

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            try:
                self._take(_snapshot(self.client, self.sandbox))
            except (APIError, OSError):  # a busy engine misses a sample, not the measurement
                continue

    @property
    def cpu_seconds(self) -> float:
        used = sum(
            last - self._cpu_at_start.get(cid, 0) for cid, last in self._cpu_last.items()
        )
        return used / 1e9

    @property
    def busy_cores(self) -> float:
        """Cores the sandbox kept busy on average over the span."""
        return self.cpu_seconds / self.seconds if self.seconds else 0.0
