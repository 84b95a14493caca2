"""Stand-ins for the controllers of a real cluster, driving the API double's object status.

The double only stores objects; on a real cluster the API server serves a CRD's kind once it is
created, and controllers mark Deployments Available. These hooks do that much, so readiness
gates can pass (or, when a hook is left out, time out) in tests.
"""

from __future__ import annotations

from typing import Any

from kapi_double import KubeApiDouble


def serve_crds(double: KubeApiDouble) -> None:
    """A created CRD becomes Established and its kind appears in discovery."""

    def hook(plural: str, obj: dict[str, Any]) -> None:
        if plural != "customresourcedefinitions":
            return
        spec = obj["spec"]
        for version in spec["versions"]:
            double.declare(f"{spec['group']}/{version['name']}", spec["names"]["plural"],
                           spec["names"]["kind"], namespaced=spec["scope"] == "Namespaced",
                           status=True)
        double.set_status("apiextensions.k8s.io/v1", plural, None, obj["metadata"]["name"],
                          {"conditions": [{"type": "Established", "status": "True"}]})

    double.on_write.append(hook)


def run_workloads(double: KubeApiDouble) -> None:
    """Deployments become Available, DaemonSets ready, webhook Services get endpoints."""

    def hook(plural: str, obj: dict[str, Any]) -> None:
        meta = obj["metadata"]
        if plural == "deployments" and not obj.get("status"):
            double.set_status("apps/v1", plural, meta.get("namespace"), meta["name"],
                              {"conditions": [{"type": "Available", "status": "True"}]})
        elif plural == "daemonsets" and not obj.get("status"):
            double.set_status("apps/v1", plural, meta.get("namespace"), meta["name"],
                              {"desiredNumberScheduled": 1, "numberReady": 1})
        elif plural.endswith("webhookconfigurations"):
            for hook_ in obj.get("webhooks") or []:
                service = hook_["clientConfig"]["service"]
                if double.get("v1", "endpoints", service["namespace"], service["name"]) is None:
                    double.put("v1", "endpoints", {
                        "apiVersion": "v1", "kind": "Endpoints",
                        "metadata": {"name": service["name"], "namespace": service["namespace"]},
                        "subsets": [{"addresses": [{"ip": "10.0.0.9"}]}],
                    })

    double.on_write.append(hook)
