"""Tiny ONNX models built in the tests, one per output layout (after Polygraphy's model registry).

Each takes an NCHW float image and returns constant-shaped outputs computed from a fixed
tensor, so decoders can be tested against known boxes without a trained network.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper


def constant_model(path: Path, outputs: dict[str, np.ndarray], input_hw=(64, 64), batch="N") -> Path:
    """A model whose outputs are the given arrays (batch dim tiled from the input's batch)."""
    inp = helper.make_tensor_value_info("images", TensorProto.FLOAT, [batch, 3, *input_hw])
    nodes, outs, inits = [], [], []
    # batch size of the input, as a 1-element int64 tensor
    nodes.append(helper.make_node("Shape", ["images"], ["in_shape"]))
    inits.append(numpy_helper.from_array(np.array([0], np.int64), "zero"))
    inits.append(numpy_helper.from_array(np.array([1], np.int64), "one"))
    nodes.append(helper.make_node("Slice", ["in_shape", "zero", "one"], ["batch"]))
    for name, value in outputs.items():
        value = np.asarray(value)
        const = f"{name}_value"
        inits.append(numpy_helper.from_array(value[None], const))  # (1, ...)
        ones = np.ones(value.ndim, np.int64)
        inits.append(numpy_helper.from_array(ones, f"{name}_ones"))
        nodes.append(helper.make_node("Concat", ["batch", f"{name}_ones"], [f"{name}_reps"], axis=0))
        nodes.append(helper.make_node("Tile", [const, f"{name}_reps"], [name]))
        elem = helper.np_dtype_to_tensor_dtype(value.dtype)
        outs.append(helper.make_tensor_value_info(name, elem, [batch, *value.shape]))
    graph = helper.make_graph(nodes, "constant", [inp], outs, inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


def mean_model(path: Path, input_hw=(32, 32)) -> Path:
    """A model whose only output is the per-channel mean: matches no detector layout."""
    inp = helper.make_tensor_value_info("images", TensorProto.FLOAT, [1, 3, *input_hw])
    out = helper.make_tensor_value_info("means", TensorProto.FLOAT, [1, 3])
    node = helper.make_node("ReduceMean", ["images"], ["means"], axes=[2, 3], keepdims=0)
    model = helper.make_model(helper.make_graph([node], "mean", [inp], [out]),
                              opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return path
