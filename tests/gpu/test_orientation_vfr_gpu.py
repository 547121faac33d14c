"""The GPU path shows video as players do: rotated files come out upright from NVDEC (file path:
DALI transpose/flip; live path: NvdecDecoder), boxes in displayed pixels, and a variable-frame-rate
file keeps its frame times. The truth: ffmpeg's autorotation, ffprobe's frame times, the CPU path.

Runs only on a GPU machine with DALI (and onnxruntime-gpu for the pipeline tests)."""

import json
import shutil
import subprocess
from pathlib import Path

import av
import numpy as np
import pytest

from streamtrt import Pipeline
from streamtrt.engine import cuda_provider_available
from streamtrt.config import LiveConfig, SourceConfig
from streamtrt.preprocess.dali import dali_available, open_gpu_video_decoder
from streamtrt.preprocess.opencv import OpenCVPreprocessor
from streamtrt.preprocess.spec import PreprocessSpec
from streamtrt.sources import VideoFileSource, parse_source_uri, probe_video
from streamtrt.sources.nvdec import nvdec_unavailable_reason
from streamtrt.system import probe_cuda
from tests.conftest import NANODET_INPUT, VIDEO, make_config

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not probe_cuda().available, reason="no CUDA device on this machine"),
    pytest.mark.skipif(not dali_available(), reason="DALI is not installed"),
    pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="needs ffmpeg"),
]
needs_ort_cuda = pytest.mark.skipif(not cuda_provider_available(), reason="onnxruntime-gpu is not installed")

CASES = Path(__file__).resolve().parents[1] / "data" / "cases"
ROTATED = CASES / "phone_portrait_rotate90.mp4"  # stored 576x768, shown 768x576 (np.rot90(stored, 1))
VFR = CASES / "vfr_10fps_then_2fps.mkv"  # 28 frames: 10 fps for 2 s, then 2 fps; 5.6 s
SPEC = PreprocessSpec(416, 416, "letterbox", "bgr", tuple(NANODET_INPUT["mean"]), tuple(NANODET_INPUT["std"]))


def ffmpeg(*args):
    subprocess.run(["ffmpeg", "-v", "error", "-y", *map(str, args)], check=True)


def ffprobe(path, *args):
    out = subprocess.run(["ffprobe", "-v", "error", "-of", "json", *args, str(path)], check=True,
                         capture_output=True, text=True).stdout
    return json.loads(out)


def upright_cpu_frames(path) -> list[np.ndarray]:
    """The CPU path's frames (FFmpeg-decoded, turned by the display matrix: checked against the
    ffmpeg tool in tests/sources/test_orientation.py)."""
    with VideoFileSource(str(path), Path(path).name) as src:
        return [f.image for f in src]


def ffmpeg_shows(path, folder) -> np.ndarray:
    """The first frame as the ffmpeg tool shows it (autorotate), BGR."""
    png = folder / (Path(path).stem + ".png")
    ffmpeg("-i", path, "-frames:v", "1", png)
    import cv2

    return cv2.imread(str(png))


@pytest.fixture(scope="module")
def rotated_clips(tmp_path_factory):
    """The phone case, plus the sample clip's first frames with each of the eight display
    transforms (quarter turns, with and without a mirror), written with PyAV."""
    folder = tmp_path_factory.mktemp("rot")
    clips = {"case": ROTATED}
    with av.open(str(VIDEO)) as c:
        images = [f.to_ndarray(format="bgr24")[::2, ::2] for _, f in zip(range(12), c.decode(video=0))]
    for degrees in (0, 90, 180, 270):
        for hflip in (False, True):
            path = clips[(degrees, hflip)] = folder / f"o{degrees}{'m' if hflip else ''}.mp4"
            with av.open(str(path), "w") as out:
                stream = out.add_stream("libx264", rate=10)
                stream.height, stream.width = images[0].shape[:2]
                stream.pix_fmt = "yuv420p"
                stream.set_display_rotation(degrees, hflip=hflip)
                for img in images:
                    for packet in stream.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(img), format="bgr24")):
                        out.mux(packet)
                for packet in stream.encode():
                    out.mux(packet)
    return clips


ALL = ["case"] + [(d, m) for d in (0, 90, 180, 270) for m in (False, True)]


@pytest.mark.parametrize("which", ALL, ids=str)
def test_nvdec_file_frames_come_out_upright(rotated_clips, which, tmp_path):
    path = rotated_clips[which]
    info = probe_video(Path(path), Path(path).name)
    truth = upright_cpu_frames(path)
    assert np.abs(truth[0].astype(int) - ffmpeg_shows(path, tmp_path)).mean() < 2  # the CPU path shows what ffmpeg shows
    dec = open_gpu_video_decoder(str(path), info, SPEC, 5, len(truth), keep_frames=True)
    assert (dec.height, dec.width) == (info.height, info.width) == truth[0].shape[:2]
    batches = list(dec)
    kept = np.concatenate([b.frames for b in batches])
    assert kept.shape == (len(truth),) + truth[0].shape
    diff = np.abs(kept.astype(int) - np.stack(truth).astype(int)).mean()
    assert diff < 3, diff  # NVDEC's colour conversion differs from swscale by ~2 levels; a wrong turn is >> 3
    # and the tensor is the CPU path's letterbox of the upright frames
    expected, geoms = OpenCVPreprocessor(SPEC)(truth)
    assert geoms[0] == dec.geometry
    got = np.concatenate([b.to_host() for b in batches])
    pixel = np.abs(got - expected) * np.asarray(SPEC.std, np.float32).reshape(1, 3, 1, 1)
    assert pixel.mean() < 2.5, pixel.mean()


@pytest.mark.skipif(nvdec_unavailable_reason() is not None, reason=str(nvdec_unavailable_reason()))
@pytest.mark.parametrize("which", ALL, ids=str)
def test_live_nvdec_decoder_turns_frames_upright(rotated_clips, which):
    from streamtrt.sources.nvdec import NvdecDecoder

    path = rotated_clips[which]
    info = probe_video(Path(path), Path(path).name)
    truth = upright_cpu_frames(path)
    frames = []
    with av.open(str(path)) as c:
        dec = NvdecDecoder(c.streams.video[0], 0, rotation=info.rotation, mirror=info.mirror)
        for packet in c.demux(video=0):
            frames += [f.get() for f in dec.decode(packet if packet.size else None)]
        dec.close()
    assert len(frames) == len(truth) and frames[0].shape == truth[0].shape
    assert np.abs(np.stack(frames).astype(int) - np.stack(truth).astype(int)).mean() < 3


@pytest.mark.skipif(nvdec_unavailable_reason() is not None, reason=str(nvdec_unavailable_reason()))
@pytest.mark.parametrize("which", ["case", (90, True), (270, False)], ids=str)
@pytest.mark.parametrize("orientation", ["auto", "ignore"])
def test_live_source_on_nvdec_reads_the_display_matrix(rotated_clips, which, orientation):
    """The live source (ffmpeg:// here) on NVDEC reads the stream's display matrix itself (no PyAV
    frame there) and gives what its CPU decode gives; ``ignore`` keeps frames as stored."""
    from streamtrt.sources.live import FFmpegLiveSource

    uri = f"ffmpeg://{rotated_clips[which]}"
    got = {}
    for nvdec in (True, False):
        sc = SourceConfig(uri=uri, live=False, orientation=orientation)
        source = FFmpegLiveSource(parse_source_uri(uri), "cam", sc, LiveConfig(), nvdec_device=0 if nvdec else None)
        images = [f.image if isinstance(f.image, np.ndarray) else f.image.get() for f in source]
        got[nvdec] = (images, source.decoder, source.info.rotation, source.info.mirror)
    (gpu, decoder, rotation, mirror), (cpu, _, cpu_rotation, cpu_mirror) = got[True], got[False]
    assert decoder == "nvdec" and (rotation, mirror) == (cpu_rotation, cpu_mirror)
    info = probe_video(Path(rotated_clips[which]), "clip", orientation=orientation)
    assert (rotation, mirror) == (info.rotation, info.mirror)
    assert len(gpu) == len(cpu) and gpu[0].shape == cpu[0].shape == (info.height, info.width, 3)
    assert np.abs(np.stack(gpu).astype(int) - np.stack(cpu).astype(int)).mean() < 3


def _persons(path, tmp_path, runtime, sinks=()):
    cfg = make_config(path, tmp_path, runtime=runtime, sinks=list(sinks))
    with Pipeline.from_config(cfg) as pipe:
        results = [(r.width, r.height, r.timestamp, r.detections) for r in pipe]
        summary = pipe.summary
    return results, summary


@needs_ort_cuda
def test_gpu_pipeline_on_the_phone_case_sees_people_upright(tmp_path):
    upright = tmp_path / "upright.mp4"
    ffmpeg("-i", ROTATED, "-c:v", "libx264", "-crf", "12", "-pix_fmt", "yuv420p", upright)  # ffmpeg autorotates
    assert ffprobe(upright, "-show_streams")["streams"][0]["width"] == 768
    video = tmp_path / "annotated.mp4"
    gpu, summary = _persons(ROTATED, tmp_path, {"decoder": "dali-gpu", "runner": "onnxruntime-cuda"},
                            [f"video:{video}"])
    cpu, _ = _persons(upright, tmp_path, {"decoder": "cpu", "runner": "onnxruntime-cpu"})
    assert summary.bad_frames == 0 and len(gpu) == len(cpu) == 40
    assert {(w, h) for w, h, _, _ in gpu} == {(768, 576)}
    n_gpu = sum(sum(c == "person" for c in d.class_name) for *_, d in gpu)
    n_cpu = sum(sum(c == "person" for c in d.class_name) for *_, d in cpu)
    print("persons in 40 frames: GPU path on the rotated file", n_gpu, "CPU path on ffmpeg's upright copy", n_cpu)
    assert n_cpu > 100 and abs(n_gpu - n_cpu) <= max(5, n_cpu // 10), (n_gpu, n_cpu)
    boxes = np.concatenate([d.xyxy for *_, d in gpu if len(d)])
    assert boxes[:, 2].max() <= 768 and boxes[:, 3].max() <= 576
    s = ffprobe(video, "-show_streams", "-show_format")
    assert (s["streams"][0]["width"], s["streams"][0]["height"]) == (768, 576)
    assert float(s["format"]["duration"]) == pytest.approx(4.0, abs=0.01)


@needs_ort_cuda
def test_gpu_pipeline_keeps_variable_frame_rate(tmp_path):
    want = [float(f["pts_time"]) for f in ffprobe(VFR, "-select_streams", "v:0", "-show_entries",
                                                   "frame=pts_time")["frames"]]
    video = tmp_path / "annotated.mp4"
    gpu, summary = _persons(VFR, tmp_path, {"decoder": "dali-gpu", "runner": "onnxruntime-cuda"}, [f"video:{video}"])
    assert summary.bad_frames == 0
    assert [t for _, _, t, _ in gpu] == pytest.approx(want, abs=1e-6)
    out = [float(f["pts_time"]) for f in ffprobe(video, "-select_streams", "v:0", "-show_entries",
                                                 "frame=pts_time")["frames"]]
    assert out == pytest.approx(want, abs=1e-3)
    assert float(ffprobe(video, "-show_format")["format"]["duration"]) == pytest.approx(5.6, abs=0.01)


def test_nvdec_file_path_shows_what_an_edit_list_shows(tmp_path):
    """An MP4 cut with -c copy: the container holds frames before the cut that players hide.
    The GPU path must give the CPU path's frames (FFmpeg honours the edit list)."""
    from streamtrt.sources.frametimes import presentation_times

    trimmed = tmp_path / "trimmed.mp4"
    ffmpeg("-ss", "1.05", "-i", VIDEO, "-t", "2", "-c", "copy", trimmed)
    with av.open(str(trimmed)) as c:
        cpu = [f.to_ndarray(format="bgr24") for f in c.decode(video=0)]
    times = presentation_times(str(trimmed))
    assert len(times) == len(cpu)
    dec = open_gpu_video_decoder(str(trimmed), probe_video(trimmed, "trimmed.mp4"), SPEC, 4, len(times),
                                 keep_frames=True)
    kept = np.concatenate([b.frames for b in dec])
    per_frame = np.abs(kept.astype(int) - np.stack(cpu).astype(int)).mean(axis=(1, 2, 3))
    print("mean abs diff per frame, GPU vs CPU:", np.round(per_frame, 2).tolist())
    assert kept.shape[0] == len(cpu) and per_frame.max() < 3, per_frame
