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


class FailingDecoder(FakeDecoder):
    """Gives ``good`` frames, then raises ``error`` as the DALI decoder's iterator does."""

    def __init__(self, good, error):
        super().__init__([good], None)
        self.error = error

    def __iter__(self):
        yield FakeBatch(self.sizes[0])
        raise self.error


class CpuFrames:
    """The CPU fallback's source: frames of the stored size, counted."""

    def __init__(self, n):
        from streamtrt.sources.base import Frame

        self.frames = [Frame(np.zeros((576, 768, 3), np.uint8), i, i / 10.0) for i in range(n)]
        self.stats, self.closed = None, False

    def __iter__(self):
        return iter(self.frames)

    def close(self):
        self.closed = True


def fallback_run(error):
    opened = []

    def fallback():
        opened.append(CpuFrames(5))
        return opened[-1]

    stage = GpuDecodeStage(lambda: FailingDecoder(2, error), "cam", 10.0, (576, 768), Control(), queue.Queue(),
                           cpu_fallback=fallback)
    indexes = []
    for batch in stage.produce():
        indexes += [m.index for m in batch.meta]
        if batch.release is not None:  # device batches (CPU-fallback batches are host tensors)
            batch.release.set()
    return indexes, opened, stage


def test_a_stream_nvdec_gives_up_on_continues_on_the_cpu(caplog):
    from streamtrt.errors import DecodeError

    with caplog.at_level("WARNING", logger="streamtrt"):
        indexes, opened, stage = fallback_run(DecodeError("NVDEC decode failed after 2 frames: bad NAL"))
    assert indexes == [0, 1, 2, 3, 4] and len(opened) == 1 and opened[0].closed
    assert stage.fallback_errors == ["NVDEC decode failed after 2 frames: bad NAL"]
    assert any("stream cam" in r.getMessage() and "on the CPU" in r.getMessage() for r in caplog.records)


def test_a_gpu_out_of_memory_fails_the_stream_instead_of_moving_it_to_the_cpu():
    from streamtrt.errors import GpuMemoryError

    with pytest.raises(GpuMemoryError):
        fallback_run(GpuMemoryError("NVDEC decode failed after 2 frames: the GPU is out of memory"))


@pytest.mark.parametrize("exc, out_of_memory", [
    (MemoryError("CUDA allocation failed"), True),  # what DALI 2.4 raised on the H200 with 128 decoders per GPU
    (RuntimeError("Critical error in pipeline:\nError in MIXED operator `nvidia.dali.fn.experimental.inputs.video`,\n"
                  "which was used in the pipeline definition with the following traceback:\n\nencountered:\n\n"
                  "CUDA allocation failed\nC++ context: [...]"), True),
    (RuntimeError("CUDA runtime API error cudaErrorMemoryAllocation (2):\nout of memory"), True),
    (RuntimeError("Critical error in pipeline:\nencountered:\n\nUnable to decode the frame: invalid NAL unit"), False),
])
def test_dali_errors_that_say_the_gpu_is_out_of_memory_are_told_apart(exc, out_of_memory):
    from streamtrt.errors import BackendError, GpuMemoryError
    from streamtrt.preprocess.dali import out_of_gpu_memory

    mapped = out_of_gpu_memory(exc, "NVDEC decode failed after 0 frames")
    assert (mapped is not None) == out_of_memory
    if mapped is not None:
        assert isinstance(mapped, GpuMemoryError) and isinstance(mapped, BackendError) and mapped.exit_code == 5
        assert "CUDA allocation failed" in str(mapped) or "out of memory" in str(mapped)
        assert "streams_per_worker" in str(mapped)
