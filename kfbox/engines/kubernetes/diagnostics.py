"""Diagnostics of a run namespace: its events, each object's YAML and every pod's logs."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import yaml

from kfbox.engines.kubernetes.kubeapi import KubeApi, KubeError

KINDS = [
    ("v1", "Pod"),
    ("trainer.kubeflow.org/v1alpha1", "TrainJob"),
    ("kubeflow.org/v1beta1", "Experiment"),
    ("kubeflow.org/v1beta1", "Trial"),
    ("serving.kserve.io/v1beta1", "InferenceService"),
    ("kubeflow.org/v1", "Notebook"),
]


@dataclass
class KubeDiagnostics:
    kube: KubeApi
    namespace: str

    def collect(self, dest: Path) -> None:
        dest.mkdir(parents=True, exist_ok=True)
        try:
            events = self.kube.list("v1", "Event", self.namespace)
        except KubeError as exc:
            (dest / "events.txt").write_text(f"cannot list events: {exc}\n")
            events = []
        else:
            (dest / "events.txt").write_text("".join(
                f"{e.get('lastTimestamp') or ''} {e.get('type', '')} "
                f"{(e.get('involvedObject') or {}).get('kind', '')}/"
                f"{(e.get('involvedObject') or {}).get('name', '')}: {e.get('message', '')}\n"
                for e in events))
        for api_version, kind in KINDS:
            try:
                objects = self.kube.list(api_version, kind, self.namespace)
            except KubeError:
                continue
            for obj in objects:
                name = obj["metadata"]["name"]
                (dest / f"{kind.lower()}-{name}.yaml").write_text(yaml.safe_dump(obj))
                if kind == "Pod":
                    self._pod_logs(obj, dest)

    def _pod_logs(self, pod: dict, dest: Path) -> None:
        name = pod["metadata"]["name"]
        for container in pod["spec"].get("containers", []):
            try:
                logs = self.kube.pod_logs(name, self.namespace, container["name"])
            except KubeError as exc:
                logs = f"cannot read logs: {exc}\n"
            (dest / f"logs-{name}-{container['name']}.txt").write_text(logs)
