"""Model commands: ``build`` (TensorRT engines), ``quantize``, ``inspect``, ``init``."""

from __future__ import annotations

import json
import os
from typing import Optional

import click

from .app import _guard, _notice, _verbose_option, main


@main.command()
@click.argument("targets", nargs=-1, required=True, type=click.Path(dir_okay=False))
@click.option("--set", "overrides", metavar="KEY=VALUE", multiple=True,
              help="Override a config value for every target (repeatable).")
@click.option("--precision", type=click.Choice(["fp32", "fp16", "int8"]), help="Shorthand for --set tensorrt.precision=...")
@click.option("--batch", "batch", type=click.IntRange(min=1), help="Shorthand for --set runtime.batch_size=...")
@click.option("--dla-core", "dla_core", type=click.IntRange(min=0), metavar="N",
              help="Shorthand for --set tensorrt.dla_core=N: build for this DLA core (Jetson; trtexec --useDLACore).")
@click.option("--allow-gpu-fallback/--no-gpu-fallback", "gpu_fallback", default=None,
              help="Shorthand for --set tensorrt.gpu_fallback=true|false: layers DLA cannot run go to the GPU "
                   "(default) or fail the build (trtexec --allowGPUFallback).")
@click.option("--calib", "calib", type=click.Path(exists=True), metavar="PATH",
              help="Shorthand for --set tensorrt.calibration.source=PATH (a video or image folder/glob, relative "
                   "to the working directory): INT8 calibration data; implies --precision int8 (trtexec --calib).")
@click.option("--force", is_flag=True, help="Rebuild even if a valid engine is cached.")
@_verbose_option
@_guard
def build(targets: tuple[str, ...], overrides: tuple[str, ...], precision: Optional[str], batch: Optional[int],
          dla_core: Optional[int], gpu_fallback: Optional[bool], calib: Optional[str], force: bool) -> None:
    """Build (or find cached) TensorRT engines for CONFIG files or ONNX models.

    Several targets pre-build engines for a fleet. An ONNX model is built with default settings
    plus the overrides, e.g. `streamtrt build model.onnx --precision fp16 --set tensorrt.profile.max_batch=8`.
    """
    from ..calibration_data import read_calibration_frames
    from ..config import load_config
    from ..engine import EngineSettings
    from ..engine.tensorrt import load_tensorrt, prepare_engine

    import logging

    extra = list(overrides) + build_overrides(precision, batch, dla_core, gpu_fallback, calib)
    configs = []  # every target's config first: a config error (exit 2) before a missing TensorRT (exit 5)
    for target in targets:
        if target.lower().endswith(".onnx"):
            cfg = load_config({"source": "unused", "model": {"path": os.path.abspath(target)}}, extra)
        else:
            cfg = load_config(target, extra)
        t = cfg.tensorrt
        logging.getLogger("streamtrt").info(
            "%s: precision %s, batch %d, dla_core %s, gpu_fallback %s, calibration %s", target, t.precision,
            cfg.runtime.batch_size, t.dla_core, t.gpu_fallback, t.calibration.source)
        configs.append((target, cfg))
    trt = load_tensorrt()
    for target, cfg in configs:
        seen = set()
        for engine_cfg in cfg.engine_configs():  # one per DLA core of a tensorrt.dla_core list
            if engine_cfg.tensorrt.dla_core in seen:
                continue
            seen.add(engine_cfg.tensorrt.dla_core)
            prepared = prepare_engine(EngineSettings.from_config(engine_cfg, _calibration_spec(engine_cfg),
                                                                    read_calibration_frames),
                                      report=lambda m: click.echo(m, err=True), trt=trt, force=force)
            state = "built" if prepared.built else "cached"
            click.echo(f"{target}: {state} {prepared.path} (key {prepared.key.digest}, {prepared.key.precision}, "
                       f"{prepared.key.tensorrt}, {prepared.key.device})")


def _calibration_spec(cfg):
    """The preprocessing INT8 calibration frames go through (the model's resolved setup), when frames are read."""
    from ..model_setup import resolve_model

    t = cfg.tensorrt
    return resolve_model(cfg).spec() if t.precision == "int8" and t.calibration.source else None


def build_overrides(precision: Optional[str], batch: Optional[int], dla_core: Optional[int],
                    gpu_fallback: Optional[bool], calib: Optional[str]) -> list[str]:
    """``build``'s shorthands as ``--set`` overrides (the config keys they stand for)."""
    from ..errors import ConfigError

    extra = []
    if calib:
        if precision not in (None, "int8"):
            raise ConfigError(f"--calib is INT8 calibration data; it does not apply to --precision {precision}")
        precision = "int8"
        extra.append(f"tensorrt.calibration.source={json.dumps(os.path.abspath(calib))}")
    if precision:
        extra.append(f"tensorrt.precision={precision}")
    if batch:
        extra.append(f"runtime.batch_size={batch}")
    if dla_core is not None:
        extra.append(f"tensorrt.dla_core={dla_core}")
    if gpu_fallback is not None:
        extra.append(f"tensorrt.gpu_fallback={'true' if gpu_fallback else 'false'}")
    return extra


@main.command()
@click.argument("model", type=click.Path(dir_okay=False))
@click.option("--calib", "calib", required=True, metavar="SOURCE",
              help="Calibration frames: a video file or image folder, ideally from the cameras the model will watch.")
@click.option("-o", "--output", type=click.Path(dir_okay=False), help="Output model (default: MODEL.int8.onnx).")
@click.option("--frames", type=click.IntRange(min=1), default=128, show_default=True,
              help="Calibration frames, from the start of the source.")
@click.option("--config", "config_path", type=click.Path(dir_okay=False),
              help="A job config: its model.input preprocessing is used (the model path is MODEL).")
@click.option("--set", "overrides", metavar="KEY=VALUE", multiple=True, help="Override a config value (repeatable).")
@click.option("--method", type=click.Choice(["minmax", "entropy", "percentile"]), default="minmax", show_default=True,
              help="Calibration method (ONNX Runtime's calibrators).")
@click.option("--for", "target", type=click.Choice(["cpu", "tensorrt"]), default="cpu", show_default=True,
              help="cpu: uint8 activations for ONNX Runtime's CPU EP; tensorrt: symmetric int8 (explicit quantization).")
@click.option("--per-tensor", is_flag=True, help="Per-tensor weight scales (default: per-channel).")
@click.option("--reduce-range/--no-reduce-range", default=None,
              help="7-bit weights (default: on for the CPU target on x86 without VNNI).")
@click.option("--cache-dir", type=click.Path(file_okay=False), help="Calibration-set cache (default ~/.cache/streamtrt/calibration).")
@_guard
def quantize(model: str, calib: str, output: Optional[str], frames: int, config_path: Optional[str],
             overrides: tuple[str, ...], method: str, target: str, per_tensor: bool, reduce_range: Optional[bool],
             cache_dir: Optional[str]) -> None:
    """Write a static INT8 (Q/DQ) copy of MODEL, calibrated on frames of --calib through the
    pipeline's own decode and preprocessing. Run it with the same config: --set model.path=OUT."""
    from pathlib import Path as _Path

    from ..calibration_data import read_calibration_frames
    from ..config import load_config
    from ..engine.quantize import quantize_model

    extra = list(overrides) + [f"model.path={json.dumps(os.path.abspath(model))}"]
    cfg = load_config(config_path, extra) if config_path else load_config(
        {"source": calib, "model": {"path": os.path.abspath(model)}}, list(overrides))
    result = quantize_model(cfg, calib, _Path(output) if output else None, frames, method, target,
                            per_channel=not per_tensor, reduce_range=reduce_range,
                            cache_dir=_Path(cache_dir) if cache_dir else None, report=_notice,
                            read_frames=read_calibration_frames)
    for reason in result.reasons:
        _notice(reason)
    if not config_path:
        _notice("preprocessing was the config defaults: give --config JOB.yaml to calibrate with the job's own")
    click.echo(str(result.output))


@main.command()
@click.argument("path", type=click.Path(dir_okay=False))
@click.option("--config", "config_path", type=click.Path(dir_okay=False),
              help="For a model: also show the engine key and cache state this config gives.")
@click.option("--set", "overrides", metavar="KEY=VALUE", multiple=True, help="Override a config value (repeatable).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@_verbose_option
@_guard
def inspect(path: str, config_path: Optional[str], overrides: tuple[str, ...], as_json: bool) -> None:
    """Show an engine's key, I/O tensors, precision, profiles and size, or an ONNX model's
    hash, I/O and the engine key it would get."""
    from pathlib import Path as _Path

    from ..config import load_config
    from ..engine.tensorrt.inspect import format_inspection, inspect_engine, inspect_model
    from ..jobfile import describe_detection

    p = _Path(path)
    if p.suffix.lower() == ".onnx":
        extra = [f"model.path={json.dumps(str(p.resolve()))}"] + list(overrides)
        cfg = load_config(config_path, extra) if config_path else load_config(
            {"source": "unused", "model": {"path": str(p.resolve())}}, list(overrides))
        info = inspect_model(p, cfg, describe_detection(cfg))
    else:
        info = inspect_engine(p)
    click.echo(json.dumps(info, indent=2) if as_json else format_inspection(info))


@main.command()
@click.argument("model", type=click.Path(dir_okay=False))
@click.option("--source", "source", metavar="URI", help="The job's input (default: a placeholder to edit).")
@click.option("--set", "overrides", metavar="KEY=VALUE", multiple=True,
              help="Settle a value the model does not say, e.g. --set model.input.size=[480,640] (repeatable).")
@_guard
def init(model: str, source: Optional[str], overrides: tuple[str, ...]) -> None:
    """Print a job YAML for MODEL with what was detected in it, each value commented with its source.

    `streamtrt init model.onnx > job.yaml`, edit, then `streamtrt run job.yaml`."""
    from ..config import load_config
    from ..jobfile import render_job

    src = os.path.abspath(source) if source and os.path.exists(source) else source
    raw = {"model": {"path": os.path.abspath(model)}, "source": src or "video.mp4"}
    cfg = load_config(raw, list(overrides))
    click.echo(render_job(cfg, source_given=source is not None), nl=False)
