"""What streamtrt detects in a model: ``streamtrt init MODEL`` (a job YAML recording it, with comments)
and the detection part of ``streamtrt inspect MODEL``."""

from __future__ import annotations

import json
from typing import Any

from .version import __version__
from .config import Config, PostprocessConfig
from .errors import StreamTRTError
from .model_setup import ModelSetup, output_shapes, resolve_model, select_for
from .runtime.plan import make_plan


def _v(value: Any) -> str:
    """A YAML value (JSON is YAML's flow style)."""
    if isinstance(value, tuple):
        value = list(value)
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, list):
        value = [int(v) if isinstance(v, float) and v.is_integer() else v for v in value]
    return json.dumps(value, ensure_ascii=False)


def detect(config: Config) -> ModelSetup:
    """Resolve the model and pick its decoder from the real output shapes (one zero batch on the CPU
    when the model leaves them undeclared)."""
    setup = resolve_model(config)
    select_for(setup, output_shapes(setup))
    return setup


def describe_detection(config: Config) -> dict[str, Any]:
    """What ``run`` would detect and choose for ``config.model`` (format, input, value range, classes,
    preprocessing, each with its reason, and the plan), for ``inspect``; errors become an entry, not a failure."""
    try:
        setup = detect(config)
    except StreamTRTError as exc:
        return {"detected": f"cannot configure this model: {exc}"}
    by_key = {c.key: c for c in setup.choices}
    names = setup.class_names
    out: dict[str, Any] = {
        "format": f"{setup.format} ({by_key['format'].reason})",
        "input": {"name": setup.input_name, "layout": setup.layout.upper(), "dtype": setup.dtype,
                  "shape": setup.input_shape(), "size": list(setup.size), "size_from": by_key["input"].reason},
        "value_range": setup.value_range,
        "classes": {"count": len(names), "first": names[:8], "from": by_key["classes"].reason},
        "preprocess": {k.split(".", 1)[1]: f"{c.line().split(': ', 1)[1]}" for k, c in by_key.items()
                       if k.startswith("preprocess.")},
    }
    try:
        plan = make_plan(config.runtime)
        out["plan"] = [*setup.lines(), *plan.reasons]
    except StreamTRTError as exc:
        out["plan"] = [*setup.lines(), f"runtime: {exc}"]
    if setup.warnings:
        out["warnings"] = list(setup.warnings)
    return out


def render_job(config: Config, source_given: bool = True) -> str:
    """The YAML text of a job for ``config.model``: every model value with its reason as a comment."""
    setup = detect(config)
    why = {c.key: c.reason for c in setup.choices}
    info = setup.info
    inp = setup.input
    lines = [
        f"# streamtrt job for {info.path.name}, written by `streamtrt init` (streamtrt {__version__}).",
        f"# The model: {info.describe_producer()}.",
        "# Each model value below says where it came from; change any of them. Relative paths are",
        "# relative to this file's folder. `streamtrt inspect MODEL` shows the same, `streamtrt run job.yaml` runs it.",
        f"source: {_v(config.source)}" + ("" if source_given else "  # your input: a file, rtsp://..., or a camera index"),
        "model:",
        f"  path: {_v(str(info.path))}",
        f"  format: {setup.format}  # {why['format']}",
    ]
    names = setup.class_names
    if why["classes"].startswith("default"):
        lines.append(f"  classes: coco  # {why['classes']}")
    else:
        lines.append(f"  # {len(names)} classes: {why['classes']}")
        lines.append(f"  classes: {_v(names)}")
    if any(why.get(f"preprocess.{k}", "").startswith("default") for k in ("resize", "color", "mean", "std")):
        lines.append("  # The model does not say how its input was prepared: the values marked 'default' are")
        lines.append("  # guesses. Set them as the model was trained; wrong ones give plausible but wrong boxes.")
    lines.append("  input:")
    for key in ("resize", "color", "mean", "std", "pad_value"):
        reason = why.get(f"preprocess.{key}", "not used without letterbox")
        lines.append(f"    {key}: {_v(getattr(inp, key))}  # {reason}")
    h, w = setup.size
    if "fixed in the model" in why["input"]:
        lines.append(f"    # size: fixed in the model at [{h}, {w}] ({setup.layout.upper()} {setup.dtype})")
    else:
        lines.append(f"    size: [{h}, {w}]  # {why['input'].split('; ', 1)[-1]}")
    post = config.postprocess if "postprocess" in config.model_fields_set else PostprocessConfig()
    lines += [
        "postprocess:",
        f"  score_threshold: {post.score_threshold}",
        f"  iou_threshold: {post.iou_threshold}" + ("  # not used: the model's outputs are already suppressed"
                                                   if setup.format in ("decoded", "rtdetr", "tfod", "efficientnms")
                                                   else ""),
        f"  max_detections: {post.max_detections}",
        "sinks:",
        "  - jsonl:detections.jsonl",
        "  - summary:summary.json",
    ]
    for w_ in setup.warnings:
        lines.append(f"# warning: {w_}")
    return "\n".join(lines) + "\n"
