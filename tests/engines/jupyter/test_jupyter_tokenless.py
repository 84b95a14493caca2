"""JupyterClient without a token against a real jupyter_server run as Kubeflow's notebook images
run it: no token, served under a base-URL prefix, writes guarded by XSRF."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from nbformat.v4 import new_code_cell
from test_jupyter_client import write_notebook

from kfbox.engines.jupyter import JupyterClient
from kfbox.engines.platform import StepFailure


@pytest.fixture
def client(kubeflow_jupyter_server: Any) -> Iterator[JupyterClient]:
    client = JupyterClient(kubeflow_jupyter_server.url, None, timeout_s=30)
    client.wait_ready()
    yield client
    assert kubeflow_jupyter_server.kernels() == []


def test_runs_a_notebook_in_a_nested_folder_under_the_prefix(
    client: JupyterClient, kubeflow_jupyter_server: Any, tmp_path: Path
) -> None:
    notebook = write_notebook(
        tmp_path / "nb.ipynb",
        new_code_cell("import os\nprint(os.getcwd())"),
        new_code_cell("open('out.txt', 'w').write('hi\\n')"),
    )
    executed = tmp_path / "run" / "nb.executed.ipynb"
    result = client.execute_notebook(notebook, "runs/a/b", executed, timeout_s=60)

    assert result.cells_run == 2
    cells = json.loads(executed.read_text())["cells"]
    root = kubeflow_jupyter_server.root
    assert cells[0]["outputs"][0]["text"] == f"{root / 'runs' / 'a' / 'b'}\n"
    assert (root / "runs/a/b/out.txt").read_text() == "hi\n"
    fetched = client.fetch_dir("runs/a/b", tmp_path / "fetched")
    assert [p.name for p in fetched] == ["nb.executed.ipynb", "nb.ipynb", "out.txt"]


def test_a_failing_cell_is_the_error_shown(client: JupyterClient, tmp_path: Path) -> None:
    notebook = write_notebook(tmp_path / "bad.ipynb", new_code_cell("1 / 0"))
    with pytest.raises(StepFailure, match=r"^cell 1: ZeroDivisionError: division by zero$"):
        client.execute_notebook(notebook, "runs/bad", tmp_path / "bad.out.ipynb", timeout_s=60)


def test_a_server_that_wants_a_token_refuses_a_tokenless_client(jupyter_server: Any) -> None:
    client = JupyterClient(jupyter_server.url, None, timeout_s=10)
    with pytest.raises(StepFailure) as caught:
        client.wait_ready()
    assert str(caught.value) == f"jupyter at {jupyter_server.url} refused the request (HTTP 403)"
