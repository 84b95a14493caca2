"""JupyterClient against a real Jupyter server: uploads, runs cells over the kernel websocket,
saves executed notebooks, reports the first failing cell in one line, fetches what was written."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from kfbox.engines.jupyter import JupyterClient
from kfbox.engines.platform import StepFailure
from kfbox.harness.journey import notebook_metrics
from kfbox.scenarios.scenario import list_scenarios, load_scenario


def write_notebook(path: Path, *cells: Any) -> Path:
    notebook = new_notebook(cells=list(cells))
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                       "language": "python"}
    nbformat.write(notebook, path)
    return path


@pytest.fixture
def client(jupyter_server: Any) -> JupyterClient:
    client = JupyterClient(jupyter_server.url, jupyter_server.token, timeout_s=30)
    client.wait_ready()
    return client


@pytest.fixture(autouse=True)
def no_kernel_left(jupyter_server: Any) -> Any:
    yield
    assert jupyter_server.kernels() == []


def test_runs_cells_in_the_remote_dir_and_fetches_what_they_wrote(
    client: JupyterClient, jupyter_server: Any, tmp_path: Path
) -> None:
    notebook = write_notebook(
        tmp_path / "good.ipynb",
        new_markdown_cell("# writes a file"),
        new_code_cell("import os\nprint(os.getcwd())\nprint('second line')"),
        new_code_cell("open('answer.txt', 'w').write('42\\n')"),
        new_code_cell("from IPython.display import display, Markdown\ndisplay(Markdown('hi'))"),
    )
    executed = tmp_path / "out" / "good.executed.ipynb"
    result = client.execute_notebook(notebook, "work/run1", executed, timeout_s=60)

    assert result.cells_run == 3 and result.executed == executed and result.duration_s > 0
    cells = json.loads(executed.read_text())["cells"]
    stream = cells[1]["outputs"]
    assert len(stream) == 1  # two prints, one stream output
    assert stream[0]["text"] == f"{jupyter_server.root / 'work' / 'run1'}\nsecond line\n"
    assert cells[2]["outputs"][0]["output_type"] == "execute_result"
    assert cells[2]["outputs"][0]["data"]["text/plain"] == "3"
    assert cells[3]["outputs"][0]["output_type"] == "display_data"
    assert [c.get("execution_count") for c in cells[1:]] == [1, 2, 3]

    fetched = client.fetch_dir("work/run1", tmp_path / "fetched")
    assert [p.name for p in fetched] == ["answer.txt", "good.executed.ipynb", "good.ipynb"]
    assert (tmp_path / "fetched" / "answer.txt").read_text() == "42\n"
    # The copy uploaded next to the original is the executed one, outputs included (the
    # server stores text as a list of lines).
    remote = json.loads((tmp_path / "fetched" / "good.executed.ipynb").read_text())
    assert "".join(remote["cells"][2]["outputs"][0]["data"]["text/plain"]) == "3"


def test_first_failing_cell_is_one_line_and_keeps_its_traceback(
    client: JupyterClient, tmp_path: Path
) -> None:
    notebook = write_notebook(
        tmp_path / "bad.ipynb",
        new_code_cell("print('fine')"),
        new_markdown_cell("next comes the failure"),
        new_code_cell("def ratio(a, b):\n    return a / b"),
        new_code_cell("ratio(1, 0)"),
        new_code_cell("print('never runs')"),
    )
    executed = tmp_path / "bad.executed.ipynb"
    with pytest.raises(StepFailure) as caught:
        client.execute_notebook(notebook, "work/bad", executed, timeout_s=60)

    assert str(caught.value) == "cell 4: ZeroDivisionError: division by zero"
    assert "ratio(1, 0)" in caught.value.logs and "\x1b[" not in caught.value.logs
    cells = json.loads(executed.read_text())["cells"]
    error = cells[3]["outputs"][0]
    assert error["output_type"] == "error" and error["ename"] == "ZeroDivisionError"
    assert any("return a / b" in re.sub(r"\x1b\[[0-9;]*m", "", line)
               for line in error["traceback"])
    assert "outputs" not in cells[4] or cells[4]["outputs"] == []
    names = [p.name for p in client.fetch_dir("work/bad", tmp_path / "fetched")]
    assert "bad.executed.ipynb" in names


def test_a_cell_running_past_the_timeout_fails_and_the_kernel_goes(
    client: JupyterClient, tmp_path: Path
) -> None:
    # The notebook's time counts from the kernel's start, which a loaded machine slows: enough
    # for the first cell, never for the second.
    notebook = write_notebook(tmp_path / "slow.ipynb", new_code_cell("print('started')"),
                              new_code_cell("import time; time.sleep(600)"))
    with pytest.raises(StepFailure, match=r"^cell 2: still running"):
        client.execute_notebook(notebook, "slow", tmp_path / "slow.out.ipynb", timeout_s=10)
    assert (tmp_path / "slow.out.ipynb").exists()


def test_wrong_token_is_a_clear_error(jupyter_server: Any, tmp_path: Path) -> None:
    client = JupyterClient(jupyter_server.url, "not-the-token", timeout_s=10)
    with pytest.raises(StepFailure) as caught:
        client.wait_ready()
    assert str(caught.value) == f"jupyter at {jupyter_server.url} rejected the token (HTTP 403)"
    with pytest.raises(StepFailure, match="rejected the token"):
        client.fetch_dir("", tmp_path)


def test_no_server_is_not_ready_within_the_timeout() -> None:
    client = JupyterClient("http://127.0.0.1:9", "token", timeout_s=1)
    with pytest.raises(StepFailure, match=r"not ready after 1s \(ConnectionError\)"):
        client.wait_ready()


@pytest.mark.heavy  # a kernel runs each scenario's whole notebook: 7-12 s of CPU each
@pytest.mark.parametrize("name", list_scenarios())
def test_a_scenario_notebook_writes_the_training_code_and_meets_its_checks(
    client: JupyterClient, tmp_path: Path, name: str
) -> None:
    scenario = load_scenario(name)
    executed = tmp_path / "explore.executed.ipynb"
    result = client.execute_notebook(
        scenario.path(scenario.notebook), name, executed, timeout_s=120
    )
    assert result.cells_run >= 2
    fetched = client.fetch_dir(name, tmp_path / "workspace")
    assert {p.name for p in fetched} >= set(scenario.notebook_outputs)
    assert (tmp_path / "workspace" / "train.py").read_text() == scenario.training_code()
    printed = notebook_metrics(executed)
    for condition in scenario.checks.notebook:
        assert condition.holds(printed[condition.metric]), (condition, printed)


def test_a_failed_upload_after_a_cell_error_does_not_hide_it(
    client: JupyterClient, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The server dying with the cell: the executed notebook's upload fails, but the error
    shown is still the cell's, and the local executed copy is saved."""
    upload = client._put_notebook

    def server_gone_after_the_run(notebook: dict[str, Any], remote_path: str) -> None:
        if remote_path.endswith(".executed.ipynb"):
            raise StepFailure(f"jupyter at {client.base_url}: PUT failed: connection refused")
        upload(notebook, remote_path)

    monkeypatch.setattr(client, "_put_notebook", server_gone_after_the_run)
    notebook = write_notebook(tmp_path / "dies.ipynb", new_code_cell("raise SystemError('gone')"))
    executed = tmp_path / "dies.executed.ipynb"
    with pytest.raises(StepFailure, match=r"^cell 1: SystemError: gone$"):
        client.execute_notebook(notebook, "work/dies", executed, timeout_s=60)
    assert json.loads(executed.read_text())["cells"][0]["outputs"][0]["ename"] == "SystemError"
