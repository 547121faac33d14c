"""The runtime: stage threads, the orchestrator and the run summary."""

from .messages import FrameResult
from .pipeline import Pipeline
from .plan import Plan, make_plan
from .servers import serve
from .summary import RunSummary

__all__ = ["FrameResult", "Pipeline", "Plan", "RunSummary", "make_plan", "serve"]
