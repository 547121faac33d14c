"""Live sources decoded on NVDEC (PyNvVideoCodec) and preprocessed on the GPU (DALI): the same
frames and detections as CPU decode, for MP4 (length-prefixed H.264, converted to Annex B) and
MPEG-TS (Annex B) inputs, with and without B-frames, over ffmpeg:// and HTTP, across reconnects.

Runs only where a GPU, PyNvVideoCodec, CuPy and DALI are present."""

from __future__ import annotations

import functools
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pytest

from streamtrt import Pipeline
from streamtrt.config import LiveConfig, SourceConfig
from streamtrt.preprocess.dali import dali_available
from streamtrt.sources import parse_source_uri
from streamtrt.sources.live import FFmpegLiveSource
from streamtrt.sources.nvdec import nvdec_unavailable_reason
from streamtrt.system import probe_cuda
from tests.conftest import VIDEO, decode_frames, unmatched, write_video
from tests.sources.test_live import live_config

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not probe_cuda().available, reason="no CUDA device on this machine"),
    pytest.mark.skipif(nvdec_unavailable_reason() is not None, reason=str(nvdec_unavailable_reason())),
    pytest.mark.skipif(not dali_available(), reason="DALI is not installed"),
]


def encode(path, frames, bframes: bool):
    """H.264 with x264's default B-frames, or none (IPPP, as most cameras send)."""
    return write_video(path, frames, "libx264", options=None if bframes else {"bf": "0", "tune": "zerolatency"})


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    d = tmp_path_factory.mktemp("nvdec")
    frames = decode_frames(VIDEO, 24)
    return {(suffix, bf): encode(d / f"clip-{'b' if bf else 'p'}{suffix}", frames, bf)
            for suffix in (".mp4", ".ts") for bf in (True, False)}


def live_frames(uri: str, nvdec: bool):
    sc = SourceConfig(uri=uri, live=False)
    source = FFmpegLiveSource(parse_source_uri(uri), "cam", sc, LiveConfig(), nvdec_device=0 if nvdec else None)
    images = [f.image if isinstance(f.image, np.ndarray) else f.image.get() for f in source]
    return images, source.decoder


@pytest.mark.parametrize("suffix", [".mp4", ".ts"])
@pytest.mark.parametrize("bframes", [True, False], ids=["b-frames", "ippp"])
def test_nvdec_frames_match_ffmpeg_frames(clips, suffix, bframes):
    uri = f"ffmpeg://{clips[(suffix, bframes)]}"
    cpu, _ = live_frames(uri, nvdec=False)
    gpu, decoder = live_frames(uri, nvdec=True)
    assert decoder == "nvdec"
    assert len(gpu) == len(cpu) == 24
    for a, b in zip(gpu, cpu):
        assert a.shape == b.shape and a.dtype == np.uint8
        # NVDEC's colour conversion differs from swscale's by a level or two, never by content
        assert np.abs(a.astype(np.int16) - b).mean() < 3.0


def test_live_pipeline_on_nvdec_matches_cpu_decode(clips, tmp_path):
    uri = f"ffmpeg://{clips[('.ts', False)]}"
    runs = {}
    for decoder in ("cpu", "nvdec"):
        cfg = live_config(uri, tmp_path, supervision={"decoder": decoder}, live=False)
        cfg["runtime"] = {"runner": "auto"}
        with Pipeline.from_config(cfg) as pipe:
            runs[decoder] = list(pipe)
            assert pipe.stream_status()[0]["decoder"] == decoder
            if decoder == "nvdec":
                assert pipe.plan.live_decoder == "nvdec"
    assert [r.frame_index for r in runs["nvdec"]] == [r.frame_index for r in runs["cpu"]] == list(range(24))
    gpu = [r.detections.to_records() for r in runs["nvdec"]]
    cpu = [r.detections.to_records() for r in runs["cpu"]]
    clear = sum(sum(d["score"] >= 0.4 for d in c) for c in cpu)
    missing = sum(len(unmatched(c, g, 0.35, margin=0.05, iou=0.8)) for g, c in zip(gpu, cpu))
    assert clear > 24 and missing <= max(1, clear // 20), (missing, clear)


class _Quiet(SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


def test_http_stream_on_nvdec_reconnects_with_a_fresh_decoder(clips, tmp_path):
    """A live HTTP stream that ends is reconnected; each connection gets its own NVDEC decoder
    and the frames keep coming."""
    clip = clips[(".ts", False)]
    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Quiet, directory=str(clip.parent)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/{clip.name}"
        cfg = live_config(url, tmp_path, supervision={"decoder": "nvdec", "drop_stale": False})
        cfg["runtime"] = {"runner": "auto"}
        from tests.sources.test_live import run_until

        pipe, results, _ = run_until(cfg, 3 * 24)  # three times through the 24-frame clip
    finally:
        server.shutdown()
    status = pipe.summary.streams["cam"]
    assert status["decoder"] == "nvdec"
    assert status["reconnects"] >= 2 and [r.frame_index for r in results] == list(range(3 * 24))
