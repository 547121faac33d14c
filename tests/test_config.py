from pathlib import Path

import pytest

from streamtrt.config import Config, apply_overrides, load_config
from streamtrt.errors import ConfigError
from tests.conftest import MODEL, SAMPLE_CONFIG, VIDEO


def write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "job.yaml"
    p.write_text(text)
    return p


def test_sample_config_loads_with_paths_resolved_against_its_folder():
    cfg = load_config(SAMPLE_CONFIG)
    assert Path(cfg.source) == VIDEO
    assert cfg.model.path == MODEL
    assert cfg.runtime.batch_size == 1 and cfg.runtime.slots == 2
    assert cfg.model.input.mean == (103.53, 116.28, 123.675)


def test_defaults_live_in_the_schema():
    cfg = Config.model_validate({"source": "x.mp4", "model": {"path": "m.onnx"}})
    assert cfg.postprocess.score_threshold == 0.35
    assert cfg.runtime.decoder == "auto"
    assert cfg.model.input.resize == "stretch"
    assert cfg.sinks == []


def test_unknown_key_is_reported_with_its_path(tmp_path):
    p = write(tmp_path, "source: a.mp4\nmodel:\n  path: m.onnx\n  input:\n    resise: letterbox\n")
    with pytest.raises(ConfigError, match=r"unknown key 'model\.input\.resise'"):
        load_config(p)


def test_unknown_top_level_key(tmp_path):
    p = write(tmp_path, "source: a.mp4\nmodel: {path: m.onnx}\nsinkz: []\n")
    with pytest.raises(ConfigError, match=r"unknown key 'sinkz'"):
        load_config(p)


def test_malformed_yaml_names_the_line(tmp_path):
    p = write(tmp_path, "source: a.mp4\nmodel: [path: m.onnx\n")
    with pytest.raises(ConfigError, match=r"malformed YAML at line \d+"):
        load_config(p)


def test_missing_required_key(tmp_path):
    p = write(tmp_path, "model: {path: m.onnx}\n")
    with pytest.raises(ConfigError, match=r"no input: set source or sources"):
        load_config(p)


def test_invalid_value_names_key(tmp_path):
    p = write(tmp_path, "source: a.mp4\nmodel: {path: m.onnx}\nruntime: {batch_size: 0}\n")
    with pytest.raises(ConfigError, match=r"runtime\.batch_size"):
        load_config(p)


def test_top_level_must_be_a_mapping(tmp_path):
    with pytest.raises(ConfigError, match="expected a mapping"):
        load_config(write(tmp_path, "- a\n- b\n"))


def test_missing_config_file(tmp_path):
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(tmp_path / "nope.yaml")


def test_overrides_are_yaml_typed_and_validated():
    cfg = load_config(SAMPLE_CONFIG, ["runtime.batch_size=4", "postprocess.classes=[person, 2]", "sinks=[]"])
    assert cfg.runtime.batch_size == 4
    assert cfg.postprocess.classes == ["person", 2]
    assert cfg.sinks == []
    with pytest.raises(ConfigError, match=r"unknown key 'runtime\.batchsize'"):
        load_config(SAMPLE_CONFIG, ["runtime.batchsize=4"])
    with pytest.raises(ConfigError, match="expected key=value"):
        load_config(SAMPLE_CONFIG, ["runtime.batch_size"])


def test_override_into_a_scalar_is_refused():
    with pytest.raises(ConfigError, match="is not a section"):
        apply_overrides({"source": "a"}, ["source.x=1"])


def test_classes_file_must_exist(tmp_path):
    p = write(tmp_path, "source: a.mp4\nmodel: {path: m.onnx, classes: names.txt}\n")
    with pytest.raises(ConfigError, match="class-name file not found"):
        load_config(p)
    (tmp_path / "names.txt").write_text("cat\ndog\n")
    assert load_config(p).model.classes == tmp_path / "names.txt"


def test_every_shipped_config_loads():
    configs = sorted((SAMPLE_CONFIG.parent).glob("*.yaml"))
    assert len(configs) >= 3
    for path in configs:
        cfg = load_config(path)
        assert cfg.model.path.is_file() and all(Path(s.uri).is_file() for s in cfg.streams()), path


@pytest.mark.parametrize("source, key", [
    ({"uri": "clip.mp4", "options": {"framerate": "10"}}, "sources.0.options"),  # silently ignored before
    ({"uri": "clip.mp4", "format": "h264"}, "sources.0.format"),
    ({"uri": "clip.mp4", "transport": "udp"}, "sources.0.transport"),
    ({"uri": "frames/", "options": {"framerate": "10"}}, "sources.0.options"),
    ({"uri": "rtsp://cam/x", "fps": 10}, "sources.0.fps"),
    ({"uri": "rtsp://cam/x", "pace": True}, "sources.0.pace"),
    ({"uri": "gst://videotestsrc", "orientation": "ignore"}, "sources.0.orientation"),
])
def test_source_keys_that_do_not_apply_to_the_kind_are_refused(source, key):
    from streamtrt.sources import check_config_sources  # the source kinds declare their options

    with pytest.raises(ConfigError, match=rf"{key}: does not apply"):
        check_config_sources(load_config({"sources": [source], "model": {"path": "m.onnx"}}))


def test_source_keys_that_apply():
    from streamtrt.sources import check_config_sources

    cfg = load_config({"sources": [{"uri": "raw.h264", "fps": 12.5, "orientation": "ignore"},
                                   {"uri": "rtsp://cam/x", "transport": "udp", "options": {"stimeout": "5"}},
                                   {"uri": "v4l2:///dev/video0", "options": {"video_size": "640x480"}}],
                       "model": {"path": "m.onnx"}})
    assert cfg.sources[0].fps == 12.5 and cfg.sources[0].orientation == "ignore"
    assert cfg.sources[1].orientation == "auto"
    check_config_sources(cfg)


def test_a_dumped_config_with_a_file_source_reads_back():
    cfg = load_config({"sources": [{"uri": "clip.mp4"}], "model": {"path": "m.onnx"}})
    again = load_config(cfg.model_dump(mode="json"))  # every default spelled out, transport and format included
    assert again.sources[0].uri == "clip.mp4"
    assert load_config(cfg, ["runtime.batch_size=2"]).runtime.batch_size == 2


@pytest.mark.parametrize("override, hint", [
    ("runtime.bacth_size=2", "unknown key 'runtime.bacth_size' (did you mean 'runtime.batch_size'?)"),
    ("postproces.iou_threshold=0.3", "unknown key 'postproces' (did you mean 'postprocess'?)"),
    ('sources=[{"uri": "a.mp4", "pase": true}]', "unknown key 'sources.0.pase' (did you mean 'sources.0.pace'?)"),
])
def test_unknown_key_suggests_the_closest_known_one(override, hint):
    with pytest.raises(ConfigError) as info:
        load_config({"source": "a.mp4", "model": {"path": "m.onnx"}}, [override])
    assert hint in str(info.value)


def test_unknown_key_without_a_close_match_has_no_suggestion():
    with pytest.raises(ConfigError) as info:
        load_config({"source": "a.mp4", "model": {"path": "m.onnx"}}, ["runtime.zzzz=1"])
    assert "unknown key 'runtime.zzzz'" in str(info.value) and "did you mean" not in str(info.value)


def test_set_reaches_a_list_item_by_its_index():
    base = {"sources": ["ffmpeg://testsrc2", {"uri": "rtsp://cam/b"}], "model": {"path": "m.onnx"}}
    cfg = load_config(base, ["sources.0.format=lavfi", "sources.1.options.buffer_size='1024'"])
    first, second = cfg.streams()
    assert (first.uri, first.format) == ("ffmpeg://testsrc2", "lavfi") and second.options == {"buffer_size": "1024"}
    with pytest.raises(ConfigError, match=r"'sources' has 2 item\(s\); '2' is not one of the indices 0..1"):
        load_config(base, ["sources.2.format=lavfi"])


def test_numeric_source_options_are_taken_as_ffmpeg_gives_them(tmp_path):
    """`framerate: 30` (the README's V4L2 and CSI options) is a number in YAML; FFmpeg's options are text."""
    path = tmp_path / "cam.yaml"
    path.write_text("sources:\n  - uri: v4l2:///dev/video7\n    options: {video_size: 1280x720, framerate: 30, "
                    "input_format: mjpeg}\n  - uri: csi://0\n    options: {width: 1280, height: 720, framerate: 29.97}\n"
                    "model: {path: m.onnx}\n")
    cfg = load_config(str(path), ["sources.0.options.thread_queue_size=512", "sources.1.options.flip=true"])
    assert cfg.sources[0].options == {"video_size": "1280x720", "framerate": "30", "input_format": "mjpeg",
                                      "thread_queue_size": "512"}
    assert cfg.sources[1].options == {"width": "1280", "height": "720", "framerate": "29.97", "flip": "1"}
    with pytest.raises(ConfigError, match=r"sources\.0\.options\.framerate"):
        load_config({"sources": [{"uri": "v4l2:///dev/video7", "options": {"framerate": [30, 1]}}],
                     "model": {"path": "m.onnx"}})
