"""What a pipeline is made of, built once from a config: the model setup, the resolved plan, the
sinks, the streams (sources opened), the runners and the postprocessor. Construction order follows
:mod:`streamtrt.runtime.plan`: choices, then sources, then budget and engine settings, then runners."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional, Union

from ..calibration_data import read_calibration_frames
from ..config import Config, SourceConfig
from ..engine import Runner, create_runner
from ..errors import ConfigError
from ..model_setup import ModelSetup, output_shapes, resolve_model, select_for
from ..names import check_names
from ..postprocess.postprocessor import Postprocessor
from ..preprocess.dali import DaliCpuPreprocessor, dali_available
from ..preprocess.opencv import OpenCVPreprocessor
from ..preprocess.spec import PreprocessSpec
from ..sinks import Sink, open_sink, sink_filter
from ..sources import check_config_sources, check_source_options, open_source, parse_source_uri, probe_video
from ..sources.pace import PacedSource
from ..sources.uri import SourceURI
from .machine import Machine
from .plan import Plan, plan_choices, resolve_plan, settle_postprocessor
from .streams import StreamState, drop_stale_for

log = logging.getLogger("streamtrt")


@dataclass
class Components:
    """The built parts; filled in construction order, so after a failure the parts built so far
    (``plan``, ``model_setup``, ``sinks``) still tell the summary what was chosen."""

    config: Config
    keep_alive: bool = False
    keep_images: bool = False
    plan: Optional[Plan] = None
    model_setup: Optional[ModelSetup] = None
    sinks: Optional[list[Sink]] = None
    streams: dict[str, StreamState] = field(default_factory=dict)
    runners: list[Runner] = field(default_factory=list)
    spec: Optional[PreprocessSpec] = None
    postprocessor: Optional[Postprocessor] = None
    device_post: Optional[Callable[[dict], dict]] = None

    def close(self) -> None:
        """Release the runners and the sources (safe to call twice)."""
        for runner in self.runners:
            runner.deactivate()
        for st in self.streams.values():
            if st.source is not None:
                st.source.close()


def assemble(parts: Components, sinks: Optional[list[Sink]], keep_images: bool,
             report: Callable[[str], None], machine: Optional[Machine] = None) -> None:
    """Build every part of ``parts`` from ``parts.config`` (replaced by the effective config).
    Raises the :class:`~streamtrt.errors.StreamTRTError` of the first part that fails; the
    caller closes ``parts`` then."""
    config = parts.config
    check_config_sources(config)  # options a stream's kind would ignore are refused, with the key path
    stream_configs = config.streams()
    uris = [parse_source_uri(sc.uri) for sc in stream_configs]
    machine = machine or Machine(config.runtime.device_id)
    parts.plan = plan_choices(config, uris, keep_alive=parts.keep_alive, machine=machine)
    # The model file read once: its input, preprocessing, format and names, each with a reason.
    setup = parts.model_setup = resolve_model(config)
    for warning in setup.warnings:
        report(f"warning: {warning}")
    check_names(config, setup.class_names, _sink_filters(config, sinks), parts.keep_alive, report)
    parts.sinks = sinks if sinks is not None else [open_sink(s, config.delivery, f"sinks.{i}")
                                                         for i, s in enumerate(config.sinks)]
    parts.keep_images = keep_images or any(s.needs_images for s in parts.sinks)
    for sink in parts.sinks:
        sink.configure(config.analytics)
    for sc, uri in zip(stream_configs, uris):
        parts.streams[sc.id] = open_stream(sc, uri, parts.plan, config)
    check_image_sinks(parts.sinks, len(parts.streams), parts.keep_alive)
    spec = parts.spec = setup.spec()
    plan, config = resolve_plan(config, parts.plan, frame_sizes=[(st.info.height, st.info.width)
                                                                 for st in parts.streams.values()],
                                spec=spec, keep_images=parts.keep_images, keep_alive=parts.keep_alive, report=report,
                                calibration_frames=read_calibration_frames)
    parts.plan, parts.config = plan, config
    threads = plan.thread_plan
    # Engine builds take minutes: the runner says so (and why) through ``report``.
    for settings in plan.engine_settings:
        parts.runners.append(create_runner(plan.runner, settings, spin=threads.spin, report=report,
                                           workers=threads.workers))
    runner = parts.runners[0]
    # one zero batch tells the real output shapes (exports often leave them undeclared)
    decoder = select_for(setup, output_shapes(setup, runner.infer, runner.inputs[0].fixed_batch or 1))
    plan = parts.plan = settle_postprocessor(plan, decoder, config.runtime.postprocessor)
    low = config.tracker.thresholds(config.postprocess.score_threshold).low if config.tracker.enabled else None
    parts.postprocessor = Postprocessor(decoder, setup.class_names, config.postprocess, low)
    if plan.postprocessor == "gpu":
        parts.postprocessor, parts.device_post = _device_postprocessor(parts.postprocessor, runner, config,
                                                                       setup.class_names)


def source_config(source: Union[str, dict, SourceConfig]) -> SourceConfig:
    """A stream added while running: a URI, a mapping of source keys, or a :class:`SourceConfig`.
    Raises :class:`ConfigError` (with the key path) for a bad mapping."""
    if isinstance(source, SourceConfig):
        sc = source
    elif isinstance(source, str):
        sc = SourceConfig(uri=source)
    else:
        from pydantic import ValidationError

        try:
            sc = SourceConfig.model_validate(source)
        except ValidationError as exc:
            from ..config import _format_validation_error

            raise ConfigError(_format_validation_error(exc, "source")) from None
    check_source_options(sc, "source")
    return sc


def open_stream(sc: SourceConfig, uri: SourceURI, plan: Plan, config: Config) -> StreamState:
    """Open one stream's source as the plan decodes it (a probe only, for GPU decode: the GPU
    stage opens the file itself) and work out how many frames it promises."""
    rt = config.runtime
    live = sc.live if sc.live is not None else uri.is_live
    decoder = plan.decoder_for(uri)
    threads = plan.thread_plan.decode if plan.thread_plan is not None else None
    source = None
    if decoder in ("cpu", "nvdec"):
        source = open_source(uri, sc.id, rt.threads or threads, sc, config.live,
                             nvdec_device=rt.device_id if decoder == "nvdec" else None)
        info = source.info
    elif decoder == "gstreamer":
        from ..sources.gstreamer import GStreamerFileSource

        source = GStreamerFileSource(uri.location, uri.display, sc.id, sc.orientation)
        info = source.info
    else:
        info = probe_video(Path(uri.location), uri.display, sc.id, sc.orientation, sc.fps)
    if sc.pace and source is not None:
        source = PacedSource(source)
    chunk = rt.stream_batch or (1 if (live or sc.pace) else rt.batch_size)
    stream = StreamState(sc.id, uri, sc, info, decoder, live, drop_stale_for(live, config.live),
                         min(chunk, rt.batch_size), source)
    count = info.frame_count
    stream.expected_frames = None if live else (min(count, rt.max_frames) if count and rt.max_frames
                                                else (count or rt.max_frames))
    # a guess (duration x rate, or only the max_frames cap): a progress total, never a count of bad frames
    stream.expected_estimated = bool(info.frame_count_estimated or not count)
    return stream


def make_preprocessor(plan: Plan, spec: PreprocessSpec, config: Config, batch: int,
                      decoder: str = "cpu") -> Callable:
    """The host-side preprocessor of a stream (``decoder``: its decoder; NVDEC frames are on the
    GPU and are preprocessed there): ``(images) -> (tensor, geometries)``."""
    rt = config.runtime
    threads = plan.thread_plan
    if decoder == "nvdec":
        from ..preprocess.dali import DaliGpuPreprocessor

        return DaliGpuPreprocessor(spec, batch, rt.device_id)
    if plan.preprocessor == "opencv" or (plan.preprocessor == "dali-gpu" and not dali_available()):
        if threads is not None and threads.opencv is not None:
            import cv2

            cv2.setNumThreads(threads.opencv)  # process-wide: the plan says why
        return OpenCVPreprocessor(spec)
    return DaliCpuPreprocessor(spec, batch, rt.threads or (threads.preprocess if threads is not None else None))


def check_image_sinks(sinks: list[Sink], streams: int, keep_alive: bool) -> None:
    """A video sink shows one stream: with several (or streams added later) its URI must pick one."""
    if streams <= 1 and not keep_alive:
        return
    for sink in sinks:
        if sink.needs_images:
            rule = sink.rule
            if rule is None or rule.streams is None or len(rule.streams) != 1:
                raise ConfigError(f"{sink.display or 'video sink'}: with several sources (or streams "
                                  "added while running) a video sink shows one stream: add ?streams=ID to its URI")


def _sink_filters(config: Config, sinks: Optional[list[Sink]]) -> list[tuple[str, Any]]:
    """(key path, filter or None) of each sink, for :func:`~streamtrt.names.check_names`."""
    if sinks is None:
        return [(f"sinks.{i}", sink_filter(uri)) for i, uri in enumerate(config.sinks)]
    return [(f"sinks.{i}", s.rule) for i, s in enumerate(sinks)]


def _device_postprocessor(host: Postprocessor, runner: Runner, config: Config,
                          class_names: list[str]) -> tuple[Postprocessor, Callable[[dict], dict]]:
    """Decode+NMS on the GPU (NanoDet outputs: :func:`settle_postprocessor` checked it); the host
    postprocessor then only maps the final boxes back to source pixels."""
    import cupy

    from ..postprocess.device import DeviceNanoDetPostprocessor, FinalDetectionsDecoder, as_cupy

    cfg = config.postprocess
    post = DeviceNanoDetPostprocessor(host.decoder, host.threshold, cfg.iou_threshold, cfg.max_detections,
                                      host.class_filter, len(class_names), xp=cupy)
    dtypes = {o.name: o.dtype for o in runner.outputs}
    final = Postprocessor(FinalDetectionsDecoder(), class_names, cfg, host.threshold)
    return final, lambda outs: post({k: as_cupy(v, dtypes[k]) for k, v in outs.items()})
