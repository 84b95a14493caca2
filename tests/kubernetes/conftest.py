"""Fixtures for the Kubernetes engine tests: the API double, a client for it, recorded commands."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from kubernetes import client

sys.path.insert(0, str(Path(__file__).parent))

from controllers import run_workloads, serve_crds
from kapi_double import KubeApiDouble, core_double, serve

from kfbox.sandbox.engines.kubernetes.kubeapi import KubeApi


@dataclass
class Cluster:
    double: KubeApiDouble
    url: str
    kube: KubeApi


@pytest.fixture
def cluster() -> Iterator[Cluster]:
    """A Kubernetes API double (kmock subclass) on 127.0.0.1 with CRD and workload controllers."""
    double = core_double()
    serve_crds(double)
    run_workloads(double)
    with serve(double) as url:
        configuration = client.Configuration()
        configuration.host = url
        yield Cluster(double, url, KubeApi(client.ApiClient(configuration)))


@dataclass
class RecordingRunner:
    """Records each host command (kind, kubectl, docker) and answers from a script: the
    first (prefix, returncode, stdout) whose prefix matches the command's arguments."""

    script: list[tuple[tuple[str, ...], int, str]] = field(default_factory=list)
    calls: list[list[str]] = field(default_factory=list)
    stdins: list[str | None] = field(default_factory=list)

    def __call__(self, argv: Sequence[str], *, stdin: str | None = None, check: bool = True,
                 timeout: float = 600) -> subprocess.CompletedProcess[str]:
        from kfbox.sandbox.engines.kubernetes.tools import CommandFailed

        args = [Path(argv[0]).name, *argv[1:]]
        self.calls.append(args)
        self.stdins.append(stdin)
        code, out = 0, ""
        for prefix, rc, text in self.script:
            if tuple(args[: len(prefix)]) == prefix:
                code, out = rc, text
                break
        if check and code:
            raise CommandFailed(argv, code, out)
        return subprocess.CompletedProcess(list(argv), code, out, "")

    def commands(self, tool: str) -> list[list[str]]:
        return [c for c in self.calls if c[0] == tool]


@pytest.fixture
def runner() -> RecordingRunner:
    return RecordingRunner()
