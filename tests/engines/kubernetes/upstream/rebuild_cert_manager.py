"""Rebuild cert-manager's release file (cert-manager.yaml) from its Helm chart at a tag, so its
objects_sha256 can be pinned from source: a maintainer's tool, not run by the tests.

cert-manager's release manifest is a build artifact (make/manifests.mk at the tag): `helm
template` of deploy/charts/cert-manager (version and appVersion set to the tag) in namespace
cert-manager with creator=static and startupapicheck.enabled=false; the CRDs come from a second
render with crds.enabled=true; deploy/manifests/namespace.yaml goes first. This does the same
with the Helm v4 library that helm-python-sdk ships (no Go toolchain or helm binary here).
Checked: at v1.19.4 the objects equal the release file kubeflow/manifests 26.03 vendors.

    python3 -m venv /tmp/helm && /tmp/helm/bin/pip install helm-python-sdk==0.2.2 pyyaml
    /tmp/helm/bin/python rebuild_cert_manager.py CERT_MANAGER_GIT_DIR v1.21.1 out.yaml
    .venv/bin/python -c "import sys; from kfbox.engines.kubernetes.manifest_cache import \
        objects_digest; print(objects_digest(open(sys.argv[1], 'rb').read()))" out.yaml
"""

from __future__ import annotations

import io
import re
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path
from typing import Any

import yaml
from helm_python import Chart

CHART = "deploy/charts/cert-manager"
NAMESPACE_FILE = "deploy/manifests/namespace.yaml"
# The values make/manifests.mk passes with --set.
RELEASE_VALUES = {"creator": "static", "startupapicheck": {"enabled": False}}
# helm's own split of a rendered template into documents (pkg/release/util SplitManifests).
DOCUMENT_SEPARATOR = re.compile(r"(?:^|\s*\n)---\s*")


def unpack(repo: str, tag: str, into: Path) -> Path:
    archive = subprocess.run(["git", "-C", repo, "archive", tag, CHART, NAMESPACE_FILE],
                             check=True, capture_output=True).stdout
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(into)
    chart = into / CHART
    # v1.19 keeps Chart.template.yaml, v1.21 Chart.yaml; the release sets both versions.
    template = chart / "Chart.template.yaml"
    metadata = yaml.safe_load((template if template.exists() else chart / "Chart.yaml")
                              .read_text())
    metadata["version"] = metadata["appVersion"] = tag
    template.unlink(missing_ok=True)
    (chart / "Chart.yaml").write_text(yaml.safe_dump(metadata))
    return chart


def render(chart: Path, values: dict[str, Any]) -> list[dict[str, Any]]:
    with Chart.load(str(chart)) as loaded:
        files = loaded.render(values=values, name="cert-manager", namespace="cert-manager",
                              is_install=True)
    objects = []
    for path in sorted(p for p in files if p.endswith((".yaml", ".yml"))):
        for part in DOCUMENT_SEPARATOR.split(files[path]):
            document = yaml.safe_load(part) if part.strip() else None
            if document:
                objects.append(document)
    return objects


def main(repo: str, tag: str, out: str) -> None:
    with tempfile.TemporaryDirectory(prefix="cert-manager-") as tmp:
        root = Path(tmp)
        chart = unpack(repo, tag, root)
        crds = [o for o in render(chart, {**RELEASE_VALUES, "crds": {"enabled": True}})
                if o.get("kind") == "CustomResourceDefinition"]
        namespace = [d for d in yaml.safe_load_all((root / NAMESPACE_FILE).read_text()) if d]
        objects = [*namespace, *crds, *render(chart, RELEASE_VALUES)]
    Path(out).write_text(yaml.safe_dump_all(objects, sort_keys=False))


if __name__ == "__main__":
    main(*sys.argv[1:4])
