"""Notebooks a test runs in a sandbox's kernel, written as a person's would be (nbformat)."""

from __future__ import annotations

from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_notebook


def write_notebook(path: Path, *cells: str) -> Path:
    """`path`: a notebook of one code cell per source, on the python3 kernel."""
    notebook = new_notebook(cells=[new_code_cell(source) for source in cells])
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3"}
    nbformat.write(notebook, path)
    return path
