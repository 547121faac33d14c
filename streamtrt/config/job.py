"""A whole streamtrt job: every section together."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

from pydantic import Field, field_validator, model_validator


from .base import _Strict
from .cluster import ClusterConfig
from .model import ModelConfig, PostprocessConfig
from .runtime import ControlConfig, DeliveryConfig, MetricsConfig, RuntimeConfig
from .sources import LiveConfig, SourceConfig
from .tensorrt import TensorRTConfig
from .tracking import AnalyticsConfig, TrackerConfig


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
    cluster: ClusterConfig = ClusterConfig()
    """``streamtrt cluster run`` only: workers, failover, batch mode (see :mod:`streamtrt.config.cluster`)."""
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
        if self.source is None and not self.sources and not self.control.enabled and self.cluster.batch is None:
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
