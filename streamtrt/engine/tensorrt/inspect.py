"""``streamtrt inspect ENGINE|MODEL``: the key, I/O tensors, precision, profiles and size."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Optional

from ...errors import BackendUnavailableError, ModelError, StreamTRTError


def inspect_engine(path: Path) -> dict[str, Any]:
    """What the sidecar records, plus what TensorRT reads from the engine where it can."""
    if not path.is_file():
        raise ModelError(f"engine not found: {path}")
    info: dict[str, Any] = {"path": str(path), "size_bytes": path.stat().st_size}
    meta_path = path.with_suffix(".json")
    if meta_path.is_file():
        meta = json.loads(meta_path.read_text())
        key = meta.get("key", {})
        info.update({"digest": meta.get("digest"), "key": key, "precision": key.get("precision"),
                     "profiles": key.get("profiles"), "source_model": meta.get("source_model")})
    try:
        from .module import load_tensorrt

        trt = load_tensorrt()
        runtime = trt.Runtime(trt.Logger(trt.Logger.ERROR))
        engine = runtime.deserialize_cuda_engine(path.read_bytes())
        if engine is None:
            raise ModelError("TensorRT could not deserialize it on this machine")
        tensors = []
        for i in range(engine.num_io_tensors):
            name = engine.get_tensor_name(i)
            entry = {"name": name, "mode": str(engine.get_tensor_mode(name)).split(".")[-1],
                     "dtype": str(engine.get_tensor_dtype(name)).split(".")[-1],
                     "shape": list(engine.get_tensor_shape(name))}
            if entry["mode"] == "INPUT" and -1 in entry["shape"]:
                entry["profile"] = [list(s) for s in engine.get_tensor_profile_shape(name, 0)]
            tensors.append(entry)
        info["tensors"] = tensors
        info["num_profiles"] = engine.num_optimization_profiles
    except StreamTRTError as exc:
        info["engine_readable"] = f"no: {exc}"
    return info


def inspect_model(path: Path, config=None, detected: Optional[dict[str, Any]] = None) -> dict[str, Any]:
    """An ONNX model: its hash, I/O and quantization; ``detected`` (what ``run`` would detect and
    choose: :func:`streamtrt.jobfile.describe_detection`, shown after the I/O); and the engine key and
    cache state for ``config``."""
    from ...model_info import read_model_info
    from .cache import hash_model

    if not path.is_file():
        raise ModelError(f"model not found: {path}")
    model = read_model_info(path)
    show = lambda shape: ["?" if not isinstance(d, int) else d for d in shape]  # noqa: E731
    info: dict[str, Any] = {
        "path": str(path), "size_bytes": path.stat().st_size, "model_sha256": hash_model(path),
        "producer": model.describe_producer(),
        "inputs": [{"name": t.name, "shape": show(t.shape)} for t in model.inputs],
        "outputs": [{"name": t.name, "shape": show(t.shape)} for t in model.outputs],
        "explicitly_quantized": model.quantized,
        "opset": model.opset,
    }
    info.update(detected or {})
    if config is not None:
        try:
            from .cache import EngineCache
            from .engines import cache_root, key_for
            from ..settings import EngineSettings
            from .module import load_tensorrt

            config = config.model_copy(update={"model": config.model.model_copy(update={"path": path})})
            if config.engine_count() > 1:
                info["engines"] = f"{config.engine_count()}; the key shown is the first's"
            settings = EngineSettings.from_config(config.engine_configs()[0])
            key, _ = key_for(settings, load_tensorrt(), info["model_sha256"])
            cache = EngineCache(cache_root(settings))
            entry = cache.entry(key, path.name)
            info["engine_key"] = key.as_dict()
            info["engine_digest"] = key.digest
            info["engine_cached"] = entry.engine.is_file() and cache.load(key, path.name) is not None
            info["engine_path"] = str(entry.engine)
        except BackendUnavailableError as exc:
            info["engine_key"] = f"unavailable here: {exc}"
    return info


def format_inspection(info: dict[str, Any]) -> str:
    lines = []
    for k, v in info.items():
        if isinstance(v, (dict, list)):
            lines.append(f"{k}:")
            items = v.items() if isinstance(v, dict) else enumerate(v)
            for kk, vv in items:
                if isinstance(v, list) and isinstance(vv, str):
                    lines.append(f"  - {vv}")
                else:
                    lines.append(f"  {kk}: {json.dumps(vv) if not isinstance(vv, str) else vv}")
        else:
            lines.append(f"{k}: {v}")
    return "\n".join(lines)
