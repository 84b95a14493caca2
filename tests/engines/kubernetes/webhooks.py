"""Admission as the installed components' webhooks and CRDs do it, for the API double.

Each rule names the upstream repository, tag and file it encodes, and is registered only where
that component counts as installed (the `kubeflow` fixture). A refusal is what a real server
answers: 422 for a CRD's own validation, 403 with `admission webhook "NAME" denied the
request: ...` for a validating webhook (controller-runtime's Denied response).
"""

from __future__ import annotations

import copy
import json
import re
from typing import Any

import schemas
import upstream
import yaml
from kapi_double import Denied, KubeApiDouble, Write

TRAINER_API = "trainer.kubeflow.org/v1alpha1"
KATIB_API = "kubeflow.org/v1beta1"
RFC1035 = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
DNS1123_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
TRIAL_PARAMETER = re.compile(r"\$\{trialParameters\..+?\}")
META_KEY = re.compile(r"^\$\{trialSpec\.(Name|Namespace|Kind|APIVersion|"
                      r"(Annotations|Labels)\[[^]]+\])\}$")


def _denied(webhook: str, errors: list[str]) -> Denied:
    return Denied(403, f'admission webhook "{webhook}" denied the request: ' + "; ".join(errors))


# ---- CRD schemas ---------------------------------------------------------------------------


def crd_schema(double: KubeApiDouble, write: Write) -> None:
    """Every custom resource against its CRD's schema at the pinned tag (schemas.py)."""
    found = schemas.validate(write.group_version, write.plural, write.obj)
    if found:
        kind = write.obj.get("kind", write.plural)
        raise Denied(422, f'{kind} "{write.obj["metadata"].get("name")}" is invalid: '
                          + "; ".join(found[:3]))


# ---- Kubeflow Trainer v2.3.0 ---------------------------------------------------------------


def _domain_prefixed_path(value: str) -> bool:
    """k8s.io/apimachinery validation.IsDomainPrefixedPath: `domain/path`."""
    domain, slash, path = value.partition("/")
    return bool(slash and path and DNS1123_SUBDOMAIN.match(domain)
                and re.match(r"^[A-Za-z0-9/\-._~%!$&'()*+,;=:]+$", path))


def trainjob(double: KubeApiDouble, write: Write) -> None:
    """The TrainJob's own rules (the CRD's CEL) and its validating webhook
    (validator.trainjob.trainer.kubeflow.org, failurePolicy Fail)."""
    if (write.group_version, write.plural) != (TRAINER_API, "trainjobs"):
        return
    name = write.obj["metadata"]["name"]
    # kubeflow/trainer v2.3.0 pkg/apis/trainer/v1alpha1/trainjob_types.go: XValidation rules
    # on metadata.name (RFC 1035 label, at most 63 characters).
    if not RFC1035.match(name) or len(name) > 63:
        raise Denied(422, f'TrainJob.trainer.kubeflow.org "{name}" is invalid: metadata.name '
                          "must match RFC 1035 DNS label format and be no more than 63 "
                          "characters")
    spec = write.obj.get("spec") or {}
    errors: list[str] = []
    # pkg/runtime/core/clustertrainingruntime.go (ValidateObjects): the runtime must exist.
    ref = spec.get("runtimeRef") or {}
    runtime = double.get(TRAINER_API, "clustertrainingruntimes", None, ref.get("name", ""))
    if runtime is None:
        raise _denied("validator.trainjob.trainer.kubeflow.org", [
            f'spec.RuntimeRef: clustertrainingruntimes "{ref.get("name")}" not found: '
            "specified clusterTrainingRuntime must be created before the TrainJob is created"])
    facts = upstream.component("trainer")
    # pkg/runtime/framework/plugins/torch/torch.go (Validate): no reserved PET_* env.
    reserved = sorted({e["name"] for e in (spec.get("trainer") or {}).get("env") or []}
                      & set(facts["torch_reserved_env"]))
    if reserved:
        errors.append(f"spec.trainer.env: must not have reserved envs, invalid envs "
                      f"configured: {reserved}")
    # pkg/runtime/framework/plugins/jobset/jobset.go (Validate): runtime patches.
    jobs = {job["name"]: {c["name"] for c in job["template"]["spec"]["template"]["spec"]
                          .get("initContainers", []) + job["template"]["spec"]["template"]
                          ["spec"]["containers"]}
            for job in runtime["spec"]["template"]["spec"]["replicatedJobs"]}
    for patch in spec.get("runtimePatches") or []:
        if not _domain_prefixed_path(patch.get("manager", "")):
            errors.append(f"spec.runtimePatches.manager: Invalid value: "
                          f"{patch.get('manager')!r}: must be a domain-prefixed path")
        template = ((patch.get("trainingRuntimeSpec") or {}).get("template") or {})
        for job_patch in (template.get("spec") or {}).get("replicatedJobs") or []:
            if job_patch["name"] not in jobs:
                errors.append("spec.runtimePatches: must not have replicated job that doesn't "
                              "exist in the runtime job template")
                continue
            pod = ((((job_patch.get("template") or {}).get("spec") or {}).get("template")
                    or {}).get("spec") or {})
            for container in pod.get("initContainers", []) + pod.get("containers", []):
                if container["name"] not in jobs[job_patch["name"]]:
                    errors.append("spec.runtimePatches: must not have container that doesn't "
                                  f"exist in the runtime job {job_patch['name']}")
                elif container.get("env") and \
                        container["name"] in facts["runtime_patch_env_forbidden"]:
                    errors.append("spec.runtimePatches: must not have envs for the "
                                  "dataset-initializer, model-initializer, node containers")
    # jobset.go (checkRuntimePatchesImmutability): runtimePatches change only while suspended.
    if write.old is not None and not spec.get("suspend") and \
            not (write.old.get("spec") or {}).get("suspend") and \
            (write.old.get("spec") or {}).get("runtimePatches") != spec.get("runtimePatches"):
        errors.append("spec.runtimePatches: Forbidden: RuntimePatches can only be modified when "
                      "the TrainJob is suspended before or after the update")
    if errors:
        raise _denied("validator.trainjob.trainer.kubeflow.org", errors)


# ---- Katib v0.19.0 --------------------------------------------------------------------------


def katib_config(double: KubeApiDouble) -> dict[str, Any]:
    """katib-config.yaml as installed (the `kubeflow` fixture puts it in the double)."""
    facts = upstream.component("katib")["config"]
    namespace, name = facts["name"].split("/")
    config = double.get("v1", "configmaps", namespace, name) or {}
    return yaml.safe_load((config.get("data") or {}).get(facts["key"]) or "") or {}


def experiment_defaults(double: KubeApiDouble, write: Write) -> None:
    """Katib's experiment defaulter (defaulter.experiment.katib.kubeflow.org, a mutating
    webhook, so before the validator): a TrainJob trial template that names no success or
    failure condition or primary pod labels gets Katib's (kubeflow/katib v0.19.0
    pkg/apis/controller/experiments/v1beta1/experiment_defaults.go setDefaultTrialTemplate; the
    values from constants.go, in the facts). The Kubeflow SDK's OptimizerClient names none."""
    if (write.group_version, write.plural) != (KATIB_API, "experiments"):
        return
    template = (write.obj.get("spec") or {}).get("trialTemplate") or {}
    if (template.get("trialSpec") or {}).get("kind") != "TrainJob":
        return
    for key, value in upstream.component("katib")["trainjob_trial_defaults"].items():
        if not template.get(key):
            template[key] = copy.deepcopy(value)


def experiment(double: KubeApiDouble, write: Write) -> None:
    """Katib's experiment validator (validator.experiment.katib.kubeflow.org)."""
    if (write.group_version, write.plural) != (KATIB_API, "experiments"):
        return
    webhook = "validator.experiment.katib.kubeflow.org"
    facts = upstream.component("katib")
    # pkg/webhook/v1beta1/experiment/validation_webhook.go (Handle): the namespace label.
    namespace = double.get("v1", "namespaces", None, write.namespace or "") or {}
    labels = namespace.get("metadata", {}).get("labels") or {}
    (label, value), = facts["metrics_collector_label"].items()
    name = write.obj["metadata"]["name"]
    if labels.get(label) != value:
        raise _denied(webhook, [f'Cannot create the Experiment "{name}" in namespace '
                                f'"{write.namespace}": the namespace lacks label '
                                f'"{label}: {value}"'])
    errors: list[str] = []
    spec = write.obj.get("spec") or {}
    # pkg/webhook/v1beta1/experiment/validator/validator.go (ValidateExperiment).
    if not RFC1035.match(name) or len(name) > facts["experiment_name_max"]:
        errors.append(f"metadata.name: Invalid value: {name!r}: may not be longer than "
                      f"{facts['experiment_name_max']} characters")
    algorithm = (spec.get("algorithm") or {}).get("algorithmName")
    suggestions = {s["algorithmName"] for s in
                   (katib_config(double).get("runtime") or {}).get("suggestions") or []}
    if algorithm not in suggestions:
        errors.append(f"spec.algorithm.algorithmName: Invalid value: {algorithm!r}: unable to "
                      "get Suggestion config data")
    errors += _trial_template(spec)
    if errors:
        raise _denied(webhook, errors)


def _trial_template(spec: dict[str, Any]) -> list[str]:
    """validator.go (validateTrialTemplate): what a trial template must hold."""
    template = spec.get("trialTemplate") or {}
    errors = []
    if not template.get("primaryContainerName"):
        errors.append("spec.trialTemplate.primaryContainerName: Required value")
    if not template.get("successCondition") or not template.get("failureCondition"):
        errors.append("spec.trialTemplate: successCondition and failureCondition must be "
                      "specified")
    text = json.dumps(template.get("trialSpec") or {})
    parameters = {p["name"] for p in spec.get("parameters") or []}
    for parameter in template.get("trialParameters") or []:
        reference = parameter.get("reference", "")
        if reference not in parameters and not META_KEY.match(reference):
            errors.append(f"spec.trialTemplate.trialParameters.reference: {reference} does not "
                          "exist in spec.parameters")
        placeholder = f"${{trialParameters.{parameter['name']}}}"
        if placeholder not in text:
            errors.append(f"parameter name: {parameter['name']} in spec.trialParameters not "
                          "found in spec.trialTemplate")
        text = text.replace(placeholder, "test-value")
    left = TRIAL_PARAMETER.findall(text)
    if left:
        errors.append(f"parameters: {left} in spec.trialTemplate not found in "
                      "spec.trialParameters")
    run_spec = template.get("trialSpec") or {}
    if (run_spec.get("metadata") or {}).get("name") or \
            (run_spec.get("metadata") or {}).get("namespace"):
        errors.append("metadata.name and metadata.namespace in spec.trialTemplate must be "
                      "omitted")
    if not run_spec.get("apiVersion") or not run_spec.get("kind"):
        errors.append("APIVersion and Kind in spec.trialTemplate must be specified")
    return errors


INSTALLED = [crd_schema, trainjob, experiment]
"""The admission a cluster with the core platform installed applies."""


# ---- KServe (inferenceservice-config defaults) -----------------------------------------------


def kserve_resource_defaults(double: KubeApiDouble, write: Write) -> None:
    """KServe's InferenceService defaulter (kserve/kserve v0.20.0, as at v0.15.2:
    pkg/apis/serving/v1beta1/inference_service_defaults.go, setResourceRequirementDefaults):
    every request and limit a predictor container leaves unset is filled from
    inferenceservice-config's `inferenceService` key (`resource`: cpuRequest, memoryRequest,
    cpuLimit, memoryLimit; config/configmap/inferenceservice.yaml ships 1 CPU and 2Gi each)."""
    if (write.group_version, write.plural) != ("serving.kserve.io/v1beta1",
                                               "inferenceservices"):
        return
    facts = upstream.component("kserve")
    namespace, name = facts["config"]["name"].split("/")
    config = (double.get("v1", "configmaps", namespace, name) or {}).get("data") or {}
    if facts["resource_defaults"]["key"] not in config:
        return
    resource = json.loads(config[facts["resource_defaults"]["key"]]).get("resource") or {}
    defaults = {"requests": {"cpu": resource.get("cpuRequest"),
                             "memory": resource.get("memoryRequest")},
                "limits": {"cpu": resource.get("cpuLimit"), "memory": resource.get("memoryLimit")}}
    for container in (write.obj["spec"].get("predictor") or {}).get("containers") or []:
        resources = container.setdefault("resources", {})
        for kind, values in defaults.items():
            given = resources.setdefault(kind, {})
            for key, value in values.items():
                if value and key not in given:
                    given[key] = value


def normalised_deployment_mode(mode: str) -> str:
    """kserve/kserve v0.20.0 pkg/constants/constants.go ParseDeploymentMode: empty is the
    default (Standard), the deprecated aliases become their new names."""
    facts = upstream.component("kserve")
    return facts["deployment_mode_aliases"].get(mode, mode) if mode else \
        facts["default_deployment_mode"]


def inference_service(double: KubeApiDouble, write: Write) -> None:
    """KServe v0.20.0's InferenceService validator (pkg/apis/serving/v1beta1/
    inference_service_validation.go; config/webhook/manifests.yaml registers it for CREATE and
    UPDATE): the name must match IsvcRegexp; on UPDATE (validateDeploymentMode), once the
    controller has recorded a deployment mode in the status, an annotation that differs from
    it (normalised) as a string is refused, so `RawDeployment` over a recorded `Standard` is."""
    if (write.group_version, write.plural) != ("serving.kserve.io/v1beta1",
                                               "inferenceservices"):
        return
    webhook = "inferenceservice.kserve-webhook-server.validator"
    name = write.obj["metadata"]["name"]
    if not RFC1035.match(name):
        raise _denied(webhook, [
            f"the InferenceService \"{name}\" is invalid: a InferenceService name must consist "
            "of lower case alphanumeric characters or '-', and must start with alphabetical "
            "character. (e.g. \"my-name\" or \"abc-123\", regex used for validation is "
            "'[a-z]([-a-z0-9]*[a-z0-9])?')"])
    recorded = ((write.old or {}).get("status") or {}).get("deploymentMode")
    if not recorded:
        return
    annotations = write.obj["metadata"].get("annotations") or {}
    key = upstream.component("kserve")["deployment_mode_annotation"]
    status_mode = normalised_deployment_mode(recorded)
    if key in annotations and annotations[key] != status_mode:
        raise _denied(webhook, [
            f"update rejected: deploymentMode cannot be changed from '{status_mode}' to "
            f"'{annotations[key]}'"])


# ---- The API server's own webhook dispatch (kubernetes/kubernetes v1.32) -------------------

# The only CEL form the double evaluates in a webhook's matchConditions: a comparison of the
# requesting user's name (Katib v0.19.0's `exclude-katib-controller`, components/webhook/
# webhooks.yaml). Any other expression is an error in the test, never silently true.
USERNAME_CONDITION = re.compile(r'^\s*request\.userInfo\.username\s*(==|!=)\s*"([^"]*)"\s*$')
SELECTOR_OPERATORS = {
    "In": lambda labels, key, values: labels.get(key) in values,
    "NotIn": lambda labels, key, values: labels.get(key) not in values,
    "Exists": lambda labels, key, values: key in labels,
    "DoesNotExist": lambda labels, key, values: key not in labels,
}


def _selects(selector: dict[str, Any] | None, labels: dict[str, str]) -> bool:
    """A metav1.LabelSelector; an absent or empty one selects everything."""
    selector = selector or {}
    if any(labels.get(k) != v for k, v in (selector.get("matchLabels") or {}).items()):
        return False
    return all(SELECTOR_OPERATORS[e["operator"]](labels, e["key"], set(e.get("values") or ()))
               for e in selector.get("matchExpressions") or [])


def _rule_matches(rule: dict[str, Any], group: str, version: str, plural: str,
                  operation: str) -> bool:
    def within(key: str, value: str) -> bool:
        return bool({value, "*"} & set(rule.get(key) or ()))
    return (within("apiGroups", group) and within("apiVersions", version)
            and within("resources", plural) and within("operations", operation))


def _condition_holds(expression: str, user: str) -> bool:
    found = USERNAME_CONDITION.match(expression)
    if not found:
        raise AssertionError(f"the API double cannot evaluate matchCondition {expression!r}")
    operator, name = found.groups()
    return (user == name) == (operator == "==")


def _has_ready_endpoint(double: KubeApiDouble, service: dict[str, Any]) -> bool:
    endpoints = double.get("v1", "endpoints", service["namespace"], service["name"]) or {}
    return any(subset.get("addresses") for subset in endpoints.get("subsets") or [])


def unreachable_webhooks(double: KubeApiDouble, write: Write) -> None:
    """A create of a core object behind a webhook the API server cannot reach is refused when
    that webhook's failurePolicy is Fail (its default), as kubernetes/kubernetes v1.32 does:
    - pkg/apis/admissionregistration/v1/defaults.go (SetDefaults_MutatingWebhook and
      SetDefaults_ValidatingWebhook): failurePolicy defaults to Fail, namespaceSelector and
      objectSelector to everything;
    - staging/src/k8s.io/apiserver/pkg/admission/plugin/webhook/generic/webhook.go
      (ShouldCallHook): the rules, namespaceSelector and objectSelector decide whether a
      webhook is called; staging/.../webhook/matchconditions: a false matchCondition skips it;
    - staging/src/k8s.io/apiserver/pkg/util/proxy/proxy.go (ResolveEndpoint): a service with
      no ready endpoint is `no endpoints available for service "NAME"`;
    - staging/.../webhook/mutating/dispatcher.go and validating/dispatcher.go: a call error
      under failurePolicy Ignore is skipped, under Fail it rejects the request (500, "failed
      calling webhook")."""
    if write.old is not None or "/" in write.group_version:
        return  # CREATE of the core group's kinds (pods) only: what kfbox's installs risk
    labels = (write.obj.get("metadata") or {}).get("labels") or {}
    namespace = double.get("v1", "namespaces", None, write.namespace) if write.namespace else None
    namespace_labels = ((namespace or {}).get("metadata") or {}).get("labels") or {}
    for plural in ("mutatingwebhookconfigurations", "validatingwebhookconfigurations"):
        configs = [o.raw for key, o in list(double.objects.items())
                   if key[0].plural == plural and not o.deleted]
        for config in configs:
            for hook in config.get("webhooks") or []:
                if not any(_rule_matches(r, "", write.group_version, write.plural, "CREATE")
                           for r in hook.get("rules") or []):
                    continue
                if write.namespace and not _selects(hook.get("namespaceSelector"),
                                                    namespace_labels):
                    continue
                if not _selects(hook.get("objectSelector"), labels):
                    continue
                if not all(_condition_holds(c["expression"], write.user)
                           for c in hook.get("matchConditions") or []):
                    continue
                service = (hook.get("clientConfig") or {}).get("service")
                if not service or _has_ready_endpoint(double, service):
                    continue
                if hook.get("failurePolicy", "Fail") == "Ignore":
                    continue
                raise Denied(500, f'Internal error occurred: failed calling webhook '
                                  f'"{hook["name"]}": failed to call webhook: Post '
                                  f'"https://{service["name"]}.{service["namespace"]}.svc:443'
                                  f'{service.get("path", "")}?timeout=10s": no endpoints '
                                  f'available for service "{service["name"]}"')
