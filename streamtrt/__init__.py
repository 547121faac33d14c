"""streamtrt: video and stream analytics on NVIDIA hardware (and on the CPU).

The public API::

    from streamtrt import Pipeline
    with Pipeline.from_config("configs/sample.yaml", overrides=["runtime.batch_size=4"]) as pipe:
        for result in pipe:
            ...
"""

from .config import Config, load_config
from .errors import (
    BackendUnavailableError, ConfigError, DecodeError, InferenceError, ModelError, PipelineError, SinkError,
    SourceError, StreamTRTError, UnsupportedSourceError,
)
from .postprocess.detections import Detections
from .runtime import FrameResult, Pipeline, RunSummary
from .version import __version__

__all__ = [
    "BackendUnavailableError", "Config", "ConfigError", "DecodeError", "Detections", "FrameResult",
    "InferenceError", "ModelError", "Pipeline", "PipelineError", "RunSummary", "SinkError", "SourceError",
    "StreamTRTError", "UnsupportedSourceError", "load_config", "__version__",
]
