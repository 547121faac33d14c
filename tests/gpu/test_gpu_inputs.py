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
