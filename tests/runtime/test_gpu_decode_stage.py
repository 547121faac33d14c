"""GpuDecodeStage without a GPU: a stand-in decoder with the DALI decoder's interface shows that
frames get the decoder's displayed size (rotation/mirror applied on the GPU, see
tests/preprocess/test_orientation.py) and their own presentation times (VFR kept; the times come
from sources.frametimes, equal to the CPU path's: tests/sources/test_frametimes.py)."""

import queue

import numpy as np
import pytest

from streamtrt.preprocess.spec import PreprocessSpec
from streamtrt.runtime.control import Control
from streamtrt.runtime.gpu_decode import GpuDecodeStage


class FakeBatch:
    def __init__(self, n):
        self.shape = (n, 3, 8, 8)
        self.frames = None


class FakeDecoder:
    """What the stage reads from a DaliGpuVideoDecoder: displayed size, geometry, times, batches."""

    def __init__(self, sizes, timestamps, height=576, width=768):
        self.sizes, self.timestamps = sizes, timestamps
        self.height, self.width = height, width
        self.spec = PreprocessSpec(8, 8)
        self.geometry = self.spec.geometry(height, width)
        self.batch_size, self.keep_frames = max(sizes), False

    def __iter__(self):
        return (FakeBatch(n) for n in self.sizes)

    def close(self):
        pass


def run_stage(decoder, fps, stored_size):
    stage = GpuDecodeStage(lambda: decoder, "0", fps, stored_size, Control(), queue.Queue())
    metas = []
    for batch in stage.produce():
        metas += batch.meta
        batch.release.set()
    return metas


def test_frames_carry_their_own_times_and_the_displayed_size():
    times = [0.0, 0.1, 0.2, 0.7, 1.2]  # 10 fps, then 2 fps
    metas = run_stage(FakeDecoder([2, 2, 1], times), 10.0, (768, 576))  # a size the decoder's own replaces
    assert [m.timestamp for m in metas] == times
    assert {(m.height, m.width) for m in metas} == {(576, 768)}  # the decoder's: displayed, turned on the GPU
    assert [m.index for m in metas] == list(range(5))


def test_without_times_frames_are_spaced_at_the_rate():
    metas = run_stage(FakeDecoder([3], None), 12.5, (576, 768))
    assert [m.timestamp for m in metas] == pytest.approx([0.0, 0.08, 0.16])


def test_frames_beyond_the_packet_times_continue_at_the_rate():
    metas = run_stage(FakeDecoder([4], [0.0, 0.5]), 10.0, (576, 768))
    assert [m.timestamp for m in metas] == pytest.approx([0.0, 0.5, 0.6, 0.7])


def test_paced_frames_arrive_at_their_own_times():
    times = [0.0, 0.05, 0.3]  # not index / fps (0.0, 0.1, 0.2)
    stage = GpuDecodeStage(lambda: FakeDecoder([3], times), "0", 10.0, (576, 768), Control(), queue.Queue(),
                           pace=True)
    batch = next(stage.produce())
    arrived = [m.started - batch.meta[0].started for m in batch.meta]
    assert arrived == pytest.approx(times, abs=1e-6)
