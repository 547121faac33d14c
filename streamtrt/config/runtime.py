"""How the pipeline runs: runners, batching, threads, memory; metrics, control and delivery."""

from __future__ import annotations

from typing import Literal, Optional, Union

from pydantic import Field


from .base import _Strict


class RuntimeConfig(_Strict):
    """Where each stage runs and how much is in flight."""

    decoder: Literal["auto", "cpu", "dali-gpu", "gstreamer"] = "auto"
    """``cpu``: FFmpeg (PyAV); ``dali-gpu``: DALI on NVDEC; ``gstreamer``: Jetson's nvv4l2decoder;
    ``auto``: DALI on a GPU, GStreamer hardware decode on a Jetson without DALI, else the CPU."""
    preprocessor: Literal["auto", "dali", "opencv"] = "auto"
    """Host-side preprocessing after CPU decode: DALI CPU pipeline or the OpenCV fallback."""
    runner: str = "auto"
    """``auto`` or a registered runner (``streamtrt.engine.RUNNERS``: onnxruntime-cpu, onnxruntime-cuda,
    tensorrt; checked when the plan is made)."""
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


class ControlConfig(_Strict):
    """An HTTP endpoint to list, add and remove streams while running."""

    enabled: bool = False
    host: str = "127.0.0.1"
    """Bind address; only loopback unless you choose otherwise."""
    port: int = Field(9401, ge=0, le=65535)
    """0 picks a free port (logged)."""


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
