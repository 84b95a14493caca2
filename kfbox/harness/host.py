"""Host facts for the report: OS, kernel, CPU, memory and GPUs of the machine that ran the suite."""

from __future__ import annotations

import os
import platform
from dataclasses import dataclass, field
from pathlib import Path

from kfbox.host.gpu import detect_gpus


@dataclass
class GpuInfo:
    count: int = 0
    names: list[str] = field(default_factory=list)
    driver: str = ""
    note: str = ""
    """Why none was found when device nodes suggest one (nvidia-smi's error)."""


@dataclass
class HostFacts:
    os: str = ""
    kernel: str = ""
    arch: str = ""
    python: str = ""
    cpu_model: str = ""
    cpu_count: int = 0
    memory_gib: float = 0.0
    gpu: GpuInfo = field(default_factory=GpuInfo)


def _first_field(path: Path, key: str, separator: str = ":") -> str:
    """The value of the first `key<separator>value` line of a /proc or /etc file."""
    try:
        for line in path.read_text().splitlines():
            name, sep, value = line.partition(separator)
            if sep and name.strip() == key:
                return value.strip().strip('"')
    except OSError:
        pass
    return ""


def collect_host_facts() -> HostFacts:
    """What this machine is; never fails (a fact it cannot read stays empty)."""
    mem_kib = _first_field(Path("/proc/meminfo"), "MemTotal").split(" ")[0]
    gpus = detect_gpus()
    return HostFacts(
        os=_first_field(Path("/etc/os-release"), "PRETTY_NAME", "=") or platform.system(),
        kernel=platform.release(),
        arch=platform.machine(),
        python=platform.python_version(),
        cpu_model=_first_field(Path("/proc/cpuinfo"), "model name") or platform.processor(),
        cpu_count=os.cpu_count() or 0,
        memory_gib=round(int(mem_kib) / 2**20, 1) if mem_kib.isdigit() else 0.0,
        gpu=GpuInfo(count=gpus.count, names=gpus.names, driver=gpus.driver, note=gpus.smi_error),
    )
