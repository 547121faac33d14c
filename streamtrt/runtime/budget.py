"""One memory budget (``runtime.memory_budget_mb``) for what streamtrt allocates: frames and
tensors in flight (batch x queue depth), the model and the TensorRT workspace. On Jetson, CPU and
GPU share this memory. The libraries' own overhead (CUDA context, DALI, ONNX Runtime) is not
counted: leave room for it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

from ..errors import ConfigError

MB = 1024 * 1024
DEFAULT_WORKSPACE_MB = 256


def derive_workspace_mb(budget_mb: int, configured: Optional[int]) -> int:
    """The TensorRT workspace: as configured, else a quarter of the budget up to 256 MB."""
    return configured if configured is not None else max(16, min(DEFAULT_WORKSPACE_MB, budget_mb // 4))


@dataclass
class BudgetPlan:
    slots: int
    parts_mb: dict[str, float] = field(default_factory=dict)

    @property
    def total_mb(self) -> float:
        return sum(self.parts_mb.values())


def plan_budget(budget_mb: int, *, frame_hw: tuple[int, int], input_chw: tuple[int, int, int], itemsize: int,
                batch: int, slots: int, keep_images: bool, model_bytes: int,
                workspace_mb: Optional[int] = None, engines: int = 1) -> BudgetPlan:
    """The largest queue depth (down to 1) at which everything fits, or a :class:`ConfigError`.
    Each of ``engines`` model instances holds its own model, workspace and batches in flight."""
    frame = frame_hw[0] * frame_hw[1] * 3
    tensor = input_chw[0] * input_chw[1] * input_chw[2] * itemsize

    def parts(s: int) -> dict[str, float]:
        # Frames: the decode queue plus one batch per stage; with pixel sinks they ride every queue.
        frames_held = engines * batch * ((4 * s + 4) if keep_images else (s + 2))
        tensors_held = engines * batch * (s + 2)
        each = f" x {engines} engines" if engines > 1 else ""
        out = {
            f"frames in flight ({frames_held} x {frame_hw[1]}x{frame_hw[0]})": frames_held * frame / MB,
            f"input tensors in flight ({tensors_held})": tensors_held * tensor / MB,
            f"model{each}": engines * model_bytes / MB,
        }
        if workspace_mb:
            out[f"TensorRT workspace{each}"] = float(workspace_mb) * engines
        return out

    for s in range(slots, 0, -1):
        plan = BudgetPlan(s, parts(s))
        if plan.total_mb <= budget_mb:
            return plan
    needed = BudgetPlan(1, parts(1))
    detail = ", ".join(f"{k} {v:.0f} MB" for k, v in needed.parts_mb.items())
    raise ConfigError(
        f"runtime.memory_budget_mb {budget_mb}: the pipeline needs at least {needed.total_mb:.0f} MB even with "
        f"runtime.slots 1 ({detail}); lower runtime.batch_size or tensorrt.workspace_mb, or raise the budget"
    )
