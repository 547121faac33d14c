"""One ModelInfo read per model file: the ONNX file is parsed once at start-up, and again only
when it changes (the cache key is path, size and modification time)."""

import os
import shutil

import onnx
import pytest

from streamtrt import Pipeline
from streamtrt import model_info
from streamtrt.model_info import read_model_info

from .conftest import MODEL, VIDEO, make_config


@pytest.fixture
def count_loads(monkeypatch):
    """Counts onnx.load calls, with the ModelInfo cache emptied first."""
    calls = []
    real = onnx.load

    def counting(*args, **kwargs):
        calls.append(args[0] if args else kwargs.get("f"))
        return real(*args, **kwargs)

    monkeypatch.setattr(onnx, "load", counting)
    model_info._read.cache_clear()
    yield calls
    model_info._read.cache_clear()


def test_start_up_loads_the_model_once(tmp_path, count_loads):
    """Pipeline construction (model setup, plan, runner activation) and a short run parse it once."""
    with Pipeline.from_config(make_config(VIDEO, tmp_path, runtime={"max_frames": 2})) as pipe:
        assert count_loads == [str(MODEL.resolve())]
        summary = pipe.run()
    assert summary.frames == 2
    assert count_loads == [str(MODEL.resolve())]


def test_reread_only_when_the_file_changes(tmp_path, count_loads):
    copy = tmp_path / "m.onnx"
    shutil.copyfile(MODEL, copy)
    first = read_model_info(copy)
    assert read_model_info(str(copy)) is first and len(count_loads) == 1
    st = os.stat(copy)
    os.utime(copy, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))  # touched: read again
    assert read_model_info(copy) is not first and len(count_loads) == 2
