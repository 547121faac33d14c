"""Give an ONNX detector a dynamic batch dimension by editing its graph, and prove it numerically.

    python tools/make_dynamic_batch.py samples/nanodet-m-416.onnx out/nanodet-m-416-dynamic.onnx

Edits: graph inputs and outputs get a symbolic first dimension ("batch"); intermediate shapes
are dropped; constant shape vectors that feed Reshape (directly or through Cast/Add/Concat) and
start with a hard-coded 1 get 0 there ("copy the input's batch").
The result must match the original, item by item, on a batch of random inputs, or nothing is written.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import onnx
from onnx import numpy_helper

_PASS_THROUGH = {"Cast", "Add", "Sub", "Concat", "Identity", "Max", "Min"}


def _constant_sources(model: onnx.ModelProto, name: str, seen=None) -> list[onnx.TensorProto]:
    """Initializers that a shape tensor is computed from, through simple elementwise ops."""
    seen = seen if seen is not None else set()
    if name in seen:
        return []
    seen.add(name)
    inits = {i.name: i for i in model.graph.initializer}
    if name in inits:
        return [inits[name]]
    producers = [n for n in model.graph.node if name in n.output]
    if not producers or producers[0].op_type not in _PASS_THROUGH:
        return []
    node = producers[0]
    inputs = node.input[:1] if node.op_type == "Concat" else node.input
    return [t for i in inputs for t in _constant_sources(model, i, seen)]


def make_dynamic(model: onnx.ModelProto, dim_name: str = "batch") -> tuple[onnx.ModelProto, list[str]]:
    changes = []
    init_names = {i.name for i in model.graph.initializer}
    for value in list(model.graph.input) + list(model.graph.output):
        if value.name in init_names:
            continue
        dims = value.type.tensor_type.shape.dim
        if dims:
            dims[0].ClearField("dim_value")
            dims[0].dim_param = dim_name
            changes.append(f"{value.name}: first dimension -> {dim_name}")
    del model.graph.value_info[:]
    patched = set()
    for node in model.graph.node:
        if node.op_type != "Reshape":
            continue
        for tensor in _constant_sources(model, node.input[1]):
            if tensor.name in patched:
                continue
            arr = numpy_helper.to_array(tensor)
            if arr.ndim == 1 and arr.size >= 2 and arr[0] == 1 and np.issubdtype(arr.dtype, np.integer):
                new = arr.copy()
                new[0] = 0
                tensor.CopyFrom(numpy_helper.from_array(new, tensor.name))
                patched.add(tensor.name)
                changes.append(f"{tensor.name} (shape of {node.op_type} {node.name}): {arr.tolist()} -> {new.tolist()}")
    return model, changes


def verify(original: Path, edited: onnx.ModelProto, batch: int = 3, tol: float = 1e-4) -> float:
    import onnxruntime as ort

    a = ort.InferenceSession(str(original), providers=["CPUExecutionProvider"])
    b = ort.InferenceSession(edited.SerializeToString(), providers=["CPUExecutionProvider"])
    inp = a.get_inputs()[0]
    shape = [d if isinstance(d, int) else 1 for d in inp.shape]
    x = np.random.default_rng(0).normal(size=(batch, *shape[1:])).astype(np.float32)
    together = b.run(None, {inp.name: x})
    worst = 0.0
    for i in range(batch):
        alone = a.run(None, {inp.name: x[i : i + 1]})
        for t, s in zip(together, alone):
            worst = max(worst, float(np.abs(t[i : i + 1] - s).max()))
    if worst > tol:
        raise SystemExit(f"the edited model differs from the original by {worst} (> {tol}); not written")
    return worst


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("src", type=Path)
    ap.add_argument("dst", type=Path)
    ap.add_argument("--dim-name", default="batch")
    args = ap.parse_args()
    model, changes = make_dynamic(onnx.load(str(args.src)), args.dim_name)
    onnx.checker.check_model(model)
    worst = verify(args.src, model)
    args.dst.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(args.dst))
    print("\n".join(changes), file=sys.stderr)
    print(f"wrote {args.dst}: batch-3 outputs match batch-1 outputs within {worst:.2e}")


if __name__ == "__main__":
    main()
