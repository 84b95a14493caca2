"""The Model Registry double (mr_double.py, Kubeflow Model Registry v0.3.8's REST server): the
real `kubeflow.hub.ModelRegistryClient` registers, reads, lists and updates models through it,
and is refused a version it already has; then the double refusing what the upstream server
refuses, each rule asked over HTTP as a client would, and letting through what upstream lets
through."""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from typing import Any

import pytest
import requests
import upstream
from kubeflow.hub import ModelRegistryClient
from model_registry.exceptions import StoreError
from mr_double import API, ModelRegistryDouble, serve
from mr_openapi.exceptions import ServiceException
from pydantic import ValidationError

# kubeflow 0.5.0's register_model passes model-registry 0.3.14 the deprecated `description`.
pytestmark = pytest.mark.filterwarnings(
    "ignore:The 'description' parameter is deprecated:DeprecationWarning")


@pytest.fixture
def mr() -> Iterator[tuple[ModelRegistryDouble, int]]:
    double = ModelRegistryDouble()
    with serve(double) as port:
        yield double, port


@pytest.fixture
def api(mr) -> str:
    return f"http://127.0.0.1:{mr[1]}{API}"


def client(port: int) -> ModelRegistryClient:
    """The client as kfbox makes it: http, the port in the URL, no token (over http the client
    only warns that it has none)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "User access token is missing")
        return ModelRegistryClient(f"http://127.0.0.1:{port}", author="kfbox")


def string(value: str) -> dict[str, str]:
    return {"string_value": value, "metadataType": "MetadataStringValue"}


def post(url: str, body: Any) -> requests.Response:
    return requests.post(url, json=body, timeout=10)


def patch(url: str, body: Any) -> requests.Response:
    return requests.patch(url, json=body, timeout=10)


def refusal(response: requests.Response) -> tuple[int, str, str]:
    body = response.json()
    assert set(body) == {"code", "message"}  # pkg/openapi Error
    return response.status_code, body["code"], body["message"]


def test_the_facts_match_the_double() -> None:
    facts = upstream.component("model-registry")
    assert facts["api_path"] == API
    assert facts["readiness_path"] == "/readyz/health"
    assert facts["api_service"] == {"name": "kubeflow/model-registry-service", "http_port": 8080}


def test_the_real_client_registers_reads_lists_and_updates(mr) -> None:
    double, port = mr
    registry = client(port)
    assert [(c.method, c.path, c.query) for c in double.calls] == [
        ("GET", f"{API}/registered_models", {"pageSize": "1", "sortOrder": "ASC"})]
    double.calls.clear()

    metadata = {"accuracy": 0.97, "epochs": 3, "best": True, "trial": "t-2"}
    model = registry.register_model("digits", "s3://kfbox/digits/1", version="v1",
                                    model_format_name="onnx", model_format_version="1",
                                    version_description="journey 1", metadata=metadata)
    assert (model.name, model.id, model.owner, model.state.value) == ("digits", "1", "kfbox",
                                                                      "LIVE")
    # register_model: find the model (a 404 is "none"), create it, look for the version (a
    # 404 again), create the version, then its artifact under the version.
    assert [(c.method, c.path.removeprefix(API), c.query) for c in double.calls] == [
        ("GET", "/registered_model", {"name": "digits"}),
        ("POST", "/registered_models", {}),
        ("GET", "/model_version", {"name": "v1", "parentResourceId": "1"}),
        ("POST", "/model_versions", {}),
        ("POST", "/model_versions/2/artifacts", {})]
    assert double.calls[1].body == {"name": "digits", "owner": "kfbox", "state": "LIVE"}
    assert double.calls[3].body["customProperties"]["epochs"] == {
        "int_value": "3", "metadataType": "MetadataIntValue"}
    assert double.calls[4].body == {
        "name": "digits", "artifactType": "model-artifact", "modelFormatName": "onnx",
        "modelFormatVersion": "1", "uri": "s3://kfbox/digits/1", "state": "UNKNOWN"}

    assert registry.get_model("digits").id == "1"
    version = registry.get_model_version("digits", "v1")
    assert (version.id, version.registered_model_id, version.author, version.description) == (
        "2", "1", "kfbox", "journey 1")
    assert version.custom_properties == metadata
    artifact = registry.get_model_artifact("digits", "v1")
    assert (artifact.uri, artifact.name, artifact.model_format_name) == (
        "s3://kfbox/digits/1", "digits", "onnx")
    assert [v.name for v in registry.list_model_versions("digits")] == ["v1"]

    found = registry.get_model("digits")
    assert found.custom_properties is None  # the server's {} reads back as None
    found.custom_properties = {"alias": "v1"}
    updated = registry.update_model(found)
    assert updated.custom_properties == {"alias": "v1"}
    assert double.calls[-1].method == "PATCH" and double.calls[-1].body == {
        "customProperties": {"alias": string("v1")}, "owner": "kfbox", "state": "LIVE"}
    assert registry.get_model("digits").custom_properties == {"alias": "v1"}
    assert double.registered_model("digits")["customProperties"] == {"alias": string("v1")}

    registry.register_model("digits", "s3://kfbox/digits/2", version="v2",
                            model_format_name="onnx", model_format_version="1")
    assert [v.name for v in registry.list_model_versions("digits")] == ["v1", "v2"]
    assert registry.get_model_artifact("digits", "v2").uri == "s3://kfbox/digits/2"
    assert [a["uri"] for a in double.model_artifacts("digits", "v2")] == ["s3://kfbox/digits/2"]
    assert registry.get_model("digits").custom_properties == {"alias": "v1"}  # kept
    # Models and versions are rows of one Context table: one id sequence.
    assert [v["id"] for v in double.model_versions("digits")] == ["2", "3"]


def test_the_client_refuses_a_version_it_already_has(mr) -> None:
    double, port = mr
    registry = client(port)
    registry.register_model("digits", "s3://kfbox/a", version="v1", model_format_name="onnx",
                            model_format_version="1")
    double.calls.clear()
    with pytest.raises(StoreError, match="Version v1 already exists"):
        registry.register_model("digits", "s3://kfbox/b", version="v1",
                                model_format_name="onnx", model_format_version="1")
    # The client finds the version itself and never asks the server to create it.
    assert [c.method for c in double.calls] == ["GET", "GET"]
    assert len(double.model_versions("digits")) == 1
    with pytest.raises(ValueError, match="not found"):
        registry.get_model("nope")


def test_the_client_refuses_an_int_of_ten_digits_after_making_the_model(mr) -> None:
    double, port = mr
    registry = client(port)
    # mr_openapi's MetadataIntValue allows at most 9 digits (the server: any int32); the
    # client checks it only when it builds the version, after making the model.
    with pytest.raises(ValidationError):
        registry.register_model("digits", "s3://kfbox/a", version="v1", model_format_name="onnx",
                                model_format_version="1", metadata={"bytes": 10 ** 9})
    assert double.registered_model("digits") is not None
    assert double.model_versions("digits") == []


def test_the_client_cannot_start_before_the_server_is_ready(mr) -> None:
    double, port = mr
    double.ready = False
    health = requests.get(f"http://127.0.0.1:{port}/readyz/health", timeout=10)
    assert (health.status_code, health.text) == (503, "model registry service not yet "
                                                      "initialized")
    assert requests.get(f"http://127.0.0.1:{port}{API}/registered_models",
                        timeout=10).status_code == 503
    with pytest.raises(ServiceException):
        client(port)
    double.ready = True
    assert requests.get(f"http://127.0.0.1:{port}/readyz/health", timeout=10).text == "OK"
    assert requests.post(f"http://127.0.0.1:{port}/readyz/health", timeout=10).status_code == 405


def test_the_double_refuses_registered_models_as_upstream_does(api) -> None:
    made = post(f"{api}/registered_models", {"name": "digits"})
    assert made.status_code == 201
    body = made.json()
    assert body == {"customProperties": {}, "name": "digits", "id": "1", "state": "LIVE",
                    "createTimeSinceEpoch": body["createTimeSinceEpoch"],
                    "lastUpdateTimeSinceEpoch": body["lastUpdateTimeSinceEpoch"]}
    assert body["createTimeSinceEpoch"].isdigit()

    assert refusal(post(f"{api}/registered_models", {"name": "digits"})) == (
        409, "Conflict", "registered model with name digits already exists: conflict")
    assert post(f"{api}/registered_models", {"name": "DIGITS"}).status_code == 409
    assert refusal(post(f"{api}/registered_models", {"owner": "kfbox"})) == (
        422, "Bad Request", "required field 'name' is zero value.")
    assert refusal(post(f"{api}/registered_models", {"name": "m", "alias": "v1"})) == (
        400, "Bad Request", 'json: unknown field "alias"')
    assert post(f"{api}/registered_models", {"Name": "m2"}).status_code == 201  # Go's folding
    assert refusal(post(f"{api}/registered_models", {"name": "m", "state": "GONE"})) == (
        400, "Bad Request", "GONE is not a valid RegisteredModelState")
    assert refusal(post(f"{api}/registered_models", {"name": 3}))[0] == 400

    found = requests.get(f"{api}/registered_model", params={"name": "nope"}, timeout=10)
    assert refusal(found) == (404, "Not Found",
                              "no registered models found for name=nope, externalId=: not found")
    assert refusal(requests.get(f"{api}/registered_model", timeout=10))[0] == 400
    # The name is matched with LIKE: `_` is a wildcard, and the collation ignores case.
    like = requests.get(f"{api}/registered_model", params={"name": "dig_ts"}, timeout=10)
    assert like.json()["name"] == "digits"
    assert requests.get(f"{api}/registered_models/x", timeout=10).json()["message"] == (
        'invalid registered model ID: strconv.ParseInt: parsing "x": invalid syntax: '
        "bad request")
    assert refusal(requests.get(f"{api}/registered_models/99", timeout=10)) == (
        404, "Not Found", "no registered model found for id 99: not found")


def test_the_double_refuses_custom_properties_as_upstream_does(api) -> None:
    def create(name: str, value: Any) -> requests.Response:
        return post(f"{api}/registered_models", {"name": name, "customProperties": {"k": value}})

    assert create("a", string("x")).status_code == 201
    assert create("b", {"int_value": "7", "metadataType": "MetadataIntValue"}).json()[
        "customProperties"] == {"k": {"int_value": "7", "metadataType": "MetadataIntValue"}}
    unknown = refusal(create("c", {"string_value": "x", "metadataType": "MetadataText"}))
    assert unknown[:2] == (400, "Bad Request") and "metadataType not found for k" in unknown[2]
    assert "metadataType not found" in refusal(create("d", {"string_value": "x"}))[2]
    assert "metadataType not found" in refusal(create("e", {
        "string_value": "x", "metadatatype": "MetadataStringValue"}))[2]  # the key is exact
    assert "metadataType not found" in refusal(create("f", {
        "proto_value": "eA==", "type": "t", "metadataType": "MetadataProtoValue"}))[2]
    wrong = refusal(create("g", {"string_value": 5, "metadataType": "MetadataStringValue"}))
    assert wrong[0] == 400 and wrong[2].startswith(
        "failed to unmarshal MetadataValue as MetadataStringValue")
    assert refusal(create("h", "x"))[2] == (
        "failed to unmarshal JSON into map for the discriminator lookup")
    big = refusal(create("i", {"int_value": "2147483648", "metadataType": "MetadataIntValue"}))
    assert big[0] == 400 and big[2].endswith('parsing "2147483648": value out of range '
                                             "for key k: bad request")
    assert refusal(create("j", {"int_value": "1.5", "metadataType": "MetadataIntValue"}))[0] == \
        400


def test_the_double_refuses_model_versions_as_upstream_does(api) -> None:
    model = post(f"{api}/registered_models", {"name": "digits"}).json()
    other = post(f"{api}/registered_models", {"name": "other"}).json()

    def version(body: dict[str, Any]) -> requests.Response:
        return post(f"{api}/model_versions", body)

    made = version({"name": "v1", "registeredModelId": model["id"]})
    assert made.status_code == 201
    assert made.json()["registeredModelId"] == model["id"] and made.json()["state"] == "LIVE"
    assert refusal(version({"name": "v1", "registeredModelId": model["id"]})) == (
        409, "Conflict", "model version with name v1 already exists: conflict")
    assert version({"name": "v1", "registeredModelId": other["id"]}).status_code == 201
    assert refusal(version({"name": "v2"})) == (
        422, "Bad Request", "required field 'registeredModelId' is zero value.")
    assert refusal(version({"name": "v2", "registeredModelId": "digits"}))[0] == 400
    assert refusal(version({"name": "v2", "registeredModelId": model["id"], "uri": "s3://x"})) \
        == (400, "Bad Request", 'json: unknown field "uri"')
    # Upstream does not look the registered model up: an unknown id is stored as given.
    assert version({"name": "v2", "registeredModelId": "999"}).status_code == 201

    found = requests.get(f"{api}/model_version",
                         params={"name": "v9", "parentResourceId": model["id"]}, timeout=10)
    assert refusal(found) == (404, "Not Found", "no model versions found for name=v9, "
                                                "parentResourceId=1, externalId=: not found")
    assert refusal(requests.get(f"{api}/model_version", params={"name": "v1"},
                                timeout=10))[0] == 400
    renamed = patch(f"{api}/model_versions/{made.json()['id']}", {"name": "v3"})
    assert refusal(renamed) == (400, "Bad Request", 'json: unknown field "name"')


def test_the_double_patches_as_upstream_does(api) -> None:
    model = post(f"{api}/registered_models", {
        "name": "digits", "description": "d", "customProperties": {"a": string("1"),
                                                                   "b": string("2")}}).json()
    url = f"{api}/registered_models/{model['id']}"
    kept = patch(url, {"owner": "kfbox"}).json()
    assert (kept["description"], set(kept["customProperties"])) == ("d", {"a", "b"})
    assert int(kept["lastUpdateTimeSinceEpoch"]) >= int(kept["createTimeSinceEpoch"])
    replaced = patch(url, {"customProperties": {"alias": string("v1")}}).json()
    assert replaced["customProperties"] == {"alias": string("v1")}  # the whole map
    assert patch(url, {"customProperties": {}}).json()["customProperties"] == {}
    assert refusal(patch(url, {"name": "renamed"}))[2] == 'json: unknown field "name"'
    assert refusal(patch(f"{api}/registered_models/42", {}))[0] == 404


def test_the_double_takes_artifacts_as_upstream_does(api) -> None:
    model = post(f"{api}/registered_models", {"name": "digits"}).json()
    version = post(f"{api}/model_versions", {"name": "v1", "registeredModelId": model["id"]})
    url = f"{api}/model_versions/{version.json()['id']}/artifacts"
    artifact = {"artifactType": "model-artifact", "name": "digits", "uri": "s3://x"}

    # Not a strict decode: a field ModelArtifact lacks is dropped, not refused.
    made = post(url, {**artifact, "unknown": 1})
    assert made.status_code == 201 and "unknown" not in made.json()
    assert made.json()["artifactType"] == "model-artifact" and made.json()["name"] == "digits"
    assert refusal(post(url, artifact)) == (
        409, "Conflict", "model artifact with name digits already exists: conflict")
    assert refusal(post(f"{api}/model_versions/77/artifacts", artifact)) == (
        404, "Not Found", "no model version found for id 77: not found")
    assert refusal(post(url, {"name": "x", "uri": "s3://y"}))[2].startswith(
        "invalid artifact type")
    assert refusal(post(url, {**artifact, "name": "y", "state": "READY"}))[0] == 400
    found = requests.get(f"{api}/model_artifact",
                         params={"name": "nope", "parentResourceId": "2"}, timeout=10)
    assert refusal(found)[:2] == (404, "Not Found")


def test_the_double_answers_other_requests_as_upstream_does(api) -> None:
    nul = post(f"{api}/registered_models", {"name": "a\u0000b"})
    assert refusal(nul) == (400, "Bad Request",
                            "Request body contains null bytes which are not allowed")
    missing = requests.get(f"{api}/nothing", timeout=10)
    assert (missing.status_code, missing.text) == (404, "404 page not found\n")
    assert requests.delete(f"{api}/registered_models", timeout=10).status_code == 405
    for name in ("a", "b", "c"):
        post(f"{api}/registered_models", {"name": name})
    first = requests.get(f"{api}/registered_models", params={"pageSize": "2"},
                         timeout=10).json()
    assert [m["name"] for m in first["items"]] == ["a", "b"] and first["size"] == 2
    rest = requests.get(f"{api}/registered_models",
                        params={"pageSize": "2", "nextPageToken": first["nextPageToken"]},
                        timeout=10).json()
    assert ([m["name"] for m in rest["items"]], rest["nextPageToken"]) == (["c"], "")
    assert refusal(requests.get(f"{api}/registered_models", params={"pageSize": "x"},
                                timeout=10))[0] == 400
