"""The digits model evaluated without torch: the held-out split and the MLP forward pass in numpy.

The journey compares a model server's answers with these, so this file must stay in step with
the split and the network the notebook's train.py uses (seed 0, 25% stratified, 64-hidden-10).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

SEED = 0
HELD_OUT = 0.25


def dataset() -> tuple[np.ndarray, np.ndarray]:
    """Every image (float32, pixels scaled to [0, 1]) and its label, as train.py reads them: the
    data the journey's lineage names by digest."""
    digits = load_digits()
    return (digits.data / 16.0).astype(np.float32), digits.target


def held_out() -> tuple[np.ndarray, np.ndarray]:
    """The held-out images and their labels."""
    x, target = dataset()
    _, x_test, _, y_test = train_test_split(
        x, target, test_size=HELD_OUT, random_state=SEED, stratify=target
    )
    return x_test, y_test


def predict(model_dir: Path, x: np.ndarray) -> list[int]:
    """Class labels from the weights train.py saved as weights.npz in `model_dir`."""
    with np.load(Path(model_dir) / "weights.npz") as w:
        hidden = np.maximum(x @ w["fc1.weight"].T + w["fc1.bias"], 0.0)
        logits = hidden @ w["fc2.weight"].T + w["fc2.bias"]
    return [int(label) for label in logits.argmax(axis=1)]
