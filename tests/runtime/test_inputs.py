"""What the pipeline makes of the input kinds: estimated totals, rotation, provenance fields."""

import pytest

from streamtrt import Pipeline
from streamtrt.config import load_config
from tests.conftest import make_config
from tests.ffmpeg_tools import CASES, needs_ffmpeg


@needs_ffmpeg
def test_estimated_total_is_flagged_and_is_not_an_error(tmp_path):
    cfg = load_config(make_config(CASES / "vfr_10fps_then_2fps.mkv", tmp_path))
    with Pipeline(cfg) as pipe:
        # 5.6 s x 10 fps: a guess; the file holds 28 frames
        assert pipe.expected_frames == 56 and pipe.expected_frames_estimated
        results = list(pipe)
    assert len(results) == 28 and pipe.summary.bad_frames == 0
    assert results[-1].pts == 5500 and str(results[-1].time_base) == "1/1000"


def test_exact_total(tmp_path, short_clip):
    with Pipeline(load_config(make_config(short_clip, tmp_path))) as pipe:
        assert pipe.expected_frames == 12 and not pipe.expected_frames_estimated


@needs_ffmpeg
def test_rotation_reaches_source_info_and_results(tmp_path):
    cfg = load_config(make_config(CASES / "phone_portrait_rotate90.mp4", tmp_path, runtime={"max_frames": 2}))
    with Pipeline(cfg) as pipe:
        info = pipe.source_info
        assert (info.width, info.height, info.rotation) == (768, 576, 90)
        results = list(pipe)
    assert [(r.width, r.height) for r in results] == [(768, 576)] * 2


def test_image_results_name_their_file(tmp_path, first_frames):
    import cv2

    folder = tmp_path / "seq"
    folder.mkdir()
    for name, img in zip(["10.png", "9.png"], first_frames):
        cv2.imwrite(str(folder / name), img)
    with Pipeline(load_config(make_config(folder, tmp_path))) as pipe:
        results = list(pipe)
    assert [r.source_file for r in results] == ["9.png", "10.png"]
    assert results[0].to_record()["source_file"] == "9.png" and "pts" not in results[0].to_record()
