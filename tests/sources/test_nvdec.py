"""Live NVDEC decode, the parts that run anywhere: the plan's choice and its reasons, codec and
bitstream-format mapping, and the CPU fallback of a stream whose decoder cannot be NVDEC."""

from __future__ import annotations

import logging

import pytest

from streamtrt import Pipeline
from streamtrt.config import RuntimeConfig
from streamtrt.errors import BackendUnavailableError
from streamtrt.runtime.plan import make_plan
from streamtrt.sources import parse_source_uri
from streamtrt.sources.nvdec import needs_annexb, nvdec_codec, nvdec_unavailable_reason
from streamtrt.system import probe_cuda
from tests.sources.test_live import live_config

no_nvdec = nvdec_unavailable_reason() is not None or not probe_cuda().available


def test_codecs_nvdec_takes_and_the_ones_it_does_not():
    assert nvdec_codec("h264") == "H264" and nvdec_codec("hevc") == "HEVC" and nvdec_codec("av1") == "AV1"
    assert nvdec_codec("mjpeg") is None and nvdec_codec("rawvideo") is None


def test_length_prefixed_h264_needs_annexb_conversion():
    avcc = bytes([1, 0x64, 0, 0x1F, 0xFF, 0xE1])
    annexb = b"\x00\x00\x00\x01\x67\x64"
    assert needs_annexb("h264", avcc) and needs_annexb("hevc", avcc)
    assert not needs_annexb("h264", annexb) and not needs_annexb("h264", b"") and not needs_annexb("vp9", avcc)


@pytest.mark.skipif(not no_nvdec, reason="NVDEC live decode is available here (the GPU tests cover it)")
def test_plan_explains_why_live_streams_decode_on_the_cpu():
    uris = [parse_source_uri("rtsp://127.0.0.1:8554/cam")]
    plan = make_plan(RuntimeConfig(decoder="cpu", runner="onnxruntime-cpu"), uris, "auto")
    assert plan.live_decoder == "cpu"
    assert any(r.startswith("live decoder cpu: ") for r in plan.reasons)
    with pytest.raises(BackendUnavailableError, match="live.decoder nvdec: "):
        make_plan(RuntimeConfig(decoder="cpu", runner="onnxruntime-cpu"), uris, "nvdec")
    assert make_plan(RuntimeConfig(decoder="cpu", runner="onnxruntime-cpu"), uris, "cpu").live_decoder == "cpu"


@pytest.mark.skipif(not no_nvdec, reason="NVDEC live decode is available here")
def test_a_source_asked_for_nvdec_without_it_decodes_on_the_cpu(tmp_path, caplog):
    """A stream whose NVDEC decoder cannot be made (here: no PyNvVideoCodec) decodes on the CPU,
    says so once, and loses nothing."""
    from streamtrt.sources.live import FFmpegLiveSource
    from streamtrt.config import LiveConfig, SourceConfig

    sc = SourceConfig(uri="ffmpeg://testsrc2=size=160x120:rate=25:duration=0.4", format="lavfi", live=False)
    source = FFmpegLiveSource(parse_source_uri(sc.uri), "cam", sc, LiveConfig(), nvdec_device=0)
    with caplog.at_level(logging.WARNING, logger="streamtrt"):
        frames = list(source)
    assert len(frames) == 10 and frames[0].image.shape == (120, 160, 3)
    assert source.decoder == "cpu"
    assert sum("decoding on the CPU" in r.message for r in caplog.records) == 1


def test_live_decoder_cpu_is_a_valid_config(tmp_path):
    cfg = live_config("ffmpeg://testsrc2=size=160x120:rate=25:duration=0.2", tmp_path, format="lavfi", live=False)
    cfg["live"]["decoder"] = "cpu"
    with Pipeline.from_config(cfg) as pipe:
        results = list(pipe)
        assert pipe.stream_status()[0]["decoder"] == "cpu"
    assert len(results) == 5


def test_a_gpu_out_of_memory_is_not_moved_to_the_cpu(monkeypatch):
    """A live stream whose NVDEC decoder cannot get GPU memory is retried like a failed connection,
    with that reason, instead of decoding 1080p on the CPU beside the GPU's other streams."""
    from streamtrt.config import LiveConfig, SourceConfig
    from streamtrt.errors import StreamTRTError
    from streamtrt.sources import nvdec
    from streamtrt.sources.live import FFmpegLiveSource

    def no_memory(*args, **kwargs):  # CUDA's error name; PyNvVideoCodec's exact text for it was not seen
        raise RuntimeError("CreateDecoder : cuvidCreateDecoder(&videoDecodeCreateInfo) returned error 2 "
                           "(CUDA_ERROR_OUT_OF_MEMORY)")

    monkeypatch.setattr(nvdec, "nvdec_unavailable_reason", lambda: None)
    monkeypatch.setattr(nvdec, "NvdecDecoder", no_memory)
    sc = SourceConfig(uri="ffmpeg://testsrc2=size=160x120:rate=25:duration=0.4", format="lavfi", live=True)
    source = FFmpegLiveSource(parse_source_uri(sc.uri), "cam", sc, LiveConfig(max_reconnects=1, reconnect_initial_s=0.05),
                              nvdec_device=0)
    with pytest.raises(StreamTRTError, match="the GPU is out of memory") as raised:
        list(source)
    assert "CUDA_ERROR_OUT_OF_MEMORY" in str(raised.value)
    assert source.decoder == "nvdec"  # never switched to the CPU


def test_any_other_nvdec_start_failure_still_decodes_on_the_cpu(monkeypatch):
    from streamtrt.config import LiveConfig, SourceConfig
    from streamtrt.sources import nvdec
    from streamtrt.sources.live import FFmpegLiveSource

    def no_decoder(*args, **kwargs):
        raise RuntimeError("cuvidCreateDecoder returned error 801 (CUDA_ERROR_NOT_SUPPORTED)")

    monkeypatch.setattr(nvdec, "nvdec_unavailable_reason", lambda: None)
    monkeypatch.setattr(nvdec, "NvdecDecoder", no_decoder)
    sc = SourceConfig(uri="ffmpeg://testsrc2=size=160x120:rate=25:duration=0.4", format="lavfi", live=False)
    source = FFmpegLiveSource(parse_source_uri(sc.uri), "cam", sc, LiveConfig(), nvdec_device=0)
    assert len(list(source)) == 10 and source.decoder == "cpu"
