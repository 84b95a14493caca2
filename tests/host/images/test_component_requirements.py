"""The component images' requirements: the notebook image is built on the ML runtime image, so
a kernel has every package the jobs have, and the Kubeflow SDK the notebook gets is the release
kfbox itself drives (and its container-backend driver was written for)."""

from __future__ import annotations

import tomllib
from pathlib import Path

from kfbox.engines.lite.training import WRITTEN_FOR_SDK
from kfbox.host.images import build, wheelhouse

ROOT = Path(__file__).resolve().parents[3]


def test_the_notebook_image_builds_on_the_runtime_and_keeps_its_requirements() -> None:
    assert build.BUILT_ON == {"jupyter": "runtime", "tracking": "runtime"}
    runtime = build._requirements(build._component_dir("runtime"))
    jupyter = build._requirements(build._component_dir("jupyter"))
    # One resolution for both layers: the runtime's pins first, the notebook's on top.
    assert jupyter[: len(runtime)] == runtime
    assert {"jupyterlab", "ipykernel"} <= set(jupyter)


def test_the_notebook_and_the_harness_log_with_the_tracking_servers_mlflow() -> None:
    [server] = [r for r in build._requirements(build._component_dir("tracking"))
                if r.startswith("mlflow[auth]==")]
    version = server.split("==")[1]
    assert f"mlflow-skinny=={version}" in build._requirements(build._component_dir("jupyter"))
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    assert f"mlflow-skinny=={version}" in project


def test_the_notebook_gets_the_kubeflow_sdk_release_kfbox_drives() -> None:
    jupyter = build._requirements(build._component_dir("jupyter"))
    [sdk] = [r for r in jupyter if r.startswith("kubeflow")]
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    assert f"kubeflow=={sdk.split('==')[1]}" in project
    assert sdk.startswith("kubeflow[docker]==")  # the container backend's Docker client
    assert sdk.split("==")[1] in WRITTEN_FOR_SDK


def test_pipeline_tasks_run_the_kfp_release_kfbox_compiles_with() -> None:
    """A task runs its component with the image's kfp (nothing installed at start), so the
    runtime's kfp is the one kfbox compiles the journey pipeline with, and the kfp-server-api it
    needs (PyPI has its source only) is pinned beside it and built into the wheelhouse."""
    runtime = build._requirements(build._component_dir("runtime"))
    [kfp] = [r for r in runtime if r.startswith("kfp==")]
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    assert kfp in project
    [server_api] = [r for r in runtime if wheelhouse.project_name(r) in wheelhouse.SOURCE_ONLY]
    assert server_api == f"kfp-server-api=={kfp.split('==')[1]}"
    assert wheelhouse.project_name("KFP_Server_API[x]>=2; python_version>'3'") == "kfp-server-api"
