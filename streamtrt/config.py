"""The typed configuration: one schema, defaults in one place.

The same YAML format is read by the CLI (``streamtrt run CONFIG``), the Python API
(``Pipeline.from_config``) and the samples. Unknown keys are rejected with their key path.

Relative input paths (``source``, ``model.path``, a ``model.classes`` file) are resolved against
the directory of the config file, so a config works from any working directory. Output paths
(``sinks``) are relative to the working directory, like any command-line output.
"""

from __future__ import annotations

import copy
import os
import re
from pathlib import Path
from typing import Any, Literal, NamedTuple, Optional, Union

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator, model_validator

from .errors import ConfigError


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True, frozen=False)


class InputConfig(_Strict):
    """How frames become the model's input tensor. A key left unset takes what the model's metadata
    says (an Ultralytics export: letterbox, pad 114, RGB, /255), else the default shown; a key set
    here wins, and ``run`` warns where it disagrees with the metadata."""

    resize: Literal["stretch", "letterbox"] = "stretch"
    """``stretch``: plain resize to the input size; ``letterbox``: keep aspect ratio and pad."""
    color: Literal["bgr", "rgb"] = "bgr"
    """Channel order the model expects."""
    mean: tuple[float, float, float] = (0.0, 0.0, 0.0)
    """Subtracted per channel, in pixel units (0..255), in the order given by ``color``."""
    std: tuple[float, float, float] = (1.0, 1.0, 1.0)
    """Divides per channel after the mean, e.g. ``[255, 255, 255]`` for YOLO models."""
    pad_value: int = Field(114, ge=0, le=255)
    """Fill value of the letterbox border."""
    dtype: Optional[Literal["float32", "float16"]] = None
    """Input dtype; by default read from the model."""
    size: Optional[tuple[int, int]] = None
    """Input (height, width) for a model that leaves them dynamic; default: the metadata's ``imgsz``."""

    @field_validator("std")
    @classmethod
    def _std_not_zero(cls, v: tuple[float, float, float]) -> tuple[float, float, float]:
        if any(s == 0 for s in v):
            raise ValueError("std values must be non-zero")
        return v


class ModelConfig(_Strict):
    """The detector."""

    path: Path
    """An ONNX model (or, with the TensorRT runner, an ONNX model to build an engine from)."""
    format: Literal["auto", "nanodet", "yolov8", "yolov5", "decoded", "efficientnms", "rtdetr", "tfod"] = "auto"
    """Output layout; ``auto`` picks it from the model's metadata (Ultralytics exports) and output shapes.
    ``decoded``: ``[B, N, 6]`` rows of x1, y1, x2, y2, score, class (YOLOv10, YOLO26, end-to-end exports);
    ``rtdetr``: normalised cxcywh queries with per-class scores; ``tfod``: TensorFlow Object Detection API."""
    classes: Union[Literal["coco"], list[str], Path] = "coco"
    """Class names: ``coco``, a list, or a text file with one name per line. When unset, the names
    in the model's metadata (Ultralytics ``names``), else COCO's."""
    input: InputConfig = InputConfig()


class PostprocessConfig(_Strict):
    """Turning raw outputs into detections."""

    score_threshold: float = Field(0.35, ge=0.0, le=1.0)
    iou_threshold: float = Field(0.5, ge=0.0, le=1.0)
    """IoU above which a lower-scored box of the same class is suppressed."""
    max_detections: int = Field(100, ge=1)
    """Per frame, after NMS."""
    classes: Optional[list[Union[int, str]]] = None
    """Keep only these classes (ids or names); all when unset."""


class RuntimeConfig(_Strict):
    """Where each stage runs and how much is in flight."""

    decoder: Literal["auto", "cpu", "dali-gpu", "gstreamer"] = "auto"
    """``cpu``: FFmpeg (PyAV); ``dali-gpu``: DALI on NVDEC; ``gstreamer``: Jetson's nvv4l2decoder;
    ``auto``: DALI on a GPU, GStreamer hardware decode on a Jetson without DALI, else the CPU."""
    preprocessor: Literal["auto", "dali", "opencv"] = "auto"
    """Host-side preprocessing after CPU decode: DALI CPU pipeline or the OpenCV fallback."""
    runner: Literal["auto", "onnxruntime-cpu", "onnxruntime-cuda", "tensorrt"] = "auto"
    postprocessor: Literal["auto", "cpu", "gpu"] = "auto"
    """Where decode and NMS run. ``gpu``: CuPy on the runner's device outputs, so only final
    detections cross to the host (NanoDet outputs with ``onnxruntime-cuda``); ``auto``: there when
    possible, else the CPU."""
    device_id: int = Field(0, ge=0)
    batch_size: int = Field(1, ge=1, le=1024)
    """Frames per inference batch."""
    slots: int = Field(2, ge=1, le=64)
    """Batches in flight between two stages (queue depth); 2 is double buffering."""
    cuda_graph: Union[bool, Literal["auto"]] = "auto"
    """Replay inference as a CUDA graph (GPU runners): far fewer kernel launches. ``auto``: where
    the model's shapes are static and the capture succeeds; ``true``: required."""
    max_frames: Optional[int] = Field(None, ge=1)
    """Stop after this many frames (all frames when unset)."""
    memory_budget_mb: Optional[int] = Field(None, ge=1)
    """Cap on what streamtrt allocates (frames and tensors in flight, model, TensorRT workspace):
    the queue depth and workspace are fitted to it, and the run refuses to start if it cannot fit."""
    threads: Optional[int] = Field(None, ge=1)
    """Threads for the CPU runner and DALI CPU pipelines; default: the number of cores."""
    batch_timeout_ms: float = Field(20.0, ge=0.0)
    """With several streams: a batch that is not full goes to inference this long after its first frame."""
    stream_batch: Optional[int] = Field(None, ge=1)
    """Frames one stream decodes and hands over at a time; default ``batch_size`` for files read as fast
    as possible, 1 for live or paced sources (latency)."""
    engines: int = Field(1, ge=1, le=16)
    """Model instances, each with its own batcher, serving the streams side by side; a stream stays on
    one (``sources[].engine``, else the one with fewest streams). A ``tensorrt.dla_core`` list sets one
    engine per DLA core."""


class SourceConfig(_Strict):
    """One input stream. A plain string in ``sources`` is the same as ``{uri: ...}``."""

    uri: str
    """A path, ``file://``, image folder or glob, ``rtsp://``, ``http(s)://``, ``v4l2:///dev/videoN``,
    a camera index, ``csi://N``, ``gst://PIPELINE`` or ``ffmpeg://INPUT``."""
    id: Optional[str] = None
    """Stream id in records, metrics and status; default: its position in ``sources`` (``0``, ``1``, ...)."""
    transport: Literal["tcp", "udp"] = "tcp"
    """RTSP transport."""
    options: dict[str, str] = Field(default_factory=dict)
    """Extra FFmpeg demuxer/protocol options (e.g. ``{buffer_size: "1048576"}``)."""
    format: Optional[str] = None
    """Force an FFmpeg input format (e.g. ``mjpeg``, ``v4l2``); probed when unset."""
    pace: bool = False
    """Replay a file at its frame rate, like a camera (for tests and benchmarks)."""
    live: Optional[bool] = None
    """Treat as live (reconnect, drop stale frames); default: true for network and camera sources."""
    engine: Optional[int] = Field(None, ge=0)
    """Which engine serves this stream (an index into the ``tensorrt.dla_core`` list or below
    ``runtime.engines``); default: the one with fewest streams."""
    fps: Optional[float] = Field(None, gt=0.0, le=1000.0)
    """Frame rate of a file that carries none (a raw ``.h264``/``.h265`` stream; it overrides the
    codec's own timing there) or of an image sequence (frames then get timestamps ``index / fps``).
    Files with timestamps keep their own (a warning says the option was not used)."""
    orientation: Literal["auto", "ignore"] = "auto"
    """``auto``: frames are turned as players show them (a video's display matrix, an image's EXIF
    orientation), and sizes and boxes are in displayed pixels; ``ignore``: as stored."""

    @field_validator("options", "format", "transport", "pace", "fps", "orientation")
    @classmethod
    def _applies_to_kind(cls, v: Any, info: ValidationInfo) -> Any:
        """Options that a source kind would ignore are refused instead. A default value is never
        refused (a dumped and re-read config spells every default out)."""
        uri = info.data.get("uri")
        if not isinstance(uri, str) or v == cls.model_fields[info.field_name].get_default(call_default_factory=True):
            return v
        from .sources.uri import source_kind

        kind = source_kind(uri)
        kinds = _SOURCE_KEY_KINDS[info.field_name]
        if kind is not None and kind not in kinds:
            what = "a video file" if kind == "file" else ("an image folder or glob" if kind == "images"
                                                           else f"a {kind} source")
            hint = " (to state a file's frame rate use fps)" if info.field_name == "options" and kind == "file" else ""
            raise ValueError(f"does not apply to {what}; it applies to {', '.join(sorted(kinds))} sources{hint}")
        return v

    @field_validator("id")
    @classmethod
    def _id_is_label(cls, v: Optional[str]) -> Optional[str]:
        if v is not None and not re.fullmatch(r"[A-Za-z0-9_.:-]{1,64}", v):
            raise ValueError("a stream id is 1-64 letters, digits or _ . : -")
        return v


_FFMPEG_LIVE = frozenset({"rtsp", "http", "v4l2", "ffmpeg"})
_SOURCE_KEY_KINDS: dict[str, frozenset] = {
    "options": _FFMPEG_LIVE | {"csi"},  # FFmpeg demuxer/protocol options; csi: width, height, framerate
    "format": _FFMPEG_LIVE,
    "transport": frozenset({"rtsp"}),
    "pace": frozenset({"file", "images"}),
    "fps": frozenset({"file", "images"}),
    "orientation": _FFMPEG_LIVE | {"file", "images"},
}


class LiveConfig(_Strict):
    """Supervision of live sources: reconnecting, stall detection and the latency policy."""

    reconnect_initial_s: float = Field(0.5, gt=0.0)
    """First backoff delay after a failure; doubles (with jitter) up to ``reconnect_max_s``."""
    reconnect_max_s: float = Field(30.0, gt=0.0)
    max_reconnects: Optional[int] = Field(None, ge=0)
    """Give a live stream up after this many failed attempts in a row; retry forever when unset."""
    stall_timeout_s: float = Field(5.0, gt=0.0)
    """No frame for this long means the stream is reconnected."""
    open_timeout_s: float = Field(10.0, gt=0.0)
    """Connecting (and reading the stream header) may take this long."""
    drop_stale: Union[bool, Literal["auto"]] = "auto"
    """Drop the oldest waiting frames instead of queueing when inference falls behind.
    ``auto``: for live sources; file frames are never dropped."""
    queue_frames: int = Field(2, ge=1, le=256)
    """Frames a live stream may have waiting before stale ones are dropped."""
    decoder: Literal["auto", "cpu", "nvdec"] = "auto"
    """Decode of FFmpeg live sources (RTSP, HTTP, V4L2, ``ffmpeg://``): ``nvdec`` on the GPU
    (PyNvVideoCodec, then DALI GPU preprocessing) for the codecs NVDEC takes, the CPU for others;
    ``auto``: NVDEC where a GPU, PyNvVideoCodec, CuPy and DALI are present."""


class ControlConfig(_Strict):
    """An HTTP endpoint to list, add and remove streams while running."""

    enabled: bool = False
    host: str = "127.0.0.1"
    """Bind address; only loopback unless you choose otherwise."""
    port: int = Field(9401, ge=0, le=65535)
    """0 picks a free port (logged)."""


class ProfileConfig(_Strict):
    """An optimization profile for a model whose batch dimension is dynamic."""

    min_batch: int = Field(1, ge=1)
    opt_batch: Optional[int] = Field(None, ge=1)
    """Default: ``runtime.batch_size``."""
    max_batch: Optional[int] = Field(None, ge=1)
    """Default: ``runtime.batch_size``."""


class CalibrationConfig(_Strict):
    """INT8 entropy calibration: frames run through the same preprocessing as inference."""

    source: Optional[str] = None
    """A video file or image folder/glob; required for ``precision: int8`` unless a cache exists."""
    frames: int = Field(256, ge=1)
    batch_size: int = Field(8, ge=1)
    cache: Optional[Path] = None
    """Calibration cache file; default: beside the engine in the cache directory."""


class TensorRTConfig(_Strict):
    """How the TensorRT runner builds, caches and runs engines."""

    precision: Literal["fp32", "fp16", "int8"] = "fp16"
    """``int8`` calibrates unless the model is explicitly quantized (Q/DQ), which is taken as is."""
    workspace_mb: Optional[int] = Field(None, ge=1)
    """Builder workspace (memory-pool) limit; TensorRT's default when unset."""
    profile: ProfileConfig = ProfileConfig()
    dla_core: Union[None, int, list[int]] = None
    """Run on this DLA core (Jetson); refused where the device has no DLA. A list (``[0, 1]``) loads one
    engine per core, each serving its own streams."""
    gpu_fallback: bool = True
    """With ``dla_core``: layers DLA cannot run go to the GPU."""
    plugins: list[Path] = Field(default_factory=list)
    """Plugin libraries to load; nothing else is ever loaded."""
    cache_dir: Optional[Path] = None
    """Engine cache; default ``$XDG_CACHE_HOME/streamtrt/engines`` (``~/.cache/streamtrt/engines``)."""
    timing_cache: bool = True
    """Keep and reuse a builder timing cache in the cache directory."""
    calibration: CalibrationConfig = CalibrationConfig()

    @field_validator("dla_core")
    @classmethod
    def _distinct_cores(cls, v: Any) -> Any:
        if any(c < 0 for c in (v if isinstance(v, list) else [v] if v is not None else [])):
            raise ValueError("DLA cores are numbered from 0")
        if isinstance(v, list) and (not v or len(set(v)) != len(v)):
            raise ValueError("a list of DLA cores must name each core once (e.g. [0, 1])")
        return v


#: ByteTrack's first-association threshold as the field's common implementations set it: Ultralytics
#: ``cfg/trackers/bytetrack.yaml`` (``track_high_thresh: 0.25``) and supervision's
#: ``ByteTrack(track_activation_threshold=0.25)``.
TRACK_HIGH_DEFAULT = 0.25
#: ByteTrack's second-association floor: Ultralytics ``track_low_thresh: 0.1``, supervision's ``scores > 0.1``.
TRACK_LOW_DEFAULT = 0.1


class TrackThresholds(NamedTuple):
    """The tracker's score thresholds once defaults are resolved against ``postprocess.score_threshold``."""

    high: float
    low: float
    new_track: float


class TrackerConfig(_Strict):
    """ByteTrack-style multi-object tracking, one tracker per stream.

    The thresholds must fit the detector: every detection streamtrt reports (score above
    ``postprocess.score_threshold``) can start or continue a track, so ``high_threshold`` and
    ``new_track_threshold`` may not exceed ``postprocess.score_threshold`` (checked when the config
    is read). Unset, ``high`` and ``low`` follow Ultralytics and supervision (0.25, 0.1), lowered to
    ``postprocess.score_threshold`` where that is lower, and a new track starts from any detection
    streamtrt reports (``postprocess.score_threshold``; supervision's effective new-track threshold is
    its 0.25 + 0.1 = 0.35, the sample's): see :meth:`thresholds` and ``benchmarks/tracker_peer.py``."""

    enabled: bool = False
    high_threshold: Optional[float] = Field(None, ge=0.0, le=1.0)
    """Detections at or above this score are associated first (and may start tracks);
    default ``min(0.25, postprocess.score_threshold)``."""
    low_threshold: Optional[float] = Field(None, ge=0.0, le=1.0)
    """Detections between this and ``high_threshold`` can continue a confirmed track (second stage);
    default ``min(0.1, high_threshold)``."""
    new_track_threshold: Optional[float] = Field(None, ge=0.0, le=1.0)
    """A confident detection that matches no track starts one at or above this score; default
    ``postprocess.score_threshold``: what the sinks show starts tracks, weaker candidates only continue them."""
    match_iou: float = Field(0.2, ge=0.0, le=1.0)
    """Minimum IoU between a predicted track box and a confident detection (Ultralytics and
    supervision: ``match_thresh``/``minimum_matching_threshold`` 0.8 on 1 - IoU)."""
    fuse_score: bool = True
    """Weigh the IoU of confident matches by the detection's score (IoU x score >= ``match_iou``), as
    Ultralytics (``fuse_score: True``) and supervision do: a weak box far from a track does not take it."""
    low_match_iou: float = Field(0.5, ge=0.0, le=1.0)
    """Minimum IoU in the second (low-score) stage (0.5 in both peers)."""
    track_buffer_s: float = Field(3.0, gt=0.0)
    """How long a lost track is kept for re-association, in seconds of video."""
    min_hits: int = Field(2, ge=1)
    """Matches before a new track gets an id (tracks of the first frame get one at once); until
    then its detections are reported as ``tentative``."""
    class_aware: bool = True
    """Never associate a detection with a track of another class."""

    def thresholds(self, score_threshold: float) -> TrackThresholds:
        """Resolve unset thresholds against the detector's ``postprocess.score_threshold``."""
        high = self.high_threshold if self.high_threshold is not None else min(TRACK_HIGH_DEFAULT, score_threshold)
        low = self.low_threshold if self.low_threshold is not None else min(TRACK_LOW_DEFAULT, high)
        new = self.new_track_threshold if self.new_track_threshold is not None else max(high, score_threshold)
        return TrackThresholds(high, low, new)

    def threshold_problem(self, score_threshold: float) -> Optional[str]:
        """Why these thresholds would let reported detections go untracked (None when they fit)."""
        t = self.thresholds(score_threshold)
        for key, value, role in (("high_threshold", t.high, "start or continue a track"),
                                 ("new_track_threshold", t.new_track, "start a track")):
            if value > score_threshold:
                return (f"tracker.{key}: {value:g} is above postprocess.score_threshold {score_threshold:g}: "
                        f"detections scored between them are reported but could never {role}; "
                        f"set it to at most {score_threshold:g}, or leave it unset")
        if t.low > t.high:
            return f"tracker.low_threshold: {t.low:g} is above tracker.high_threshold {t.high:g}"
        return None


Point = tuple[float, float]


class LineConfig(_Strict):
    """A counting line. ``in``: crossing from the right of the start->end arrow to its left as seen
    on screen (for a line drawn top to bottom, moving left to right); ``out``: the other way."""

    name: str
    start: Point
    end: Point
    classes: Optional[list[str]] = None
    """Count only these classes (all when unset)."""
    anchor: Literal["bottom_center", "center"] = "bottom_center"
    """The point of a box that crosses: its bottom centre (feet) or its centre."""
    margin_px: Optional[float] = Field(None, ge=0.0)
    """Hysteresis: a crossing counts once the anchor is more than this many pixels past the line,
    having been as far on the other side before; default ``margin_ratio`` x the box height."""
    margin_ratio: float = Field(0.1, ge=0.0, le=1.0)
    """The default margin as a fraction of the box height (box jitter grows with the box)."""


class ZoneConfig(_Strict):
    """A polygon zone: occupancy, dwell time, enter and exit events."""

    name: str
    points: list[Point] = Field(min_length=3)
    classes: Optional[list[str]] = None
    anchor: Literal["bottom_center", "center"] = "bottom_center"
    margin_px: Optional[float] = Field(None, ge=0.0)
    """Hysteresis: an object enters once its anchor is more than this many pixels inside the polygon's
    edge and exits once it is as far outside; default ``margin_ratio`` x the box height."""
    margin_ratio: float = Field(0.1, ge=0.0, le=1.0)


class AnalyticsConfig(_Strict):
    """Line crossing and zone analytics on tracked objects (needs ``tracker.enabled``)."""

    lines: list[LineConfig] = Field(default_factory=list)
    zones: list[ZoneConfig] = Field(default_factory=list)


class MetricsConfig(_Strict):
    """A Prometheus endpoint at ``http://host:port/metrics`` while the pipeline runs."""

    enabled: bool = False
    host: str = "127.0.0.1"
    """Bind address; only loopback unless you choose otherwise."""
    port: int = Field(9400, ge=0, le=65535)
    """0 picks a free port (logged)."""


class DeliveryConfig(_Strict):
    """Network sinks (MQTT, webhooks): defaults that a sink URI's own options override."""

    drain_s: float = Field(10.0, ge=0.0)
    """At the end of a run, how long to keep delivering what is still in the outbox (progress is
    shown on stderr); what is left after it waits in the outbox for the next run. Per sink: ``?drain=S``."""


class Config(_Strict):
    """A whole streamtrt job."""

    source: Optional[str] = None
    """One input: see :class:`SourceConfig` ``uri``. Use ``sources`` for several."""
    sources: list[SourceConfig] = Field(default_factory=list)
    """Several inputs, decoded side by side and batched together for inference; each a URI
    string or a mapping (see :class:`SourceConfig`)."""
    model: ModelConfig
    postprocess: PostprocessConfig = PostprocessConfig()
    runtime: RuntimeConfig = RuntimeConfig()
    tensorrt: TensorRTConfig = TensorRTConfig()
    tracker: TrackerConfig = TrackerConfig()
    analytics: AnalyticsConfig = AnalyticsConfig()
    live: LiveConfig = LiveConfig()
    metrics: MetricsConfig = MetricsConfig()
    control: ControlConfig = ControlConfig()
    delivery: DeliveryConfig = DeliveryConfig()
    sinks: list[str] = Field(default_factory=list)
    """Sink URIs: ``jsonl:PATH`` (``jsonl:-`` for stdout), ``video:PATH``, ``summary:PATH``,
    or a bare path whose suffix picks the kind (.jsonl, .mp4/.mkv/.avi, .json)."""

    @field_validator("sources", mode="before")
    @classmethod
    def _strings_are_uris(cls, v: Any) -> Any:
        if isinstance(v, list):
            return [{"uri": item} if isinstance(item, str) else item for item in v]
        return v

    @model_validator(mode="after")
    def _one_kind_of_source(self) -> "Config":
        if self.source is not None and self.sources:
            raise ValueError("set either source or sources, not both")
        if self.source is None and not self.sources and not self.control.enabled:
            raise ValueError("no input: set source or sources (or enable control to add streams later)")
        ids = [s.id for s in self.streams()]
        dup = sorted({i for i in ids if ids.count(i) > 1})
        if dup:
            raise ValueError(f"sources: duplicate stream id {dup[0]!r}")
        return self

    @model_validator(mode="after")
    def _engines_exist(self) -> "Config":
        cores = self.tensorrt.dla_core
        if isinstance(cores, list) and self.runtime.engines not in (1, len(cores)):
            raise ValueError(f"runtime.engines {self.runtime.engines} does not match the {len(cores)} cores "
                             "of tensorrt.dla_core (one engine per core)")
        n = self.engine_count()
        for i, sc in enumerate(self.sources):
            if sc.engine is not None and sc.engine >= n:
                raise ValueError(f"sources.{i}.engine: {sc.engine} is not one of the {n} engine(s) "
                                 "(runtime.engines or the tensorrt.dla_core list)")
        return self

    def engine_count(self) -> int:
        """Model instances this job loads (see ``runtime.engines``)."""
        cores = self.tensorrt.dla_core
        return len(cores) if isinstance(cores, list) else self.runtime.engines

    def engine_configs(self) -> list["Config"]:
        """One config per engine, each naming a single DLA core (or none)."""
        cores = self.tensorrt.dla_core
        if not isinstance(cores, list):
            return [self] * self.runtime.engines
        return [self.model_copy(update={"tensorrt": self.tensorrt.model_copy(update={"dla_core": c})})
                for c in cores]

    def streams(self) -> list[SourceConfig]:
        """Every input as a :class:`SourceConfig` with its stream id filled in."""
        items = [self.source] if self.source is not None else list(self.sources)
        out = []
        for i, item in enumerate(items):
            sc = SourceConfig(uri=item) if isinstance(item, str) else item
            out.append(sc if sc.id is not None else sc.model_copy(update={"id": str(i)}))
        return out

    @model_validator(mode="after")
    def _analytics_need_tracking(self) -> "Config":
        if (self.analytics.lines or self.analytics.zones) and not self.tracker.enabled:
            raise ValueError("analytics: lines and zones follow tracked objects; set tracker.enabled: true")
        names = [x.name for x in [*self.analytics.lines, *self.analytics.zones]]
        if len(names) != len(set(names)):
            raise ValueError("analytics: line and zone names must be unique")
        return self

    @model_validator(mode="after")
    def _tracker_thresholds_fit_detector(self) -> "Config":
        if self.tracker.enabled:
            problem = self.tracker.threshold_problem(self.postprocess.score_threshold)
            if problem:
                raise ValueError(problem)
        return self

    @model_validator(mode="after")
    def _classes_file_exists(self) -> "Config":
        classes = self.model.classes
        if isinstance(classes, Path) and not classes.is_file():
            raise ValueError(f"model.classes: class-name file not found: {classes}")
        return self


_INPUT_PATH_KEYS = (
    ("source",), ("model", "path"), ("model", "classes"), ("tensorrt", "calibration", "source"),
    ("tensorrt", "calibration", "cache"), ("tensorrt", "cache_dir"),
)
_INPUT_PATH_LISTS = (("tensorrt", "plugins"),)


def _did_you_mean(model_name: str, loc: list) -> Optional[str]:
    """The closest known key to an unknown one (``loc``'s last part), by difflib, or None."""
    import difflib
    import typing

    def model_in(annotation):
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            return annotation
        for arg in typing.get_args(annotation):
            found = model_in(arg)
            if found is not None:
                return found
        return None

    model = globals().get(model_name)
    if not (isinstance(model, type) and issubclass(model, BaseModel)):
        return None
    for part in loc[:-1]:
        if not isinstance(part, str):
            continue  # a list index: the item model is already the current one
        field = model.model_fields.get(part)
        if field is None:
            return None
        model = model_in(field.annotation)
        if model is None:
            return None
    names = list(model.model_fields) + [f.alias for f in model.model_fields.values() if f.alias]
    close = difflib.get_close_matches(str(loc[-1]), names, n=1, cutoff=0.6)
    if not close:
        return None
    return ".".join(str(p) for p in loc[:-1]) + ("." if len(loc) > 1 else "") + close[0]


def _format_validation_error(err: ValidationError, origin: str, overrides: Optional[list[str]] = None) -> str:
    """One line for a validation error: ``ORIGIN: problem; problem``. ``ORIGIN`` is the config file,
    or ``--set KEY=VALUE`` where the first problem lies under a key that override set."""
    parts = []
    for e in err.errors():
        # Union members and validators add tags such as "list[str]" to the location: drop them.
        loc = ".".join(str(p) for p in e["loc"] if not (isinstance(p, str) and "[" in p))
        if not parts and overrides:
            origin = _override_for(loc, overrides) or origin
        if e["type"] == "extra_forbidden":
            hint = _did_you_mean(err.title, [p for p in e["loc"] if not (isinstance(p, str) and "[" in p)])
            parts.append(f"unknown key '{loc}'" + (f" (did you mean '{hint}'?)" if hint else ""))
        elif e["type"] == "missing":
            parts.append(f"missing required key '{loc}'")
        else:
            msg = e["msg"].removeprefix("Value error, ")
            parts.append(f"{loc}: {msg}" if loc else msg)
    # Union members report one error each; keep the message short and unique.
    seen: list[str] = []
    for p in parts:
        if p not in seen:
            seen.append(p)
    return f"{origin}: " + "; ".join(seen[:3]) + (f" (and {len(seen) - 3} more)" if len(seen) > 3 else "")


def _override_for(loc: str, overrides: list[str]) -> Optional[str]:
    """``--set ITEM`` for the last override whose key is ``loc``, a section above it or a key below it."""
    for item in reversed(overrides):
        key = ".".join(k for k in item.partition("=")[0].strip().split(".") if k)
        if key and (loc == key or loc.startswith(key + ".") or key.startswith(loc + ".")):
            return f"--set {item}"
    return None


def _resolve_input_paths(raw: dict[str, Any], base: Path) -> None:
    sources = raw.get("sources")
    if isinstance(sources, list):
        for i, item in enumerate(sources):
            if isinstance(item, str) and not _is_uri_or_device(item):
                sources[i] = _resolve(item, base)
            elif isinstance(item, dict) and isinstance(item.get("uri"), str) and not _is_uri_or_device(item["uri"]):
                item["uri"] = _resolve(item["uri"], base)
    for key_path in _INPUT_PATH_KEYS:
        node: Any = raw
        for k in key_path[:-1]:
            node = node.get(k) if isinstance(node, dict) else None
        if not isinstance(node, dict):
            continue
        value = node.get(key_path[-1])
        if not isinstance(value, str) or value == "coco" or _is_uri_or_device(value):
            continue
        node[key_path[-1]] = _resolve(value, base)
    for key_path in _INPUT_PATH_LISTS:
        node = raw
        for k in key_path[:-1]:
            node = node.get(k) if isinstance(node, dict) else None
        values = node.get(key_path[-1]) if isinstance(node, dict) else None
        if isinstance(values, list):
            node[key_path[-1]] = [_resolve(v, base) if isinstance(v, str) else v for v in values]


def _is_uri_or_device(value: str) -> bool:
    return "://" in value or value.isdigit() or value.startswith("/dev/")


def _resolve(value: str, base: Path) -> str:
    p = Path(os.path.expanduser(value))
    return str(p) if p.is_absolute() else os.path.normpath(str(base / p))


def parse_override(item: str) -> tuple[list[str], Any]:
    """Parse ``key.path=value``; the value is read as YAML (so ``8``, ``true``, ``[a, b]`` work)."""
    if "=" not in item:
        raise ConfigError(f"--set {item!r}: expected key=value")
    key, _, value = item.partition("=")
    path = [k for k in key.strip().split(".") if k]
    if not path:
        raise ConfigError(f"--set {item!r}: empty key")
    try:
        parsed = yaml.safe_load(value) if value.strip() else ""
    except yaml.YAMLError as exc:
        raise ConfigError(f"--set {item!r}: value is not valid YAML ({exc.__class__.__name__})") from None
    return path, parsed


def apply_overrides(raw: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Return a copy of ``raw`` with ``key.path=value`` overrides applied."""
    raw = copy.deepcopy(raw)
    for item in overrides:
        path, value = parse_override(item)
        if len(path) > 1 and path[0] == "sources" and not raw.get("sources") and isinstance(raw.get("source"), str):
            # `--set sources.0.fps=5` on a config that names its one input with `source:`
            raw["sources"], raw["source"] = [{"uri": raw["source"]}], None
        node: Any = raw
        for i, k in enumerate(path[:-1]):
            if isinstance(node, list):  # an item of a list by its index: sources.0.format
                idx = _list_index(node, k, item, path[:i])
                child = node[idx]
                if isinstance(child, str) and path[:i] == ["sources"]:
                    child = node[idx] = {"uri": child}  # a plain URI string is {uri: ...}
            else:
                child = node.get(k)
                if child is None:
                    child = node[k] = {}
            if not isinstance(child, (dict, list)):
                raise ConfigError(f"--set {item!r}: '{'.'.join(path[: i + 1])}' is not a section")
            node = child
        if isinstance(node, list):
            node[_list_index(node, path[-1], item, path[:-1])] = value
        else:
            node[path[-1]] = value
    return raw


def _list_index(items: list, key: str, item: str, where: list[str]) -> int:
    if not key.isdigit() or int(key) >= len(items):
        raise ConfigError(f"--set {item!r}: '{'.'.join(where)}' has {len(items)} item(s); "
                          f"'{key}' is not one of the indices 0..{len(items) - 1}")
    return int(key)


def read_yaml(path: Union[str, Path]) -> dict[str, Any]:
    """Read a YAML mapping, mapping I/O and syntax errors to :class:`ConfigError`."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"config file not found: {path}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read config file {path}: {exc}") from None
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or exc.__class__.__name__
        raise ConfigError(f"{path}: malformed YAML{where}: {problem}") from None
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level, got {type(raw).__name__}")
    return raw


def config_from_dict(raw: dict[str, Any], origin: str = "config", overrides: Optional[list[str]] = None) -> Config:
    """Validate a raw mapping into a :class:`Config`; ``overrides`` (the ``--set`` items applied to
    ``raw``) name the culprit when the error lies under one of their keys."""
    try:
        return Config.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(_format_validation_error(exc, origin, overrides)) from None


def load_config(
    source: Union[str, Path, dict[str, Any], Config],
    overrides: Optional[list[str]] = None,
) -> Config:
    """Load a config from a YAML file, a mapping or a :class:`Config`, applying ``key=value`` overrides.

    Relative input paths in a file are resolved against the file's directory.
    """
    if isinstance(source, Config):
        if not overrides:
            return source
        # Only what was set: keys left at their defaults stay "unset", so the model's metadata may fill them.
        raw, origin = source.model_dump(mode="json", exclude_unset=True), "config"
    elif isinstance(source, dict):
        raw, origin = copy.deepcopy(source), "config"
    else:
        path = Path(source)
        raw, origin = read_yaml(path), str(path)
        _resolve_input_paths(raw, path.resolve().parent)
    if overrides:
        raw = apply_overrides(raw, overrides)
    return config_from_dict(raw, origin, overrides)
