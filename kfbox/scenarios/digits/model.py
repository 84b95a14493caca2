"""Serve the digits model with KServe: v1 `instances` and v2 FP32 [N, 64] tensors in, labels out.

Loads model.pt (a state_dict saved by train.py) from $KFBOX_MODEL_DIR. It declares its open
inference protocol metadata, so GET /v2/models/<name> tells a v2 client the input's name,
datatype and shape. `python model.py` starts a ModelServer on port 8080 (--http_port to change
it) under --model_name (default: digits).
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import kserve
import numpy as np
import torch
from kserve.errors import InvalidInput
from kserve.protocol.infer_type import InferOutput, InferRequest, InferResponse
from kserve.utils.utils import generate_uuid, get_predict_input
from torch import nn

FEATURES = 64
# The open inference protocol's tensor metadata; -1 is the batch, of any size.
INPUT = {"name": "images", "datatype": "FP32", "shape": [-1, FEATURES]}
OUTPUT = {"name": "labels", "datatype": "INT64", "shape": [-1]}


class DigitsModel(kserve.Model):
    def __init__(self, name: str, model_dir: Path) -> None:
        super().__init__(name)
        self.model_dir = model_dir
        self.device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
        self.net: nn.Module | None = None

    def load(self) -> bool:
        state = torch.load(self.model_dir / "model.pt", map_location="cpu", weights_only=True)
        # The layer sizes come from the weights, so any --hidden a trial picked loads.
        hidden, features = state["fc1.weight"].shape
        net = nn.Sequential()
        net.add_module("fc1", nn.Linear(features, hidden))
        net.add_module("relu", nn.ReLU())
        net.add_module("fc2", nn.Linear(hidden, state["fc2.weight"].shape[0]))
        net.load_state_dict(state)
        self.net = net.to(self.device).eval()
        self.ready = True
        return self.ready

    def get_input_types(self) -> list[dict]:
        return [INPUT]

    def get_output_types(self) -> list[dict]:
        return [OUTPUT]

    async def predict(
        self,
        payload: dict | InferRequest,
        headers: dict[str, str] | None = None,
        response_headers: dict[str, str] | None = None,
    ) -> dict | InferResponse:
        x = np.asarray(get_predict_input(payload), dtype=np.float32)
        if x.ndim != 2 or x.shape[1] != FEATURES:
            raise InvalidInput(f"expected images of shape [N, {FEATURES}], got {list(x.shape)}")
        with torch.no_grad():
            labels = self.net(torch.from_numpy(x).to(self.device)).argmax(1).cpu().numpy()
        if not isinstance(payload, InferRequest):
            return {"predictions": labels.tolist()}
        # Named as declared in the metadata (kserve's get_predict_response says "output-0").
        output = InferOutput(
            name=OUTPUT["name"], shape=list(labels.shape), datatype=OUTPUT["datatype"]
        )
        output.set_data_from_numpy(labels, binary_data=payload.use_binary_outputs)
        return InferResponse(
            response_id=payload.id or generate_uuid(),
            model_name=self.name,
            infer_outputs=[output],
            use_binary_outputs=payload.use_binary_outputs,
        )


def main() -> None:
    # kserve's own parser brings --http_port, --grpc_port, --enable_grpc, --model_name, ...
    parser = argparse.ArgumentParser(parents=[kserve.model_server.parser])
    parser.set_defaults(model_name="digits")
    args, _ = parser.parse_known_args()
    model = DigitsModel(args.model_name, Path(os.environ.get("KFBOX_MODEL_DIR", "model")))
    model.load()
    # Which registered version it serves, as the platform named it: the journey checks this
    # line against the model registry (the open inference protocol's metadata has no field
    # KServe fills for it).
    if os.environ.get("KFBOX_MODEL_VERSION"):
        print(f"model_version={os.environ['KFBOX_MODEL_VERSION']}", flush=True)
    kserve.ModelServer(http_port=args.http_port, enable_grpc=args.enable_grpc).start([model])


if __name__ == "__main__":
    main()
