"""Optional imports kfbox's own programs skip: a package a library loads only because it happens
to be installed, for a feature kfbox never calls."""

from __future__ import annotations

import sys

UNUSED_OPTIONAL = ("kubernetes_validate",)
"""The Kubernetes client imports kubernetes_validate whenever it is installed (kubernetes/dynamic/
client.py, for DynamicClient.validate), and with it jsonschema's format checkers, whose
rfc3987_syntax builds a grammar at import: about 2 s of CPU in every process that imports kfp or
the Kubeflow SDK. kfbox never calls DynamicClient.validate. The package is one of the test tools
(the dev extra), which the tests import themselves: only programs skip it, never a library
import of kfbox."""


def skip_unused_optional_imports() -> None:
    """At a kfbox program's start: each package above counts as absent in this process."""
    for name in UNUSED_OPTIONAL:
        sys.modules.setdefault(name, None)
