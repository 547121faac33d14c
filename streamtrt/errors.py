"""The streamtrt exception tree.

Every error a user can cause or meet is a :class:`StreamTRTError`; the CLI catches only the base
class, prints one line and exits with its ``exit_code``. Each third-party error family is mapped
into the tree at one boundary, and nowhere else (messages take :func:`first_line` of the
library's error):

* ONNX Runtime: ``engine/onnxruntime.py`` (``_import_ort``: BackendUnavailableError;
  ``ort_failure``: session creation -> ModelError, runs and CUDA-graph capture -> InferenceError);
  its quantizer in ``engine/quantize.py`` (ModelError).
* TensorRT: ``engine/tensorrt/module.py`` (import -> BackendUnavailableError),
  ``engine/tensorrt/builder.py`` (parse, build, plugins -> ModelError / ConfigError),
  ``engine/tensorrt/runner.py`` (deserialize -> ModelError, execute -> InferenceError), and the
  CUDA runtime calls in ``engine/cuda.py`` (``check``: InferenceError / BackendUnavailableError).
* DALI: ``preprocess/dali.py`` (``_import_dali``: BackendUnavailableError; pipeline errors through
  ``dali_error_line`` -> DecodeError / BackendUnavailableError, or GpuMemoryError through
  ``gpu_memory_error`` when the device is out of memory).
* PyNvVideoCodec (live NVDEC): ``sources/live.py`` ``_nvdec_for`` (GpuMemoryError through
  ``gpu_memory_error``; any other failure decodes that stream on the CPU).
* FFmpeg/PyAV: reading in ``sources/file.py`` (SourceError, DecodeError; bad packets counted) and
  ``sources/live.py`` (``_open_failure`` tells retryable failures from SourceError); writing in
  ``sinks/video.py`` (SinkError).
* paho-mqtt: ``sinks/mqtt.py`` (connect -> SinkError; publish -> the outbox's DeliveryError, retried).
* HTTP: webhooks in ``sinks/webhook.py`` (``deliver``: urllib errors -> DeliveryError, permanent for
  4xx other than 408/429); the control and metrics servers in ``runtime/``.
* Config files: ``config/loading.py`` (PyYAML and pydantic -> ConfigError with the key path).
"""

from __future__ import annotations

from typing import Optional


class StreamTRTError(Exception):
    """Base class of every error streamtrt raises on purpose."""

    exit_code = 1


class ConfigError(StreamTRTError):
    """The configuration is malformed, has an unknown key or an invalid value."""

    exit_code = 2


class SourceError(StreamTRTError):
    """A source cannot be opened or read."""

    exit_code = 3


class UnsupportedSourceError(SourceError):
    """The source URI names a scheme or a format streamtrt does not support (yet)."""


class DecodeError(SourceError):
    """The input could be opened but some or all of its frames could not be decoded."""


class ModelError(StreamTRTError):
    """The model cannot be loaded, or its outputs match no known decoder."""

    exit_code = 4


def first_line(exc: BaseException, limit: int = 300) -> str:
    """What a third-party exception says, for one line of a streamtrt message: its ``strerror``
    (OS and FFmpeg errors), else the first non-empty line of its message, else its type name;
    at most ``limit`` characters."""
    text = getattr(exc, "strerror", None) or str(exc)
    lines = [line.strip() for line in str(text).splitlines() if line.strip()]
    return (lines[0] if lines else type(exc).__name__)[:limit]


class BackendError(StreamTRTError):
    """A backend (DALI, CUDA, ONNX Runtime, TensorRT) cannot do what was asked of it."""

    exit_code = 5


class BackendUnavailableError(BackendError):
    """A backend named in the config (DALI GPU, CUDA, TensorRT) is not available here."""


class GpuMemoryError(BackendError):
    """The GPU could not allocate the memory a decoder, pipeline or engine needs: more streams or
    engines on it than its memory holds. Never taken for a corrupt input (no CPU fallback hides it)."""


# What CUDA, DALI and NVDEC say when the device is out of memory (cudaErrorMemoryAllocation,
# CUDA_ERROR_OUT_OF_MEMORY; DALI: "CUDA allocation failed", raised as MemoryError or RuntimeError).
_OUT_OF_MEMORY = ("cuda allocation failed", "out of memory", "cudaerrormemoryallocation", "cuda_error_out_of_memory")


def gpu_memory_error(exc: BaseException, what: str, detail: Optional[str] = None) -> Optional[GpuMemoryError]:
    """``exc`` from a GPU library as a :class:`GpuMemoryError` when it says the device ran out of
    memory (a ``MemoryError``, or a message with one of CUDA's, DALI's or NVDEC's out-of-memory
    phrases), else None. ``what``: the thing that failed; ``detail``: the library's own line
    (default: :func:`first_line` of ``exc``)."""
    if not (isinstance(exc, MemoryError) or any(m in str(exc).lower() for m in _OUT_OF_MEMORY)):
        return None
    return GpuMemoryError(f"{what}: the GPU is out of memory ({detail or first_line(exc)}); run fewer streams on it "
                          "(cluster.streams_per_worker, cluster.workers_per_gpu) or a smaller runtime.stream_batch")


class InferenceError(StreamTRTError):
    """A runner failed while executing a batch."""

    exit_code = 6


class SinkError(StreamTRTError):
    """A sink cannot be opened or written."""

    exit_code = 7


class PipelineError(StreamTRTError):
    """A pipeline worker failed with an error that is not a streamtrt error."""

    exit_code = 8
