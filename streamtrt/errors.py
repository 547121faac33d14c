"""The streamtrt exception tree.

Every error a user can cause or meet is a :class:`StreamTRTError`. Errors from third-party
libraries (FFmpeg/PyAV, DALI, ONNX Runtime, TensorRT, the network) are mapped to it where they
are first caught, so the CLI needs to catch only the base class and print one line.
"""

from __future__ import annotations


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


class BackendError(StreamTRTError):
    """A backend (DALI, CUDA, ONNX Runtime, TensorRT) cannot do what was asked of it."""

    exit_code = 5


class BackendUnavailableError(BackendError):
    """A backend named in the config (DALI GPU, CUDA, TensorRT) is not available here."""


class InferenceError(StreamTRTError):
    """A runner failed while executing a batch."""

    exit_code = 6


class SinkError(StreamTRTError):
    """A sink cannot be opened or written."""

    exit_code = 7


class PipelineError(StreamTRTError):
    """A pipeline worker failed with an error that is not a streamtrt error."""

    exit_code = 8
