"""Resource limits as Kubernetes quantity strings: the Trainer's and KServe's CRDs declare them
int-or-string, so a float such as 1.5 CPUs is refused; "1500m" is the quantity."""

from __future__ import annotations


def cpu(cpus: float) -> str:
    """2.0 → "2", 1.5 → "1500m" (whole millicores, as the API server keeps them)."""
    millis = round(cpus * 1000)
    return str(millis // 1000) if millis % 1000 == 0 else f"{millis}m"


def memory(size: str) -> str:
    """The spec's 4g / 512m / 100k as binary quantities: 4Gi / 512Mi / 100Ki."""
    return size[:-1] + {"k": "Ki", "m": "Mi", "g": "Gi"}[size[-1].lower()]
