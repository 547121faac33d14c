"""Paths used as written, natural order of image sequences, and where each frame came from."""

import shutil
from pathlib import Path
from urllib.parse import quote

import cv2
import numpy as np
import pytest

from streamtrt.config import SourceConfig
from streamtrt.errors import SourceError
from streamtrt.sources import open_source, parse_source_uri
from tests.ffmpeg_tools import CASES, counted_frames, needs_ffmpeg

BRACKETS = CASES / "brackets"
NVR_FILE = BRACKETS / "Camera 1 [2024-05-01].mp4"
NVR_DIR = BRACKETS / "Camera 1 [2024-05-01]"


def _tile(value: int) -> np.ndarray:
    """A small image whose pixels say which frame it is (PNG: lossless)."""
    return np.full((16, 24, 3), value, np.uint8)


def _write(folder: Path, names_in_order: list[str]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for i, name in enumerate(names_in_order):
        cv2.imwrite(str(folder / name), _tile(10 * i))


def _order(src) -> list[int]:
    return [int(f.image[0, 0, 0]) // 10 for f in src]


@needs_ffmpeg
def test_existing_path_with_brackets_is_a_file_not_a_pattern():
    uri = parse_source_uri(str(NVR_FILE))
    assert uri.kind == "file" and uri.location == str(NVR_FILE)
    assert sum(1 for _ in open_source(uri)) == counted_frames(NVR_FILE)


@needs_ffmpeg
def test_file_uri_with_percent_escapes():
    uri = parse_source_uri("file://" + quote(str(NVR_FILE)))
    assert "%5B" in uri.raw and uri.kind == "file" and uri.location == str(NVR_FILE)
    assert sum(1 for _ in open_source(uri)) == counted_frames(NVR_FILE)


def test_existing_folder_with_brackets_is_a_folder_not_a_pattern():
    uri = parse_source_uri(str(NVR_DIR))
    assert uri.kind == "images"
    src = open_source(uri)
    frames = list(src)
    assert [f.source_file for f in frames] == sorted(p.name for p in NVR_DIR.iterdir())
    assert frames[0].image.shape == cv2.imread(str(next(NVR_DIR.iterdir()))).shape


def test_spaces_and_non_ascii_names(tmp_path):
    folder = tmp_path / "Kamera Eingang [Süd] 日本"
    _write(folder, ["a 1.png", "a 2.png"])
    assert _order(open_source(parse_source_uri(str(folder)))) == [0, 1]
    assert _order(open_source(parse_source_uri("file://" + quote(str(folder))))) == [0, 1]


def test_a_path_that_does_not_exist_may_be_a_glob(tmp_path):
    _write(tmp_path / "cam [1]", ["f1.png", "f2.png", "f10.png"])
    pattern = str(tmp_path / "cam ?1?" / "f*.png")  # '?' matches the brackets
    uri = parse_source_uri(pattern)
    assert uri.kind == "images"
    src = open_source(uri)
    assert _order(src) == [0, 1, 2]


def test_missing_path_without_wildcards(tmp_path):
    with pytest.raises(SourceError, match="source not found"):
        open_source(parse_source_uri(str(tmp_path / "nope [1]")))


@pytest.mark.parametrize("names", [
    ["2.jpg", "10.jpg"],
    ["1.png", "2.png", "9.png", "10.png", "11.png", "100.png"],
    ["cam1_frame9.png", "cam1_frame10.png", "cam1_frame11.png"],
    ["frame_8.png", "frame_9.png", "frame_010.png", "frame_011.png", "frame_12.png"],  # padded and not, mixed
])
def test_natural_order(tmp_path, names):
    _write(tmp_path / "seq", names)
    src = open_source(parse_source_uri(str(tmp_path / "seq")))
    frames = list(src)
    assert [int(f.image[0, 0, 0]) // 10 for f in frames] == list(range(len(names)))
    assert [f.source_file for f in frames] == names


def test_fps_gives_an_image_sequence_timestamps(tmp_path):
    _write(tmp_path / "seq", ["1.png", "2.png", "3.png"])
    src = open_source(parse_source_uri(str(tmp_path / "seq")), options=SourceConfig(uri="unused", fps=4.0))
    assert [f.timestamp for f in src] == [0.0, 0.25, 0.5]
    assert src.info.fps == 4.0


def test_source_file_is_relative_to_the_glob_folder(tmp_path):
    _write(tmp_path / "day1", ["1.png"])
    _write(tmp_path / "day2", ["1.png"])
    src = open_source(parse_source_uri(str(tmp_path / "day*" / "*.png")))
    assert [f.source_file for f in src] == ["day1/1.png", "day2/1.png"]
