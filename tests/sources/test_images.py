import cv2
import pytest

from streamtrt.errors import SourceError
from streamtrt.sources import ImageFolderSource, open_source, parse_source_uri


@pytest.fixture
def image_dir(tmp_path, first_frames):
    d = tmp_path / "imgs"
    d.mkdir()
    for i, img in enumerate(first_frames[:4]):
        cv2.imwrite(str(d / f"f{i:03d}.png"), img)
    (d / "readme.txt").write_text("not an image")
    return d


def test_folder_yields_images_in_name_order(image_dir, first_frames):
    src = open_source(parse_source_uri(str(image_dir)))
    frames = list(src)
    assert [f.index for f in frames] == [0, 1, 2, 3]
    assert (frames[2].image == first_frames[2]).all()  # PNG is lossless
    assert frames[0].timestamp is None
    assert src.info.frame_count == 4 and (src.info.width, src.info.height) == (768, 576)


def test_glob(image_dir):
    src = open_source(parse_source_uri(str(image_dir / "f00[12].png")))
    assert len(list(src)) == 2


def test_unreadable_image_is_counted(image_dir):
    (image_dir / "f999.jpg").write_bytes(b"garbage")
    src = ImageFolderSource(str(image_dir), "imgs")
    assert len(list(src)) == 4
    assert src.stats.bad_frames == 1


def test_empty_folder(tmp_path):
    with pytest.raises(SourceError, match="no images found"):
        ImageFolderSource(str(tmp_path), "empty")
