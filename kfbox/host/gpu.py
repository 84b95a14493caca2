"""GPU detection: nvidia-smi, /dev/nvidia* device nodes, and the Docker engine's nvidia runtime."""

from __future__ import annotations

import glob
import shutil
import subprocess
from dataclasses import dataclass, field


@dataclass
class GpuFacts:
    count: int = 0
    names: list[str] = field(default_factory=list)
    driver: str = ""
    device_nodes: list[str] = field(default_factory=list)
    smi_error: str = ""

    @property
    def present(self) -> bool:
        return self.count > 0


def detect_gpus(smi: str | None = None) -> GpuFacts:
    """Ask nvidia-smi for the GPUs; device nodes alone (no working driver) count as none."""
    facts = GpuFacts(device_nodes=sorted(glob.glob("/dev/nvidia[0-9]*")))
    smi = smi or shutil.which("nvidia-smi")
    if not smi:
        if facts.device_nodes:
            facts.smi_error = "nvidia device nodes exist but nvidia-smi is not installed"
        return facts
    try:
        done = subprocess.run(
            [smi, "--query-gpu=name,driver_version", "--format=csv,noheader"],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        facts.smi_error = f"nvidia-smi did not answer: {exc}"
        return facts
    if done.returncode != 0:
        lines = (done.stderr or done.stdout).strip().splitlines()
        facts.smi_error = lines[-1] if lines else f"nvidia-smi exited {done.returncode}"
        return facts
    for line in done.stdout.strip().splitlines():
        name, _, driver = (part.strip() for part in line.partition(","))
        facts.names.append(name)
        facts.driver = driver
    facts.count = len(facts.names)
    return facts


def engine_has_nvidia_runtime(runtimes: dict[str, object]) -> bool:
    """True when the Docker engine's `info` lists an nvidia runtime (the container toolkit)."""
    return "nvidia" in runtimes


if __name__ == "__main__":  # `python -m kfbox.host.gpu`: what a GPU host reports
    import json
    from dataclasses import asdict

    print(json.dumps(asdict(detect_gpus()), indent=2))
