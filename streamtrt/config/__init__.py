"""The typed configuration: one schema, defaults in one place.

The same YAML format is read by the CLI (``streamtrt run CONFIG``), the Python API
(``Pipeline.from_config``) and the samples. Unknown keys are rejected with their key path.

Relative input paths (``source``, ``model.path``, a ``model.classes`` file) are resolved against
the directory of the config file, so a config works from any working directory. Output paths
(``sinks``) are relative to the working directory, like any command-line output.

Layout: ``model`` (model file, input, postprocessing), ``runtime`` (runners, batching, threads,
metrics, control, delivery), ``sources`` (streams, live supervision), ``tensorrt``, ``tracking``
(tracker, analytics), ``job`` (the whole :class:`Config`), ``loading`` (YAML, paths, overrides, errors).
"""

from .cluster import BatchConfig, ClusterConfig
from .job import Config
from .loading import _format_validation_error, apply_overrides, config_from_dict, load_config, parse_override, read_yaml
from .model import InputConfig, ModelConfig, PostprocessConfig
from .rates import FALLBACK_FPS, IMAGES_VIDEO_FPS
from .runtime import ControlConfig, DeliveryConfig, MetricsConfig, RuntimeConfig
from .sources import LiveConfig, SourceConfig
from .tensorrt import CalibrationConfig, ProfileConfig, TensorRTConfig
from .tracking import (TRACK_HIGH_DEFAULT, TRACK_LOW_DEFAULT, AnalyticsConfig, LineConfig, Point, TrackerConfig,
                       TrackThresholds, ZoneConfig)

__all__ = [
    "Config", "load_config", "config_from_dict", "apply_overrides", "parse_override", "read_yaml",
    "InputConfig", "ModelConfig", "PostprocessConfig", "ControlConfig", "DeliveryConfig", "MetricsConfig",
    "RuntimeConfig", "LiveConfig", "SourceConfig", "CalibrationConfig", "ProfileConfig", "TensorRTConfig",
    "TRACK_HIGH_DEFAULT", "TRACK_LOW_DEFAULT", "AnalyticsConfig", "LineConfig", "Point", "TrackerConfig",
    "TrackThresholds", "ZoneConfig", "_format_validation_error", "BatchConfig", "ClusterConfig",
    "FALLBACK_FPS", "IMAGES_VIDEO_FPS",
]
