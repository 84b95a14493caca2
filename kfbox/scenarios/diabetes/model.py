"""Serve the diabetes model with KServe: v1 `instances` and v2 FP32 [N, 10] tensors of the raw
measurements in, the predicted disease progression out, as FP32 numbers in the target's units.

Loads model.pt (train.py's state_dict: the MLP's weights and the scalings it learnt) from
$KFBOX_MODEL_DIR. It declares its open inference protocol metadata, so GET /v2/models/<name>
tells a v2 client the input's name, datatype and shape. `python model.py` starts a ModelServer
on port 8080 (--http_port to change it) under --model_name (default: diabetes).
"""

from __future__ import annotations

import argparse
import os
from collections import OrderedDict
from pathlib import Path

import kserve
import numpy as np
import torch
from kserve.errors import InvalidInput
from kserve.protocol.infer_type import InferOutput, InferRequest, InferResponse
from kserve.utils.utils import generate_uuid, get_predict_input
from torch import nn

FEATURES = 10
# The open inference protocol's tensor metadata; -1 is the batch, of any size.
INPUT = {"name": "measurements", "datatype": "FP32", "shape": [-1, FEATURES]}
OUTPUT = {"name": "progression", "datatype": "FP32", "shape": [-1]}


class DiabetesModel(kserve.Model):
    def __init__(self, name: str, model_dir: Path) -> None:
        super().__init__(name)
        self.model_dir = model_dir
        self.device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
        self.net: nn.Module | None = None
        self.scaling: dict[str, torch.Tensor] = {}

    def load(self) -> bool:
        state = torch.load(self.model_dir / "model.pt", map_location="cpu", weights_only=True)
        # The layer sizes come from the weights, so any --hidden a trial picked loads.
        hidden, features = state["fc1.weight"].shape
        net = nn.Sequential(
            OrderedDict(fc1=nn.Linear(features, hidden), relu=nn.ReLU(), fc2=nn.Linear(hidden, 1))
        )
        net.load_state_dict({k: v for k, v in state.items() if k.startswith("fc")})
        self.net = net.to(self.device).eval()
        self.scaling = {k: state[k].to(self.device) for k in ("x_mean", "x_std", "y_mean", "y_std")}
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
            raise InvalidInput(
                f"expected measurements of shape [N, {FEATURES}], got {list(x.shape)}"
            )
        s = self.scaling
        with torch.no_grad():
            z = (torch.from_numpy(x).to(self.device) - s["x_mean"]) / s["x_std"]
            y = (self.net(z).squeeze(1) * s["y_std"] + s["y_mean"]).cpu().numpy()
        if not isinstance(payload, InferRequest):
            return {"predictions": y.tolist()}
        # Named as declared in the metadata (kserve's get_predict_response says "output-0").
        output = InferOutput(name=OUTPUT["name"], shape=list(y.shape), datatype=OUTPUT["datatype"])
        output.set_data_from_numpy(y, binary_data=payload.use_binary_outputs)
        return InferResponse(
            response_id=payload.id or generate_uuid(),
            model_name=self.name,
            infer_outputs=[output],
            use_binary_outputs=payload.use_binary_outputs,
        )


def main() -> None:
    # kserve's own parser brings --http_port, --grpc_port, --enable_grpc, --model_name, ...
    parser = argparse.ArgumentParser(parents=[kserve.model_server.parser])
    parser.set_defaults(model_name="diabetes")
    args, _ = parser.parse_known_args()
    model = DiabetesModel(args.model_name, Path(os.environ.get("KFBOX_MODEL_DIR", "model")))
    model.load()
    # Which registered version it serves, as the platform named it: the journey checks this
    # line against the model registry (the open inference protocol's metadata has no field
    # KServe fills for it).
    if os.environ.get("KFBOX_MODEL_VERSION"):
        print(f"model_version={os.environ['KFBOX_MODEL_VERSION']}", flush=True)
    kserve.ModelServer(http_port=args.http_port, enable_grpc=args.enable_grpc).start([model])


if __name__ == "__main__":
    main()
