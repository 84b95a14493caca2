"""Resource limits as Kubernetes quantity strings (the Trainer's and KServe's CRDs declare them
int-or-string, so a float such as 1.5 CPUs is refused; "1500m" is the quantity), and quantities
read back as numbers."""

from __future__ import annotations

import re

SUFFIXES = {"m": 1e-3, "": 1, "k": 1e3, "M": 1e6, "G": 1e9, "T": 1e12,
            "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40}
"""k8s.io/apimachinery pkg/api/resource/suffix.go: the suffixes quantities use."""


def cpu(cpus: float) -> str:
    """2.0 → "2", 1.5 → "1500m" (whole millicores, as the API server keeps them)."""
    millis = round(cpus * 1000)
    return str(millis // 1000) if millis % 1000 == 0 else f"{millis}m"


def memory(size: str) -> str:
    """The spec's 4g / 512m / 100k as binary quantities: 4Gi / 512Mi / 100Ki."""
    return size[:-1] + {"k": "Ki", "m": "Mi", "g": "Gi"}[size[-1].lower()]


def value(quantity: str | int | float) -> float:
    """A quantity as a number: "1500m" → 1.5, "4Gi" → 4294967296 (ValueError if malformed)."""
    match = re.fullmatch(r"([0-9.]+(?:[eE][-+]?[0-9]+)?)(m|k|M|G|T|Ki|Mi|Gi|Ti)?", str(quantity))
    if match is None:
        raise ValueError(f"not a quantity: {quantity!r}")
    return float(match.group(1)) * SUFFIXES[match.group(2) or ""]
