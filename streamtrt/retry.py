"""The one retry policy of streamtrt: exponential backoff with "equal jitter".

Used by live sources (reconnects, ``sources/supervisor.py``) and network sinks (deliveries,
``sinks/delivery.py``). Equal jitter keeps at least half of each delay and randomises the rest,
so that many clients that failed together do not retry together (AWS Architecture Blog,
"Exponential Backoff And Jitter", 2015).
"""

from __future__ import annotations

import random
from dataclasses import dataclass


@dataclass(frozen=True)
class Backoff:
    """Delay before retry ``attempt`` (1 = the first retry): ``min(max_s, initial_s * 2**(attempt-1))``,
    then scaled by a uniform factor in [0.5, 1.0). Seconds."""

    initial_s: float = 0.5
    max_s: float = 30.0

    def delay(self, attempt: int, rng: random.Random | None = None) -> float:
        base = min(self.max_s, self.initial_s * 2.0 ** min(max(attempt, 1) - 1, 60))
        return base * (0.5 + (rng or random).random() / 2)
