"""A double of KFP 2.17.0's API server, REST v2beta1 in single-user mode as KFP standalone
(env/platform-agnostic) runs it, for the real `kfp.Client` (kfp 2.17.3) to talk to. A double
because no cluster runs here: what it does is only what the tests need (healthz, upload, list a
pipeline's versions, experiments, create, get and terminate a run), and each rule it enforces
names the upstream file at tag 2.17.0 (kubeflow/pipelines) it comes from. Paths below are that
repository's, under backend/.

A run progresses one state per GET (PENDING, RUNNING, then its end) over the Argo nodes KFP's
compiler makes of the uploaded spec; `fail` names container tasks whose executor fails, `hold`
keeps runs RUNNING until terminated."""

from __future__ import annotations

import json
import re
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.parser import BytesParser
from email.policy import HTTP
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import yaml

from tests.support.net import http_server

API = "/apis/v2beta1"
MAX_FILE = 32 << 20
"""src/apiserver/common/const.go MaxFileLength: an upload's size limit."""
PIPELINE_NAME = re.compile(r"^[a-z0-9][a-z0-9-]{0,127}$")
"""src/apiserver/common/utils.go ValidatePipelineName: what pipelineInfo.name may be."""
SPEC_FIELDS = {"pipelineInfo", "deploymentSpec", "sdkVersion", "schemaVersion", "components",
               "root", "defaultPipelineRoot", "pipeline_info", "deployment_spec", "sdk_version",
               "schema_version", "default_pipeline_root"}
"""api/v2alpha1 pipeline_spec.proto PipelineSpec's fields: template.go isPipelineSpec unmarshals
strictly, so a spec with any other top-level key is not a v2 spec."""
RUN_FIELDS = {"experiment_id", "display_name", "description", "pipeline_version_id",
              "pipeline_spec", "pipeline_version_reference", "runtime_config", "service_account",
              "recurring_run_id", "storage_state", "plugins_input", "plugins_output"}
"""api/v2beta1/run.proto Run's fields a request may carry; the gateway decodes strictly
(src/apiserver/common/utils.go CustomMarshaler: DiscardUnknown false)."""
SOURCES = ("pipeline_version_id", "pipeline_spec", "pipeline_version_reference")
"""run.proto: the oneof pipeline_source; two of them fail the gateway's decode."""
EXPERIMENT_FIELDS = {"experiment_id", "display_name", "description", "namespace",
                     "created_at", "last_run_created_at", "storage_state"}
EPOCH = "1970-01-01T00:00:00Z"
"""src/apiserver/server/api_converter.go toApiRun: finished_at while a run has not finished."""
NOT_ENDED = "0001-01-01T00:00:00Z"
"""src/common/util/workflow.go: a task's end_time before it ends (a zero metav1.Time)."""
RETRY_WHEN_TERMINATING = ("PENDING", "RUNNING", "PAUSED")
"""src/apiserver/storage/run_store.go TerminateRun: the states a run may be terminated in."""


class Refused(Exception):
    def __init__(self, status: int, body: dict[str, Any] | str) -> None:
        super().__init__(status)
        self.status = status
        self.body = body


def gateway_error(status: int, code: int, chain: str, external: str | None = None) -> Refused:
    """grpc-gateway v2 DefaultHTTPErrorHandler of a KFP UserError (src/common/util/error.go
    GRPCStatus): `message` the internal wrap chain, `details[0]` the user-facing message; an
    error the gateway makes itself (a body it cannot decode) has no details."""
    body: dict[str, Any] = {"code": code, "message": chain}
    if external is not None:
        body["details"] = [{"@type": "type.googleapis.com/google.rpc.Status", "code": code,
                            "message": external}]
    return Refused(status, body)


def upload_error(status: int, message: str) -> Refused:
    """src/apiserver/server/pipeline_upload_server.go writeErrorToResponse: the v1beta1 Error
    shape, not the gateway's."""
    return Refused(status, {"error_message": message, "error_details": message})


def stamp(at: datetime) -> str:
    return at.strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class Node:
    """An Argo node as a task detail: its display name, and the container task it runs."""

    name: str
    task: str = ""
    """The pipeline task whose executor this node is, or whose DAG it is ("" for system nodes)."""
    depends: tuple[str, ...] = ()


@dataclass
class Run:
    body: dict[str, Any]
    nodes: list[Node]
    gets: int = 0
    state: str = "PENDING"
    history: list[str] = field(default_factory=lambda: ["PENDING"])
    created: datetime = field(default_factory=lambda: datetime.now(UTC).replace(microsecond=0))


def argo_nodes(spec: dict[str, Any], workflow: str) -> list[Node]:
    """The nodes KFP 2.17.0's Argo compiler makes of a spec (src/v2/compiler/argocompiler:
    argo.go, dag.go, container.go), by display name: the workflow's own, `root-driver` and
    `root`; per container task T `T-driver`, `T` and its pod `executor`; per ParallelFor
    `for-loop-N`, `iteration-driver`, `iteration-iterations` and for each item
    `iteration-iterations(i:i)`, `iteration-item-driver`, `iteration-item`, then its tasks."""
    components = spec.get("components") or {}
    defaults = {name: p.get("defaultValue") for name, p in
                ((spec.get("root") or {}).get("inputDefinitions") or {})
                .get("parameters", {}).items()}
    nodes = [Node(workflow), Node("root-driver"), Node("root")]

    def dag(tasks: dict[str, Any]) -> None:
        for key, task in tasks.items():
            component = components.get(task["componentRef"]["name"]) or {}
            depends = tuple(task.get("dependentTasks") or ())
            if "dag" not in component:
                nodes.extend([Node(f"{key}-driver", key, depends), Node(key, key, depends),
                              Node("executor", key, depends)])
                continue
            items = (task.get("parameterIterator") or {}).get("items") or {}
            values = (json.loads(items["raw"]) if "raw" in items
                      else defaults.get(items.get("inputParameter", "")
                                        .removeprefix("pipelinechannel--")) or [])
            nodes.extend([Node(key, depends=depends), Node("iteration-driver"),
                          Node("iteration-iterations")])
            for i in range(len(values)):
                nodes.extend([Node(f"iteration-iterations({i}:{i})"),
                              Node("iteration-item-driver"), Node("iteration-item")])
                dag(component["dag"].get("tasks") or {})

    dag(((spec.get("root") or {}).get("dag") or {}).get("tasks") or {})
    return nodes


def read_spec(filename: str, data: bytes) -> dict[str, Any]:
    """What the upload accepts as a pipeline spec: ReadPipelineFile (server/util.go: a
    .yaml/.yml/.json file as is, else zip or gzip, within MaxFileLength), then template.New and
    NewV2SpecTemplate (template/template.go, template/v2_template.go) as CreatePipelineAndPipeline-
    Version calls them, their refusals an InvalidArgument's external message (HTTP 400)."""
    if len(data) > MAX_FILE or not filename.endswith((".yaml", ".yml", ".json")):
        raise upload_error(400, "Failed to read a pipeline spec file")  # zip/gzip: not here
    try:
        docs = [d for d in yaml.safe_load_all(data) if d is not None]
    except yaml.YAMLError as exc:
        raise upload_error(400, f"unable to decode yaml document: {exc}") from exc
    specs = [d for d in docs if isinstance(d, dict) and "pipelineInfo" in d]
    if not specs or not set(specs[0]) <= SPEC_FIELDS or not specs[0].get("root") \
            or not (specs[0].get("pipelineInfo") or {}).get("name"):
        raise upload_error(400, "unknown template format")  # template.go isPipelineSpec
    if len(specs) > 1:
        raise upload_error(400, "multiple pipeline specs provided")
    spec = specs[0]
    if spec.get("schemaVersion") != "2.1.0":
        raise upload_error(400, "KFP only supports schema version 2.1.0, but the pipeline spec "
                                f"has version {spec.get('schemaVersion')}")
    name = spec["pipelineInfo"]["name"]
    if not PIPELINE_NAME.match(name):  # resource_manager.go CreatePipelineAndPipelineVersion
        raise upload_error(400, "pipeline's name must contain only lowercase alphanumeric "
                                "characters or '-' and must start with alphanumeric characters")
    return spec


class KfpApiDouble:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.pipelines: dict[str, dict[str, Any]] = {}
        self.versions: dict[str, dict[str, Any]] = {}
        self.specs: dict[str, dict[str, Any]] = {}
        self.uploads: list[bytes] = []
        self.experiments: dict[str, dict[str, Any]] = {}
        self.runs: dict[str, Run] = {}
        self.terminated: list[str] = []
        self.fail: set[str] = set()
        """Container tasks whose executor fails (an Argo node Failed: its task FAILED)."""
        self.hold = False
        """Runs stay RUNNING (until terminated)."""

    # ---- the routes --------------------------------------------------------------------------

    def handle(self, method: str, path: str, query: dict[str, str], body: bytes,
               headers: Any) -> dict[str, Any]:
        with self.lock:
            if path == f"{API}/healthz":  # src/apiserver/main.go: any method, not the gateway
                return {"commit_sha": "unknown", "tag_name": "unknown", "multi_user": False}
            if path == f"{API}/pipelines/upload" and method == "POST":
                return self.upload(query, body, headers)
            if (found := re.fullmatch(rf"{API}/pipelines/([^/]+)/versions", path)) \
                    and method == "GET":
                return self.list_versions(found.group(1))
            if path == f"{API}/experiments":
                return self.create_experiment(body) if method == "POST" \
                    else self.list_experiments(query)
            if path == f"{API}/runs" and method == "POST":
                return self.create_run(body)
            if (found := re.fullmatch(rf"{API}/runs/([^/:]+):terminate", path)) \
                    and method == "POST":
                return self.terminate(found.group(1))
            if (found := re.fullmatch(rf"{API}/runs/([^/:]+)", path)) and method == "GET":
                return self.get_run(found.group(1))
        raise gateway_error(404, 5, "Not Found")

    def upload(self, query: dict[str, str], body: bytes, headers: Any) -> dict[str, Any]:
        """pipeline_upload_server.go uploadPipeline, in its order."""
        files = multipart_files(headers.get("Content-Type", ""), body)
        if "uploadfile" not in files:  # FormFileKey
            raise upload_error(400, "Failed to read pipeline from file")
        filename, data = files["uploadfile"]
        spec = read_spec(filename, data)
        # buildPipelineName (server/pipeline_server.go): the name query, display_name, the file.
        name = query.get("name") or query.get("display_name") or filename
        if len(name) > 128:  # validation/length.go Pipeline.Name, written by http.Error
            raise Refused(400, "Invalid input error: Pipeline.Name length cannot exceed 128\n")
        if any(p["name"] == name for p in self.pipelines.values()):
            # storage/pipeline_store.go: unique (Namespace, Name) -> AlreadyExists -> 409
            raise upload_error(409, "Failed to create a pipeline and a pipeline version")
        now = stamp(datetime.now(UTC))
        pipeline = {"pipeline_id": str(uuid.uuid4()), "name": name,
                    "display_name": query.get("display_name") or name, "created_at": now}
        version = {"pipeline_id": pipeline["pipeline_id"],
                   "pipeline_version_id": str(uuid.uuid4()), "name": name,
                   "display_name": pipeline["display_name"], "created_at": now,
                   "pipeline_spec": spec}
        self.pipelines[pipeline["pipeline_id"]] = pipeline
        self.versions[version["pipeline_version_id"]] = version
        self.uploads.append(data)
        return pipeline  # toApiPipeline: no version fields

    def list_versions(self, pipeline_id: str) -> dict[str, Any]:
        if pipeline_id not in self.pipelines:  # pipeline_server.go FetchNamespaceFromPipelineId
            raise gateway_error(404, 5, f"ResourceNotFoundError: Pipeline {pipeline_id} not found",
                                f"Pipeline {pipeline_id} not found")
        found = [v for v in self.versions.values() if v["pipeline_id"] == pipeline_id]
        return {"pipeline_versions": found, "total_size": len(found)} if found else {}

    def list_experiments(self, query: dict[str, str]) -> dict[str, Any]:
        """server/list_request_util.go: the filter is protojson of filter.proto's Filter
        (predicates with an integer `operation`, EQUALS = 1, and `stringValue`)."""
        wanted = None
        if query.get("filter"):
            for predicate in json.loads(unquote(query["filter"])).get("predicates", []):
                if predicate.get("key") == "display_name" and predicate.get("operation") in (
                        1, "EQUALS"):
                    wanted = predicate.get("stringValue", predicate.get("string_value"))
        found = [e for e in self.experiments.values()
                 if wanted is None or e["display_name"] == wanted]
        return {"experiments": found, "total_size": len(found)} if found else {}

    def create_experiment(self, body: bytes) -> dict[str, Any]:
        """server/experiment_server.go CreateExperiment."""
        request = decode(body, EXPERIMENT_FIELDS)
        name = request.get("display_name") or ""
        if not name:  # api_converter.go toModelExperiment: an internal error, 500
            raise gateway_error(500, 13, "Experiment must have a non-empty name",
                                "Internal Server Error")
        if any(e["display_name"] == name for e in self.experiments.values()):
            message = (f"Failed to create a new experiment. The name {name} already exists. "
                       "Please specify a new name")  # storage/experiment_store.go
            raise gateway_error(409, 6, message, message)
        experiment = {"experiment_id": str(uuid.uuid4()), "display_name": name,
                      "created_at": stamp(datetime.now(UTC)), "last_run_created_at": EPOCH,
                      "storage_state": "AVAILABLE"}
        self.experiments[experiment["experiment_id"]] = experiment
        return experiment

    def create_run(self, body: bytes) -> dict[str, Any]:
        """server/run_server.go CreateRun, resource/resource_manager.go CreateRun."""
        request = decode(body, RUN_FIELDS)
        if sum(bool(request.get(s)) for s in SOURCES) > 1:
            raise gateway_error(400, 3, "proto: oneof pipeline_source is already set")
        if request.get("plugins_output") is not None:
            raise gateway_error(409, 10, "plugins_output must not be set by the client",
                                "plugins_output is server-owned")
        if not request.get("display_name"):  # api_converter.go toModelRun: internal, 500
            raise gateway_error(500, 13, "Failed to create a new run: InvalidInputError: Run "
                                         "name cannot be empty", "Internal Server Error")
        experiment = request.get("experiment_id") or self.default_experiment()
        if experiment not in self.experiments:
            raise gateway_error(404, 5, f"ResourceNotFoundError: Experiment {experiment} not "
                                        "found", f"Experiment {experiment} not found")
        reference = request.get("pipeline_version_reference") or {}
        version = self.versions.get(reference.get("pipeline_version_id")
                                    or request.get("pipeline_version_id") or "")
        if request.get("pipeline_spec"):
            spec = request["pipeline_spec"]
        elif version is None or (reference.get("pipeline_id")
                                 and version["pipeline_id"] != reference["pipeline_id"]):
            # resource_manager.go fetchTemplateFromPipelineVersion errors are wrapped as
            # internal errors (NewInternalServerError): 500, whatever the cause.
            raise gateway_error(500, 13, "Failed to create a new run: Failed to fetch a "
                                         "template: ResourceNotFoundError: PipelineVersion "
                                         f"{reference.get('pipeline_version_id')} not found",
                                "Internal Server Error")
        else:
            spec = version["pipeline_spec"]
        workflow = f"{spec['pipelineInfo']['name']}-{uuid.uuid4().hex[:5]}"
        run_id = str(uuid.uuid4())
        self.runs[run_id] = Run(
            {**request, "experiment_id": experiment,
             **({"pipeline_version_reference": {"pipeline_id": version["pipeline_id"],
                                                "pipeline_version_id":
                                                    version["pipeline_version_id"]}}
                if version else {})},
            argo_nodes(spec, workflow))
        return self.run_json(run_id)

    def default_experiment(self) -> str:
        """resource_manager.go: an empty experiment_id means `Default`, made when missing."""
        for experiment in self.experiments.values():
            if experiment["display_name"] == "Default":
                return experiment["experiment_id"]
        return self.create_experiment(b'{"display_name": "Default"}')["experiment_id"]

    def get_run(self, run_id: str) -> dict[str, Any]:
        run = self.known(run_id)
        run.gets += 1
        if run.state == "CANCELING":
            self.move(run, "FAILED")  # workflow.go: a terminated workflow ends Failed
        elif run.state == "PENDING":
            self.move(run, "RUNNING")
        elif run.state == "RUNNING" and not self.hold:
            failed = any(n.task in self.fail for n in run.nodes)
            self.move(run, "FAILED" if failed else "SUCCEEDED")
        return self.run_json(run_id)

    def terminate(self, run_id: str) -> dict[str, Any]:
        run = self.known(run_id)
        if run.state not in RETRY_WHEN_TERMINATING:
            message = f"Failed to terminate a run {run_id}. Row not found"
            raise gateway_error(400, 3, message, message)
        self.move(run, "CANCELING")
        self.terminated.append(run_id)
        return {}

    # ---- helpers -----------------------------------------------------------------------------

    def known(self, run_id: str) -> Run:
        if run_id not in self.runs:
            raise gateway_error(404, 5, f"Failed to get a run: ResourceNotFoundError: Run "
                                        f"{run_id} not found", f"Run {run_id} not found")
        return self.runs[run_id]

    @staticmethod
    def move(run: Run, state: str) -> None:
        run.state = state
        run.history.append(state)

    def run_json(self, run_id: str) -> dict[str, Any]:
        """api_converter.go toApiRun: snake_case, zero values left out, finished_at always."""
        run = self.runs[run_id]
        ended = run.state in ("SUCCEEDED", "FAILED")
        at = [stamp(run.created + timedelta(seconds=i)) for i in range(len(run.history))]
        body = {"run_id": run_id, **{k: v for k, v in run.body.items() if v},
                "storage_state": "AVAILABLE", "service_account": "pipeline-runner",
                "created_at": stamp(run.created), "scheduled_at": stamp(run.created),
                "finished_at": at[-1] if ended else EPOCH, "state": run.state,
                "state_history": [{"update_time": t, "state": s}
                                  for t, s in zip(at, run.history, strict=True)]}
        if run.state != "PENDING":
            body["run_details"] = {"task_details": self.task_details(run_id, run)}
        return body

    def task_details(self, run_id: str, run: Run) -> list[dict[str, Any]]:
        """One task per Argo node (server/report_server.go; api_converter.go
        toApiPipelineTaskDetail): no pod_name, inputs, outputs or error; a node Argo omitted
        after a failure has no state; the whole chain above a failed executor is FAILED."""
        failed = {n.task for n in run.nodes if n.task in self.fail}
        omitted = set()
        changed = True
        while changed:  # dag.go: depends "X.Succeeded": what follows a failure is Omitted
            changed = False
            for node in run.nodes:
                if node.task and node.task not in omitted and set(node.depends) & (
                        failed | omitted):
                    omitted.add(node.task)
                    changed = True
        tasks = []
        for i, node in enumerate(run.nodes):
            start = run.created + timedelta(seconds=1 + i)
            detail: dict[str, Any] = {
                "run_id": run_id, "task_id": str(uuid.uuid5(uuid.NAMESPACE_OID, f"{run_id}{i}")),
                "display_name": node.name, "create_time": stamp(run.created),
                "child_tasks": [{"pod_name": f"{node.name}-{i}"}]}
            if node.task in omitted:
                tasks.append(detail)
                continue
            detail["start_time"] = stamp(start)
            if run.state == "RUNNING":
                detail.update(state="RUNNING", end_time=NOT_ENDED)
            else:
                # The failed executor's chain up to the workflow's own node fails with it.
                bad = node.task in failed or (run.state == "FAILED" and node.name in (
                    "root", run.nodes[0].name))
                detail.update(state="FAILED" if bad else "SUCCEEDED",
                              end_time=stamp(start + timedelta(seconds=1)))
            tasks.append(detail)
        return tasks


def decode(body: bytes, fields: set[str]) -> dict[str, Any]:
    """The gateway's strict protojson decode: an unknown field is InvalidArgument (400)."""
    try:
        request = json.loads(body or b"{}")
    except ValueError as exc:
        raise gateway_error(400, 3, f"invalid character in the body: {exc}") from exc
    unknown = set(request) - fields
    if unknown:
        raise gateway_error(400, 3, f'proto: (line 1:2): unknown field "{sorted(unknown)[0]}"')
    return request


def multipart_files(content_type: str, body: bytes) -> dict[str, tuple[str, bytes]]:
    """The file parts of a multipart/form-data body, by field name: (filename, bytes)."""
    if not content_type.startswith("multipart/form-data"):
        return {}
    message = BytesParser(policy=HTTP).parsebytes(
        f"Content-Type: {content_type}\r\n\r\n".encode() + body)
    files = {}
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        filename = part.get_filename()
        if name and filename is not None:
            files[name] = (filename, part.get_payload(decode=True) or b"")
    return files


@contextmanager
def serve(double: KfpApiDouble) -> Iterator[int]:
    """Run the double on 127.0.0.1 in a thread; yields its port."""

    class Handler(BaseHTTPRequestHandler):
        def _any(self) -> None:
            url = urlsplit(self.path)
            query = {k: v[0] for k, v in parse_qs(url.query, keep_blank_values=True).items()}
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            try:
                status, answer = 200, double.handle(self.command, url.path, query, body,
                                                    self.headers)
            except Refused as refused:
                status, answer = refused.status, refused.body
            data = answer.encode() if isinstance(answer, str) else json.dumps(answer).encode()
            self.send_response(status)
            self.send_header("Content-Type", "text/plain" if isinstance(answer, str)
                             else "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = do_DELETE = _any

        def log_message(self, *args: Any) -> None:
            pass

    with http_server(Handler) as port:
        yield port
