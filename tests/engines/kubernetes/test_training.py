"""Training through the Kubeflow SDK's TrainerClient (Kubernetes backend) against the API double
(kmock subclass) with the Trainer's admission (webhooks.trainjob: the CRD's name rules, the
validating webhook's rules on runtime patches and reserved env, at v2.3.0) and Trainer/JobSet/
kubelet stand-ins (controllers.TrainJobs: node Pods with the torch plugin's PET_* env).
Verified here: the TrainJob the SDK creates passes the Trainer's rules and CRD schema, the
store mount reaching every node Pod (Pods checked with kubernetes-validate), the model
directory through the trainer's env, quantities for resources, logs → metrics, and, with the
scenario's real train.py run as host processes under the command kfbox launches, two nodes
forming one torch.distributed process group. Only on a real cluster: the Trainer's and JobSet's
controllers and webhooks themselves, real Pods, their network and their logs."""

from __future__ import annotations

import kubernetes_validate
import pytest
from controllers import TRAINER_API, TrainJobs, each
from hostkubelet import HostKubelet
from kubeflow_trainer_api import models as trainer

from kfbox.engines.kubernetes.training import KubeTraining, launch_command
from kfbox.engines.kubernetes.workspace import RunNamespace
from kfbox.engines.platform import StepFailure, TrainJob
from kfbox.scenarios.scenario import load_scenario

RESOURCES = {"cpus": 2.0, "memory": "4g"}
IMAGE = "localhost:5001/kfbox/digits@sha256:" + "c" * 64
COMMAND = ["python", "/app/train.py"]


def env_of(pod: dict, container: str = "node") -> dict[str, str]:
    node = next(c for c in pod["spec"]["containers"] if c["name"] == container)
    return {e["name"]: e.get("value", "<from>") for e in node.get("env") or []}


def training(cluster, resources: dict | None = None) -> KubeTraining:
    ns = RunNamespace.create(cluster.kube, "box")
    return KubeTraining(cluster.kube, ns.name, resources or RESOURCES, poll_s=1)


def test_trainjob_passes_the_trainer_webhook_and_mounts_the_store_on_every_node(kubeflow) -> None:
    seen: list[dict] = []

    def program(pod: dict) -> tuple[str, bool]:
        seen.append(pod)
        index = pod["metadata"]["labels"]["batch.kubernetes.io/job-completion-index"]
        return f"epoch=1 loss=0.9\nrank={index}\naccuracy=0.81\naccuracy=0.93\n", True

    TrainJobs(kubeflow.double, each(program)).install()
    run = training(kubeflow)
    job = TrainJob("digits-train", IMAGE, COMMAND, args={"epochs": "3"}, num_nodes=2,
                   model_key="r1/train")
    result = run.run(job)

    assert result.succeeded and result.model_key == "r1/train"
    assert result.metrics["accuracy"] == 0.93 and result.metrics["rank"] == 0  # node-0's logs
    stored = kubeflow.double.get(TRAINER_API, "trainjobs", run.namespace, "digits-train")
    typed = trainer.TrainerV1alpha1TrainJob.from_dict(stored)
    assert typed.spec.runtime_ref.name == "torch-distributed"
    assert typed.spec.trainer.image == IMAGE and typed.spec.trainer.num_nodes == 2
    assert typed.spec.trainer.command == launch_command(COMMAND, 0)
    assert typed.spec.trainer.args == ["--epochs=3"]
    assert [(e.name, e.value) for e in typed.spec.trainer.env] == [
        ("KFBOX_MODEL_DIR", "/mnt/store/r1/train")]
    patch = stored["spec"]["runtimePatches"][0]["trainingRuntimeSpec"]["template"]["spec"]
    assert "env" not in patch["replicatedJobs"][0]["template"]["spec"]["template"]["spec"][
        "containers"][0]  # the webhook refuses env on the node container of a patch
    assert stored["spec"]["trainer"]["resourcesPerNode"]["limits"] == {"cpu": "2",
                                                                       "memory": "4Gi"}
    assert len(seen) == 2
    for pod in seen:
        kubernetes_validate.validate(pod, "1.32", strict=True)
        node = pod["spec"]["containers"][0]
        assert node["image"] == IMAGE
        assert {"name": "store", "mountPath": "/mnt/store"} in node["volumeMounts"]
        assert env_of(pod)["KFBOX_MODEL_DIR"] == "/mnt/store/r1/train"
        assert env_of(pod)["PET_NNODES"] == "2"
        assert {"name": "store", "persistentVolumeClaim": {"claimName": "kfbox-store"}} in \
            pod["spec"]["volumes"]
    selectors = [r.params.get("labelSelector", "") for r in kubeflow.double.log
                 if r.url.path.endswith("/pods")]
    assert any(" in (" in s for s in selectors), selectors  # the SDK's set-based selector


def test_a_fractional_cpu_count_reaches_the_trainjob_as_a_quantity(kubeflow) -> None:
    """The TrainJob CRD declares resourcesPerNode values int-or-string: 1.5 is refused."""
    TrainJobs(kubeflow.double, each(lambda pod: ("accuracy=0.9\n", True))).install()
    run = training(kubeflow, {"cpus": 1.5, "memory": "512m"})
    run.run(TrainJob("half", IMAGE, COMMAND, model_key="r1/half"))
    stored = kubeflow.double.get(TRAINER_API, "trainjobs", run.namespace, "half")
    assert stored["spec"]["trainer"]["resourcesPerNode"]["limits"] == {"cpu": "1500m",
                                                                       "memory": "512Mi"}


@pytest.mark.heavy  # two torchrun processes for real: about 10 s of CPU
def test_two_nodes_form_one_process_group(kubeflow, tmp_path) -> None:
    """The scenario's own train.py (as the notebook writes it), run on two nodes with the
    command kfbox gives the Trainer and the env the torch plugin sets: rank 0 reports the
    process group's size, 2, so the nodes trained as one."""

    code = load_scenario("digits").training_code()
    kubelet = HostKubelet({"/app/train.py": code}, tmp_path)
    TrainJobs(kubeflow.double, kubelet).install()
    result = training(kubeflow, {"cpus": 1.0, "memory": "1g"}).run(TrainJob(
        "digits-2n", IMAGE, COMMAND, args={"epochs": "1"}, num_nodes=2, model_key="r1/2n",
        timeout_s=300))
    assert result.metrics["world_size"] == 2, result.logs
    assert result.metrics["accuracy"] > 0.5
    assert (tmp_path / "volumes" / "store" / "r1" / "2n" / "model.pt").is_file()


def test_failed_trainjob_is_one_line_naming_the_cause_with_the_logs(kubeflow) -> None:
    def program(pod: dict) -> tuple[str, bool]:
        return "Traceback (most recent call last):\nValueError: lr must be positive\n", False

    TrainJobs(kubeflow.double, each(program)).install()
    with pytest.raises(StepFailure, match="TrainJob bad failed: ValueError: lr must be "
                                          "positive") as failed:
        training(kubeflow).run(TrainJob("bad", IMAGE, COMMAND))
    assert "Traceback" in failed.value.logs


def test_missing_training_runtime_names_it(kubeflow) -> None:
    # As if trainer-runtimes were not installed: no runtime for the TrainJob to start from.
    assert kubeflow.kube.delete(TRAINER_API, "ClusterTrainingRuntime", "torch-distributed")
    TrainJobs(kubeflow.double, each(lambda pod: ("", True))).install()
    with pytest.raises(StepFailure, match=r"TrainJob t: .*torch-distributed"):
        training(kubeflow).run(TrainJob("t", IMAGE, COMMAND))


def test_launch_command_starts_torchrun_one_process_per_gpu() -> None:
    assert launch_command(["python", "/app/train.py"], 0) == [
        "python", "-m", "torch.distributed.run", "--nproc-per-node=1", "/app/train.py"]
    assert launch_command(["/usr/bin/python3.11", "-m", "pkg.train"], 2) == [
        "/usr/bin/python3.11", "-m", "torch.distributed.run", "--nproc-per-node=2", "-m",
        "pkg.train"]
    assert launch_command(["/app/train"], 0) == ["torchrun", "--nproc-per-node=1",
                                                 "--no-python", "/app/train"]


def test_a_job_the_nodes_cannot_hold_is_refused_before_anything_is_created(kubeflow) -> None:
    """Two kind nodes of 2 CPUs, kind's and the components' own pods requesting 950m on one
    and 100m on the other: two nodes of 2 CPUs each cannot be scheduled (a pod would stay
    Pending until the step timed out); kfbox refuses in one line with the numbers."""
    for name, used in (("box-control-plane", "950m"), ("box-worker", "100m")):
        kubeflow.double.put("v1", "nodes", {
            "apiVersion": "v1", "kind": "Node", "metadata": {"name": name},
            "status": {"allocatable": {"cpu": "2", "memory": "8Gi", "pods": "110"}}})
        kubeflow.double.put("v1", "pods", {
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": f"system-{name}", "namespace": "kube-system"},
            "spec": {"nodeName": name, "containers": [{"name": "c", "image": "x", "resources": {
                "requests": {"cpu": used, "memory": "1Gi"}}}]},
            "status": {"phase": "Running"}})
    TrainJobs(kubeflow.double, each(lambda pod: ("accuracy=0.9\n", True))).install()
    run = training(kubeflow)
    job = TrainJob("digits-train", IMAGE, COMMAND, num_nodes=2, model_key="r1/train")
    with pytest.raises(StepFailure, match=r"^TrainJob digits-train needs 2 pod\(s\) of 2 CPU "
                                          r"and 4g each at once; the cluster can still allocate "
                                          r"box-control-plane 1\.05 CPU/7\.0 GiB, box-worker "
                                          r"1\.90 CPU/7\.0 GiB"):
        run.run(job)
    assert kubeflow.double.get(TRAINER_API, "trainjobs", run.namespace, "digits-train") is None
    run.resources = {"cpus": 0.9, "memory": "2g"}
    assert run.run(job).succeeded  # the same job at what the nodes can hold


def two_nodes(kubeflow) -> None:
    for name in ("lab-a", "lab-b"):
        kubeflow.double.put("v1", "nodes", {
            "apiVersion": "v1", "kind": "Node", "metadata": {"name": name},
            "status": {"allocatable": {"cpu": "8", "memory": "32Gi", "pods": "110"}}})


def test_a_multi_node_job_on_a_read_write_once_store_is_refused_on_existing(kubeflow) -> None:
    """`existing`, two nodes, the store claim ReadWriteOnce (kfbox's own, on the default
    class): a 2-node job's pods could land on both nodes and only one can mount the volume,
    so kfbox refuses in one line naming the claim, its access mode, its class and the fix."""
    two_nodes(kubeflow)
    TrainJobs(kubeflow.double, each(lambda pod: ("accuracy=0.9\n", True))).install()
    run = training(kubeflow)
    run.shared_store = True
    job = TrainJob("digits-train", IMAGE, COMMAND, num_nodes=2, model_key="r1/train")
    with pytest.raises(StepFailure, match=(
            rf"^TrainJob digits-train needs 2 pods at once on a 2-node cluster, but the model "
            rf"store claim {run.namespace}/kfbox-store is ReadWriteOnce \(storage class the "
            r"default\), which one node at a time can mount: give the cluster a ReadWriteMany")):
        run.run(job)
    assert kubeflow.double.get(TRAINER_API, "trainjobs", run.namespace, "digits-train") is None
    assert run.run(TrainJob("one", IMAGE, COMMAND, model_key="r1/one")).succeeded  # 1 node


def test_a_read_write_many_store_serves_a_multi_node_job(kubeflow) -> None:
    """The bound volume's access modes decide: ReadWriteMany (an NFS class, say) is shared."""
    two_nodes(kubeflow)
    TrainJobs(kubeflow.double, each(lambda pod: ("accuracy=0.9\n", True))).install()
    run = training(kubeflow)
    run.shared_store = True
    claim = kubeflow.double.get("v1", "persistentvolumeclaims", run.namespace, "kfbox-store")
    claim["spec"]["storageClassName"] = "nfs"
    claim["status"] = {"phase": "Bound", "accessModes": ["ReadWriteMany"]}
    kubeflow.double.put("v1", "persistentvolumeclaims", claim)
    job = TrainJob("digits-train", IMAGE, COMMAND, num_nodes=2, model_key="r1/train")
    assert run.run(job).succeeded


def test_a_pod_log_that_starts_like_json_is_read_as_the_text_it_is(cluster) -> None:
    """The API server answers a pod's log as plain text; a rank's first line is often torch's
    `[W... TCPStore.cpp] [c10d] ...` warning, which a client sniffing for JSON took for a list
    (a CI run failed so)."""
    cluster.kube.apply({"apiVersion": "v1", "kind": "Pod",
                        "metadata": {"name": "node-0", "namespace": "default"},
                        "spec": {"containers": [{"name": "node", "image": IMAGE}]}})
    said = ("[W1203 16:57:14.665534480 TCPStore.cpp:138] [c10d] recvValueWithTimeout failed\n"
            "world_size=2\n")
    cluster.double.pod_logs["default", "node-0", "node"] = said
    assert cluster.kube.pod_logs("node-0", "default") == said
    cluster.double.pod_logs["default", "node-0", "node"] = '{"a": 1}\n'
    assert cluster.kube.pod_logs("node-0", "default") == '{"a": 1}\n'
