"""The one backoff policy, shared by live-source reconnects and network-sink deliveries."""

import random

import pytest

from streamtrt.config import LiveConfig
from streamtrt.errors import SourceError
from streamtrt.retry import Backoff
from streamtrt.sources.supervisor import Supervisor


def test_backoff_doubles_up_to_its_cap_with_equal_jitter():
    b = Backoff(0.5, 30.0)
    rng = random.Random(1)
    for attempt, base in [(1, 0.5), (2, 1.0), (3, 2.0), (7, 30.0), (10_000, 30.0)]:
        delays = [b.delay(attempt, rng) for _ in range(200)]
        assert all(0.5 * base <= d < base for d in delays), (attempt, min(delays), max(delays))
        assert max(delays) - min(delays) > 0.3 * base  # jittered, not a constant


def test_live_sources_use_the_same_policy():
    cfg = LiveConfig(reconnect_initial_s=0.5, reconnect_max_s=4.0, max_reconnects=5)
    sup = Supervisor("cam", cfg, rng=random.Random(7))
    expected = random.Random(7)
    for attempt in range(1, 6):
        assert sup.failed("refused") == pytest.approx(Backoff(0.5, 4.0).delay(attempt, expected))
    with pytest.raises(SourceError, match="gave up after 6"):
        sup.failed("refused")
