"""The floor of scoring: the least a server can do to answer the same request with the same model.

Starlette on uvicorn (the host's own HTTP stack, httptools), ONNX Runtime on the
very ``model.onnx`` the host serves: no key, no validation, no telemetry, no
drift, no thread-pool hop. It reads ``{"data": [{column: value}]}`` and answers
``{"result": [label]}``. The scoring benchmark runs it beside the host, in the
same run, so the host's overhead is measured against what the hardware allows.
Run: ``python -m benchmarks.floor_server MODEL_DIR PORT``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import onnxruntime as ort
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route


def app_for(folder: Path) -> Starlette:
    meta = json.loads((folder / "model_meta.json").read_text())
    names: dict[str, str] = meta["input_names"]
    numeric = {f["name"] for f in meta["features"] if f["kind"] in ("integer", "number", "boolean")}
    classes = [str(c) for c in meta["classes"]]
    options = ort.SessionOptions()
    options.intra_op_num_threads = options.inter_op_num_threads = 1
    session = ort.InferenceSession(str(folder / "model.onnx"), options, providers=["CPUExecutionProvider"])
    output = ["probabilities" if classes else "variable"]

    async def score(request: Request) -> Response:
        rows = json.loads(await request.body())["data"]
        feeds = {names[name]: np.array([[row.get(name)] for row in rows],
                                       dtype=np.float32 if name in numeric else object)
                 for name in names}
        values = session.run(output, feeds)[0]
        result = [classes[i] for i in values.argmax(axis=1)] if classes else values[:, 0].tolist()
        return Response(json.dumps({"result": result}), media_type="application/json")

    return Starlette(routes=[Route("/score", score, methods=["POST"])])


def main() -> int:
    folder, port = Path(sys.argv[1]), int(sys.argv[2])
    uvicorn.run(app_for(folder), host="127.0.0.1", port=port, http="httptools", log_level="warning",
                access_log=False)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
