"""Input kinds on the GPU (NVDEC + DALI) path: an estimated frame count is never a decode error.

Runs only where a CUDA device and DALI are present (the GPU machine)."""

import pytest

from streamtrt import Pipeline
from streamtrt.config import load_config
from streamtrt.preprocess.dali import dali_available
from streamtrt.system import probe_cuda
from tests.conftest import make_config
from tests.ffmpeg_tools import CASES, counted_frames, needs_ffmpeg

pytestmark = [
    pytest.mark.gpu,
    needs_ffmpeg,
    pytest.mark.skipif(not probe_cuda().available, reason="no CUDA device on this machine"),
    pytest.mark.skipif(not dali_available(), reason="DALI is not installed"),
]


def test_audio_longer_than_video_on_nvdec(tmp_path):
    path = CASES / "mkv_audio_longer_than_video.mkv"
    cfg = load_config(make_config(path, tmp_path, runtime={"decoder": "dali-gpu", "runner": "auto"}))
    with Pipeline(cfg) as pipe:
        assert pipe.plan.decoder == "dali-gpu" and pipe.expected_frames_estimated
        results = list(pipe)  # raises DecodeError if an estimate were taken for missing frames
    assert len(results) == counted_frames(path) == 30
    assert pipe.summary.bad_frames == 0


def _records(path, tmp_path, decoder: str, orientation: str = "auto"):
    cfg = make_config(path, tmp_path, runtime={"decoder": decoder, "runner": "auto"})
    del cfg["source"]
    cfg["sources"] = [{"uri": str(path), "orientation": orientation}]
    with Pipeline(load_config(cfg)) as pipe:
        assert pipe.plan.decoder == decoder
        out = [(r.width, r.height, r.timestamp) for r in pipe]
        assert pipe.summary.bad_frames == 0
    return out


@pytest.mark.parametrize("orientation, size", [("auto", (768, 576)), ("ignore", (576, 768))])
def test_rotated_case_on_nvdec_follows_the_orientation_option(tmp_path, orientation, size):
    """Displayed (768x576, ffprobe's rotation applied) with ``auto``; as stored with ``ignore``:
    the GPU path turns by the probe's rotation, never by one of its own."""
    gpu = _records(CASES / "phone_portrait_rotate90.mp4", tmp_path, "dali-gpu", orientation)
    assert len(gpu) == counted_frames(CASES / "phone_portrait_rotate90.mp4") == 40
    assert {(w, h) for w, h, _ in gpu} == {size}


@pytest.mark.parametrize("name", ["ts_concat_pts_reset.ts", "vfr_10fps_then_2fps.mkv", "raw_h264_10fps.h264",
                                  "phone_portrait_rotate90.mp4"])
def test_gpu_path_records_have_the_cpu_paths_timestamps(tmp_path, name):
    gpu = _records(CASES / name, tmp_path, "dali-gpu")
    cpu = _records(CASES / name, tmp_path, "cpu")
    assert [t for *_, t in gpu] == pytest.approx([t for *_, t in cpu], abs=1e-9)
    assert [(w, h) for w, h, _ in gpu] == [(w, h) for w, h, _ in cpu]


@pytest.mark.parametrize("max_frames", [None, 1000, 10])
def test_a_truncated_file_on_nvdec_reports_its_missing_frames_unless_max_frames_stops_first(tmp_path, max_frames):
    """The sample cut to 5 % of its bytes: the index says 795 frames, the data holds ~40."""
    from streamtrt.errors import DecodeError
    from tests.conftest import VIDEO

    data = VIDEO.read_bytes()
    path = tmp_path / "truncated.mp4"
    path.write_bytes(data[: len(data) // 20])
    cfg = load_config(make_config(path, tmp_path, runtime={"decoder": "dali-gpu", "runner": "auto",
                                                           "max_frames": max_frames}))
    with Pipeline(cfg) as pipe:
        assert pipe.plan.decoder == "dali-gpu"
        if max_frames == 10:
            assert len(list(pipe)) == 10 and pipe.summary.bad_frames == 0
            return
        with pytest.raises(DecodeError, match="could not be decoded"):
            list(pipe)
    assert 0 < pipe.summary.frames < 100 and pipe.summary.bad_frames >= 700  # 795 less the frames decoded
