"""The diabetes model evaluated without torch: the held-out split and the MLP forward pass in numpy.

The journey compares a model server's answers with these, so this file must stay in step with
the split and the network the notebook's train.py uses (raw measurements, seed 0, 25% held out;
inputs standardised, one hidden ReLU layer, the output scaled back to the target's units).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from sklearn.datasets import load_diabetes
from sklearn.model_selection import train_test_split

SEED = 0
HELD_OUT = 0.25


def dataset() -> tuple[np.ndarray, np.ndarray]:
    """Every raw measurement (float32) and its disease progression (float32), as train.py reads
    them: the data the journey's lineage names by digest."""
    diabetes = load_diabetes(scaled=False)
    return diabetes.data.astype(np.float32), diabetes.target.astype(np.float32)


def held_out() -> tuple[np.ndarray, np.ndarray]:
    """The held-out raw measurements and their disease progression."""
    x, y = dataset()
    _, x_test, _, y_test = train_test_split(x, y, test_size=HELD_OUT, random_state=SEED)
    return x_test, y_test


def predict(model_dir: Path, x: np.ndarray) -> list[float]:
    """Predicted progression from the weights and scalings train.py saved as weights.npz."""
    with np.load(Path(model_dir) / "weights.npz") as w:
        z = (x - w["x_mean"]) / w["x_std"]
        hidden = np.maximum(z @ w["fc1.weight"].T + w["fc1.bias"], 0.0)
        out = (hidden @ w["fc2.weight"].T + w["fc2.bias"])[:, 0] * w["y_std"] + w["y_mean"]
    return [float(v) for v in out]
