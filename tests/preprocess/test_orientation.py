"""The GPU path's orientation, without a GPU: the DALI graph after NVDEC (run by DALI on the CPU)
turns frames exactly as the CPU path's ``orient`` does, for all eight display transforms, and as
ffmpeg shows them; the GPU decoder is built from the probe's displayed size and transform.
The truth: numpy's rot90/fliplr, ffmpeg's autorotated output and ffprobe."""

import av
import numpy as np
import pytest

from streamtrt.config import SourceConfig
from streamtrt.preprocess.dali import dali_available
from streamtrt.preprocess.spec import PreprocessSpec
from streamtrt.sources import VideoFileSource, open_source, parse_source_uri, probe_video
from streamtrt.sources.orientation import displayed_size, orient, stored_size
from tests.ffmpeg_tools import CASES, decoded_as_displayed, needs_ffmpeg, video_stream

ROTATED = CASES / "phone_portrait_rotate90.mp4"  # stored 576x768, ffprobe rotation=90, shown 768x576
needs_dali = pytest.mark.skipif(not dali_available(), reason="DALI is not installed")
SPEC = PreprocessSpec(416, 416, "letterbox", "bgr", (103.53, 116.28, 123.675), (57.375, 57.12, 58.395))


def run_graph(build, sequence: np.ndarray) -> list[np.ndarray]:
    """``build(fn, types, frames)`` -> outputs, run by DALI on the CPU on one FHWC sequence."""
    from nvidia import dali
    from nvidia.dali import fn, types

    pipe = dali.Pipeline(batch_size=1, num_threads=1, device_id=None, exec_async=False, exec_pipelined=False)
    with pipe:
        outs = build(fn, types, fn.external_source(name="video", layout="FHWC", dtype=types.UINT8))
        pipe.set_outputs(*(outs if isinstance(outs, (list, tuple)) else [outs]))
    pipe.build()
    pipe.feed_input("video", [sequence])
    return [np.asarray(o[0]) for o in pipe.run()]


def stored_rgb(path, count=None) -> np.ndarray:
    """Frames as stored (what NVDEC gives: RGB, not turned), decoded by FFmpeg."""
    with av.open(str(path)) as c:
        c.streams.video[0].thread_type = "AUTO"
        frames = [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]
    return np.stack(frames[:count])


def test_stored_size_undoes_displayed_size():
    for rotation in (0, 90, 180, 270):
        w, h = displayed_size(576, 768, rotation)
        assert stored_size(w, h, rotation) == (576, 768)
    assert displayed_size(576, 768, 90) == (768, 576) and displayed_size(576, 768, 180) == (576, 768)


@needs_dali
@pytest.mark.parametrize("rotation", [0, 90, 180, 270])
@pytest.mark.parametrize("mirror", [False, True])
def test_dali_orientation_graph_equals_orient(rotation, mirror):
    """The transpose/flip graph the NVDEC decoder uses, run by DALI on the CPU: exactly numpy's
    rot90 (counterclockwise) then fliplr, frame by frame."""
    from streamtrt.preprocess.dali import orient_sequence

    frames = np.random.default_rng(1).integers(0, 256, (3, 5, 7, 3), dtype=np.uint8)
    (out,) = run_graph(lambda fn, types, f: orient_sequence(fn, f, rotation, mirror), frames)
    want = np.stack([np.rot90(f, rotation // 90) for f in frames])
    want = want[:, :, ::-1] if mirror else want
    assert np.array_equal(out, want)
    assert np.array_equal(out, np.stack([orient(f, rotation, mirror) for f in frames]))


@needs_dali
@needs_ffmpeg
@pytest.mark.parametrize("degrees", [0, 90, 180, 270])
@pytest.mark.parametrize("hflip", [False, True])
def test_dali_graph_shows_all_eight_orientations_as_ffmpeg(tmp_path, first_frames, degrees, hflip):
    """Files with each display matrix (mirrors included), written with PyAV: the GPU graph turns
    their stored frames by the probe's rotation/mirror into what the ffmpeg tool shows."""
    from streamtrt.preprocess.dali import orient_sequence

    path = tmp_path / f"o{degrees}{'m' if hflip else ''}.mp4"
    images = [np.ascontiguousarray(f[::8, ::8]) for f in first_frames[:3]]  # 96x72, asymmetric
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=10)
        stream.width, stream.height, stream.pix_fmt = 96, 72, "yuv420p"
        stream.set_display_rotation(degrees, hflip=hflip)
        for img in images:
            for packet in stream.encode(av.VideoFrame.from_ndarray(img, format="bgr24")):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    info = probe_video(path, path.name)
    (got,) = run_graph(lambda fn, types, f: orient_sequence(fn, f, info.rotation, info.mirror), stored_rgb(path))
    want = np.stack(decoded_as_displayed(path, 3))[..., ::-1]  # BGR -> RGB
    assert got.shape == want.shape and (info.width, info.height) == (want.shape[2], want.shape[1])
    assert np.abs(got.astype(int) - want).mean() < 2.0
    others = [np.rot90(want, k, axes=(1, 2)) for k in (1, 2, 3)] + [want[:, :, ::-1]]
    assert all(o.shape != got.shape or np.abs(got.astype(int) - o).mean() > 10 for o in others)


@needs_dali
@pytest.mark.parametrize("resize", ["letterbox", "stretch"])
def test_the_gpu_decoder_graph_on_the_phone_case_equals_the_cpu_path(resize):
    """The decoder's graph after NVDEC (orientation, resize, letterbox, normalisation, kept frames),
    run by DALI on the CPU on FFmpeg's stored frames: the CPU path's frames and tensor."""
    from streamtrt.preprocess.dali import sequence_graph
    from streamtrt.preprocess.opencv import OpenCVPreprocessor

    spec = PreprocessSpec(416, 416, resize, "bgr", SPEC.mean, SPEC.std)
    src = VideoFileSource(str(ROTATED), ROTATED.name)
    info = src.info
    upright = [f.image for _, f in zip(range(4), src)]  # the CPU path
    src.close()
    geom = spec.geometry(info.height, info.width)
    tensor, kept = run_graph(lambda fn, types, f: sequence_graph(fn, types, f, spec, geom, info.rotation,
                                                                 keep_frames=True, mirror=info.mirror),
                             stored_rgb(ROTATED, 4))
    assert kept.shape == (4, 576, 768, 3)
    assert np.abs(kept.astype(int) - np.stack(upright)).max() <= 1  # rgb24 vs bgr24 conversions
    expected, geoms = OpenCVPreprocessor(spec)(upright)
    assert geoms[0] == geom and (geom.pad_y > 0) == (resize == "letterbox")
    assert tensor.shape == expected.shape == (4, 3, 416, 416)
    pixel = np.abs(tensor - expected) * np.asarray(spec.std, np.float32).reshape(1, 3, 1, 1)
    assert pixel.mean() < 0.5, pixel.mean()


@needs_ffmpeg
@pytest.mark.parametrize("orientation", ["auto", "ignore"])
def test_the_gpu_decoder_is_built_from_the_probe(monkeypatch, orientation):
    """One factory (pipeline, bench, bench_streams): NVDEC's stored size is the probe's displayed
    size un-swapped, turned by the probe's rotation/mirror; with ``ignore`` nothing is turned."""
    from streamtrt.preprocess import dali

    made = {}
    monkeypatch.setattr(dali, "DaliGpuVideoDecoder", lambda *a, **kw: made.update(args=a, kw=kw) or "decoder")
    src = open_source(parse_source_uri(str(ROTATED)), options=SourceConfig(uri="unused", orientation=orientation))
    src.close()
    s = video_stream(ROTATED)
    assert dali.open_gpu_video_decoder(str(ROTATED), src.info, SPEC, 4, 40, keep_frames=True) == "decoder"
    path, spec, batch, count, height, width = made["args"]
    assert (height, width) == (int(s["height"]), int(s["width"])) == (768, 576)  # as stored, either way
    assert made["kw"] == {"rotation": s["rotation"] if orientation == "auto" else 0, "mirror": False,
                          "keep_frames": True}
