"""DALI pipelines: host frames preprocessed on the CPU, and video decoded on NVDEC and
preprocessed on the GPU into device memory.

DALI is imported lazily so that streamtrt still runs where it is absent (the OpenCV fallback).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Optional, Sequence

import numpy as np

from ..tensors import DeviceView
from ..errors import BackendUnavailableError, DecodeError, GpuMemoryError, SourceError, gpu_memory_error
from ..sources.base import SourceInfo
from ..sources.orientation import displayed_size, stored_size
from .spec import Geometry, PreprocessSpec


def dali_available() -> bool:
    try:
        import nvidia.dali  # noqa: F401
    except Exception:
        return False
    return True


def dali_error_line(exc: BaseException) -> str:
    """The informative line of a DALI error (its first line is only 'Critical error in pipeline:')."""
    lines = [l.strip() for l in str(exc).splitlines() if l.strip()]
    if "encountered:" in lines:
        after = lines[lines.index("encountered:") + 1 :]
        if after:
            return after[0][:300]
    return (lines[0] if lines else type(exc).__name__)[:300]


def out_of_gpu_memory(exc: BaseException, what: str) -> Optional[GpuMemoryError]:
    """``exc`` from DALI as a :class:`~streamtrt.errors.GpuMemoryError` when it says the device
    ran out of memory (DALI raises ``MemoryError``, or a ``RuntimeError`` whose cause reads "CUDA
    allocation failed"), else None. ``what``: the thing that failed, for the message."""
    return gpu_memory_error(exc, what, dali_error_line(exc))


def _import_dali():
    try:
        from nvidia import dali
        from nvidia.dali import fn, types
    except Exception as exc:  # ImportError, or a broken install raising OSError
        raise BackendUnavailableError(f"DALI is not available: {exc}") from None
    return dali, fn, types


_PIPELINE_CLASS: Any = None


def _pipeline_class(dali) -> Any:
    """``dali.Pipeline``, whose runs make no reference cycles.

    DALI (2.4) defines a new class inside ``Pipeline._check_api_type_scope`` on every call: four
    times a ``run()``. Each class is a reference cycle, and those promoted to CPython's oldest
    generation waited minutes for a full collection (``benchmarks/heapprobe.py --garbage``; see
    :mod:`streamtrt.runtime.heap`). This subclass returns an instance of one class instead. The
    check is the same, and so is the scope: API checks are off inside it. Where a DALI version has
    no such method, this is ``dali.Pipeline`` itself."""
    global _PIPELINE_CLASS
    if _PIPELINE_CLASS is not None:
        return _PIPELINE_CLASS
    base = dali.Pipeline
    if not (hasattr(base, "_check_api_type_scope") and hasattr(base, "_check_api_type")):
        _PIPELINE_CLASS = base
        return base

    class _ApiScope:
        __slots__ = ("pipe", "old")

        def __init__(self, pipe):
            self.pipe = pipe

        def __enter__(self):
            self.old = self.pipe._skip_api_check
            self.pipe._skip_api_check = True

        def __exit__(self, *exc):
            self.pipe._skip_api_check = self.old

    class Pipeline(base):
        def _check_api_type_scope(self, type):
            if not self._skip_api_check:
                self._check_api_type(type)
            return _ApiScope(self)

    _PIPELINE_CLASS = Pipeline
    return Pipeline


def _dali_dtype(types, dtype: str):
    return {"float16": types.FLOAT16, "uint8": types.UINT8}.get(dtype, types.FLOAT)


def _to_model_colors(fn, types, images, have: str, spec: PreprocessSpec):
    """Swap channels (on uint8 frames, before resizing) when the model wants the other order."""
    if have == spec.color:
        return images
    image_type, output_type = (types.BGR, types.RGB) if have == "bgr" else (types.RGB, types.BGR)
    return fn.color_space_conversion(images, image_type=image_type, output_type=output_type)


def _normalize(fn, types, images, spec: PreprocessSpec, output_layout: str):
    """Mean/std, dtype and HWC->CHW (unless the model is NHWC) in one crop_mirror_normalize."""
    if spec.layout == "nhwc":
        output_layout = output_layout.replace("CHW", "HWC")
    return fn.crop_mirror_normalize(
        images,
        dtype=_dali_dtype(types, spec.dtype),
        output_layout=output_layout,
        mean=list(spec.mean),
        std=list(spec.std),
    )


def model_tensor(fn, types, images, spec: PreprocessSpec, have: str, resize_x, resize_y, start=None,
                 sequence: bool = False):
    """The one DALI preprocessing graph: uint8 frames in colour order ``have`` ("bgr"/"rgb"; layout
    HWC, or FHWC with ``sequence``) -> the model tensor (CHW / FCHW, HWC / FHWC for NHWC models) of
    ``spec``. Channels are swapped on uint8 if the model wants the other order, then a linear resize
    without antialiasing (matches OpenCV's ``INTER_LINEAR``) to ``resize_x`` x ``resize_y``, a
    letterbox pad by slicing from ``start`` ([-pad_y, -pad_x]; only with ``spec.resize == "letterbox"``)
    to the input size, and mean/std, dtype and layout in one ``crop_mirror_normalize``.

    ``resize_x``, ``resize_y`` and ``start`` are constants, or DataNodes (per-sample values fed
    through ``external_source``)."""
    images = fn.resize(
        _to_model_colors(fn, types, images, have, spec), resize_x=resize_x, resize_y=resize_y, antialias=False,
        interp_type=types.INTERP_LINEAR, dtype=types.FLOAT,
    )
    if spec.resize == "letterbox":
        images = fn.slice(
            images, start=start, shape=[spec.height, spec.width], axis_names="HW",
            out_of_bounds_policy="pad", fill_values=float(spec.pad_value),
        )
    return _normalize(fn, types, images, spec, "FCHW" if sequence else "CHW")


def orient_sequence(fn, frames, rotation: int, mirror: bool = False):
    """Decoded frames (layout FHWC) as players show them: turned ``rotation`` degrees
    counterclockwise, then flipped left-right if ``mirror`` (the convention of
    :mod:`streamtrt.sources.orientation`; equal to ``orient`` on each frame).

    Exact (at most one transpose and one flip, no resampling). With T the transpose of H and W:
    ``np.rot90(f, 1)`` is T then a vertical flip, ``np.rot90(f, 3)`` T then a horizontal flip,
    ``np.rot90(f, 2)`` both flips; a mirror toggles the horizontal flip."""
    k = (rotation // 90) % 4
    horizontal = k in (2, 3)
    vertical = k in (1, 2)
    horizontal ^= bool(mirror)
    if k in (1, 3):
        frames = fn.transpose(frames, perm=[0, 2, 1, 3], transpose_layout=False)  # H <-> W, layout stays FHWC
    if horizontal or vertical:
        frames = fn.flip(frames, horizontal=int(horizontal), vertical=int(vertical))
    return frames


def sequence_graph(fn, types, frames, spec: PreprocessSpec, geom: Geometry, rotation: int, keep_frames: bool,
                   decode_only: bool = False, mirror: bool = False) -> list:
    """What :class:`DaliGpuVideoDecoder` makes of decoded RGB sequences (FHWC, as stored): turned
    upright (``rotation``/``mirror``: :func:`orient_sequence`), then the model tensor (FCHW; or the upright RGB frames with ``decode_only``), and with
    ``keep_frames`` the upright BGR frames too. ``geom`` is the geometry of the displayed size."""
    frames = orient_sequence(fn, frames, rotation, mirror)
    outputs = [frames if decode_only else model_tensor(
        fn, types, frames, spec, "rgb", float(geom.resized_width), float(geom.resized_height),
        [-geom.pad_y, -geom.pad_x], sequence=True)]
    if keep_frames:
        outputs.append(fn.color_space_conversion(frames, image_type=types.RGB, output_type=types.BGR))
    return outputs


class DaliCpuPreprocessor:
    """Host frames (BGR uint8) -> NCHW tensor with a DALI CPU pipeline fed through ``external_source``.

    Uses ``antialias=False`` linear resizing, which matches OpenCV's ``INTER_LINEAR``.
    """

    name = "dali-cpu"
    device_id: Optional[int] = None  # where the pipeline runs: None is the CPU

    def __init__(self, spec: PreprocessSpec, max_batch: int, threads: Optional[int] = None):
        self.spec = spec
        self.max_batch = max_batch
        self.threads = threads or max(1, os.cpu_count() or 1)
        self._dali, self._fn, self._types = _import_dali()
        self._pipe = self._build()

    def _build(self):
        dali, fn, types = self._dali, self._fn, self._types
        spec = self.spec
        pipe = _pipeline_class(dali)(
            batch_size=self.max_batch, num_threads=self.threads, device_id=self.device_id,
            exec_async=False, exec_pipelined=False, prefetch_queue_depth=1,
        )
        with pipe:
            frames = fn.external_source(name="frames", device="cpu" if self.device_id is None else "gpu",
                                        layout="HWC", dtype=types.UINT8)
            rx = fn.external_source(name="resize_x", dtype=types.FLOAT)
            ry = fn.external_source(name="resize_y", dtype=types.FLOAT)
            start = fn.external_source(name="start", dtype=types.INT32) if spec.resize == "letterbox" else None
            pipe.set_outputs(model_tensor(fn, types, frames, spec, "bgr", rx, ry, start))
        pipe.build()
        return pipe

    def _run(self, frames: list, images: Sequence[Any]):
        """Feed ``frames`` (what the pipeline reads) with the geometry of ``images``; run once."""
        if len(images) > self.max_batch:
            raise ValueError(f"batch of {len(images)} exceeds the DALI pipeline's {self.max_batch}")
        spec = self.spec
        geoms = [spec.geometry(int(im.shape[0]), int(im.shape[1])) for im in images]
        self._pipe.feed_input("frames", frames, layout="HWC")
        self._pipe.feed_input("resize_x", [np.array(g.resized_width, np.float32) for g in geoms])
        self._pipe.feed_input("resize_y", [np.array(g.resized_height, np.float32) for g in geoms])
        if spec.resize == "letterbox":
            self._pipe.feed_input("start", [np.array([-g.pad_y, -g.pad_x], np.int32) for g in geoms])
        try:
            (out,) = self._pipe.run()
        except RuntimeError as exc:
            # An operator error leaves a DALI pipeline unusable: rebuild before re-raising.
            self._pipe = self._build()
            raise DecodeError(f"DALI {'GPU ' if self.device_id is not None else ''}preprocessing failed: "
                              f"{dali_error_line(exc)}") from None
        return out, geoms

    def __call__(self, images: Sequence[np.ndarray]) -> tuple[np.ndarray, list[Geometry]]:
        out, geoms = self._run([np.ascontiguousarray(im) for im in images], images)
        return out.as_array(), geoms

    def close(self) -> None:
        self._pipe = None


class DaliGpuPreprocessor(DaliCpuPreprocessor):
    """Frames (BGR uint8: CuPy arrays from NVDEC, or host arrays) -> an NCHW tensor in device
    memory: the same DALI graph as :class:`DaliCpuPreprocessor`, on the GPU. The result is copied
    out of DALI's buffers (which the next run reuses), so it lives as long as the batch holding it."""

    name = "dali-gpu"

    def __init__(self, spec: PreprocessSpec, max_batch: int, device_id: int = 0, threads: int = 2):
        import cupy

        self._cupy = cupy
        self.device_id = device_id
        super().__init__(spec, max_batch, threads)

    def __call__(self, images: Sequence[Any]):
        from ..tensors import OwnedDeviceTensor

        cupy = self._cupy
        with cupy.cuda.Device(self.device_id):
            frames = [cupy.ascontiguousarray(cupy.asarray(im)) for im in images]
            cupy.cuda.get_current_stream().synchronize()  # uploads and NVDEC copies done before DALI reads
            out, geoms = self._run(frames, images)
            tensor = cupy.from_dlpack(out.as_tensor()).copy()
            cupy.cuda.get_current_stream().synchronize()
        return OwnedDeviceTensor(tensor), geoms


@dataclass
class DeviceBatch:
    """A preprocessed batch in device memory, owned by DALI until :meth:`release` is called."""

    tensor: Any  # nvidia.dali TensorGPU, shape (N, 3, H, W)
    frames: Optional[np.ndarray]  # (N, H, W, 3) BGR host copies for sinks that need pixels, else None
    itemsize: int = 4

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.tensor.shape())

    @property
    def ptr(self) -> int:
        return self.tensor.data_ptr()

    def to_host(self) -> np.ndarray:
        return np.asarray(self.tensor.as_cpu())

    def slice(self, start: int, stop: int) -> DeviceView:
        """Frames ``start:stop`` as a view into the same device memory."""
        return DeviceView(self.ptr, self.shape, self.itemsize).slice(start, stop)


class DaliGpuVideoDecoder:
    """A video file decoded on NVDEC (``fn.experimental.inputs.video``, device ``mixed``) and
    preprocessed on the GPU; each run yields one batch of up to ``batch_size`` frames.

    With ``decode_only`` the batches hold the decoded RGB frames instead (for benchmarks).
    ``src_height`` x ``src_width`` is the frame size as stored in the file; ``rotation``
    (counterclockwise degrees) and ``mirror``, as in :class:`~streamtrt.sources.base.SourceInfo`,
    turn the frames upright on the GPU, so tensors, kept frames and :attr:`geometry` are in
    displayed pixels (:attr:`height` x :attr:`width`). Build it for a probed file with
    :func:`open_gpu_video_decoder`.
    The encoded file is fed once; the operator demuxes and decodes it incrementally, so decoded
    frames never pile up on long videos. DALI runs ``prefetch`` batches ahead
    on its own threads: that is where decode of batch N+1 overlaps inference of batch N.
    """

    name = "dali-gpu"

    def __init__(
        self, path: str, spec: PreprocessSpec, batch_size: int, frame_count: int,
        src_height: int, src_width: int, device_id: int = 0, keep_frames: bool = False,
        prefetch: int = 2, threads: int = 4, decode_only: bool = False, rotation: int = 0,
        mirror: bool = False,
    ):
        self.spec = spec
        self.batch_size = batch_size
        self.frame_count = frame_count
        self.rotation, self.mirror = rotation % 360, bool(mirror)
        self.timestamps: Optional[list] = None  # set by whoever knows each frame's time (DALI gives none)
        self.width, self.height = displayed_size(src_width, src_height, self.rotation)
        self.geometry = spec.geometry(self.height, self.width)
        self.keep_frames = keep_frames
        dali, fn, types = _import_dali()
        geom = self.geometry
        pipe = _pipeline_class(dali)(
            batch_size=1, num_threads=threads, device_id=device_id, prefetch_queue_depth=prefetch,
        )
        with pipe:
            frames = fn.experimental.inputs.video(
                name="video", sequence_length=batch_size, device="mixed", last_sequence_policy="partial",
            )
            pipe.set_outputs(*sequence_graph(fn, types, frames, spec, geom, self.rotation, keep_frames, decode_only,
                                            self.mirror))
        try:
            pipe.build()
            with open(path, "rb") as f:
                encoded = np.frombuffer(f.read(), dtype=np.uint8)
            pipe.feed_input("video", [encoded])
        except (RuntimeError, MemoryError) as exc:
            raise (out_of_gpu_memory(exc, "DALI GPU decoder failed to start")
                   or BackendUnavailableError(f"DALI GPU decoder failed to start: {dali_error_line(exc)}")) from None
        self._pipe = pipe
        self._remaining = frame_count

    def __iter__(self):
        while self._remaining > 0:
            try:
                outs = self._pipe.run()
            except (RuntimeError, MemoryError) as exc:
                where = f"NVDEC decode failed after {self.frame_count - self._remaining} frames"
                raise (out_of_gpu_memory(exc, where) or DecodeError(f"{where}: {dali_error_line(exc)}")) from None
            sample = outs[0][0]  # the one (F, C, H, W) sequence of this batch-of-one
            frames = np.asarray(outs[1].as_cpu()[0]) if self.keep_frames else None
            self._remaining -= int(sample.shape()[0])
            yield DeviceBatch(tensor=sample, frames=frames, itemsize=self.spec.np_dtype.itemsize)

    def close(self) -> None:
        self._pipe = None


def open_gpu_video_decoder(path: str, info: SourceInfo, spec: PreprocessSpec, batch_size: int, frame_count: int,
                           **options: Any) -> DaliGpuVideoDecoder:
    """The NVDEC/DALI decoder of the video file ``path`` as ``info`` (from
    :func:`~streamtrt.sources.file.probe_video`) describes it: NVDEC gives frames as stored (the
    displayed size un-swapped for a quarter turn), turned on the GPU by ``info.rotation`` and
    ``info.mirror`` (0 and no mirror with ``orientation: ignore``). ``options``: the other
    arguments of :class:`DaliGpuVideoDecoder`. Raises :class:`SourceError` if the size is unknown."""
    if not info.width or not info.height:
        raise SourceError(f"{info.uri}: the video's frame size is unknown; the GPU decoder needs it")
    width, height = stored_size(info.width, info.height, info.rotation)
    return DaliGpuVideoDecoder(path, spec, batch_size, frame_count, height, width, rotation=info.rotation,
                               mirror=info.mirror, **options)
