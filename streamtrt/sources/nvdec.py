"""NVDEC decode of demuxed packets (PyNvVideoCodec), for live sources.

FFmpeg (PyAV) still connects, demuxes, times out and gates on keyframes; only the decode moves
to the GPU. Each decoded frame is copied out of the decoder's surface into a CuPy array
(H, W, 3) uint8 in BGR order, the same layout as a CPU-decoded frame, so one preprocessor
serves both. Codecs NVDEC does not take (MJPEG, raw V4L2 formats) stay on the CPU.
"""

from __future__ import annotations

import importlib.util
from typing import Any, Optional

from ..errors import BackendUnavailableError
from .orientation import orient_array

# FFmpeg codec name -> PyNvVideoCodec cudaVideoCodec member
_CODECS = {"h264": "H264", "hevc": "HEVC", "av1": "AV1", "vp9": "VP9", "vp8": "VP8",
           "mpeg4": "MPEG4", "mpeg2video": "MPEG2", "mpeg1video": "MPEG1"}
_ANNEXB_FILTERS = {"h264": "h264_mp4toannexb", "hevc": "hevc_mp4toannexb"}


def nvdec_unavailable_reason() -> Optional[str]:
    """Why live NVDEC decode cannot run here (``None`` if it can)."""
    for module, pip in (("PyNvVideoCodec", "pynvvideocodec"), ("cupy", "cupy-cuda12x or cupy-cuda13x")):
        if importlib.util.find_spec(module) is None:
            return f"{module} is not installed (pip install {pip})"
    return None


def nvdec_codec(codec_name: str) -> Optional[str]:
    """The NVDEC codec for an FFmpeg codec name, or ``None`` if NVDEC cannot decode it."""
    return _CODECS.get(codec_name)


def needs_annexb(codec_name: str, extradata: Optional[bytes]) -> bool:
    """H.264/HEVC from MP4-style containers carry length-prefixed NAL units (extradata starting
    with version byte 1); NVDEC wants Annex B start codes."""
    return codec_name in _ANNEXB_FILTERS and bool(extradata) and extradata[0] == 1


class NvdecDecoder:
    """One connection's NVDEC decoder: PyAV packets in, BGR CuPy frames out, shown as players show
    them on the GPU: turned ``rotation`` degrees counterclockwise, then mirrored left-right if
    ``mirror`` (the display matrix, as :class:`~streamtrt.sources.base.SourceInfo` and
    :func:`~streamtrt.sources.orientation.orient` have it)."""

    def __init__(self, stream: Any, device_id: int = 0, rotation: int = 0, mirror: bool = False):
        reason = nvdec_unavailable_reason()
        if reason:
            raise BackendUnavailableError(f"NVDEC live decode: {reason}")
        import cupy
        import PyNvVideoCodec as nvc

        ctx = stream.codec_context
        member = nvdec_codec(ctx.name)
        if member is None:
            raise BackendUnavailableError(f"NVDEC cannot decode {ctx.name}")
        self._nvc, self._cupy = nvc, cupy
        self.device_id = device_id
        self.rotation, self.mirror = rotation % 360, bool(mirror)
        extradata = bytes(ctx.extradata or b"")
        self._bsf = None
        self._prefix = b""
        if needs_annexb(ctx.name, extradata):
            from av.bitstream import BitStreamFilterContext

            self._bsf = BitStreamFilterContext(_ANNEXB_FILTERS[ctx.name], stream)
        elif extradata[:3] == b"\x00\x00\x01" or extradata[:4] == b"\x00\x00\x00\x01":
            self._prefix = extradata  # parameter sets from the SDP: before the first picture
        # Without B-frames the decoder may hand each picture out as soon as it is decoded.
        self.low_latency = not getattr(ctx, "has_b_frames", 0)
        latency = nvc.DisplayDecodeLatencyType.LOW if self.low_latency else nvc.DisplayDecodeLatencyType.NATIVE
        with cupy.cuda.Device(device_id):
            # The device's primary context (the one CuPy, DALI and ONNX Runtime use): left to
            # itself the decoder makes a context of its own, whose memory the others cannot read.
            cupy.cuda.runtime.free(0)
            context = cupy.cuda.driver.ctxGetCurrent()
            self._stream = cupy.cuda.Stream(non_blocking=True)
            self._decoder = nvc.CreateDecoder(gpuid=device_id, codec=getattr(nvc.cudaVideoCodec, member),
                                              cudacontext=context, cudastream=self._stream.ptr,
                                              usedevicememory=True, outputColorType=nvc.OutputColorType.RGB,
                                              latency=latency)

    def decode(self, packet: Any) -> list:
        """Frames completed by ``packet`` (a PyAV packet; ``None`` flushes at end of stream)."""
        if packet is None:
            return self._flush()
        packets = self._bsf.filter(packet) if self._bsf is not None else [packet]
        out = []
        for p in packets:
            data = bytes(p)
            if self._prefix:
                data, self._prefix = self._prefix + data, b""
            out += self._submit(data, p.pts)
        return out

    def _submit(self, data: bytes, pts: Optional[int]) -> list:
        import numpy as np

        nvc, cupy = self._nvc, self._cupy
        buf = np.frombuffer(data or b"\0", np.uint8)  # the decoder's parser copies it during the call
        pkt = nvc.PacketData()
        pkt.bsl_data = buf.ctypes.data
        pkt.bsl = len(data)
        if pts is not None:
            pkt.pts = int(pts)
        if self.low_latency and data:
            pkt.decode_flag = nvc.VideoPacketFlag.ENDOFPICTURE
        with cupy.cuda.Device(self.device_id), self._stream:
            frames = self._decoder.Decode(pkt)
            # RGB surface -> an owned, upright BGR copy (the decoder reuses its surfaces), on the decoder's stream
            out = [cupy.ascontiguousarray(orient_array(cupy.from_dlpack(f)[..., ::-1], self.rotation, self.mirror,
                                                       cupy)) for f in frames]
            if out:
                self._stream.synchronize()
        return out

    def _flush(self) -> list:
        frames = []
        if self._bsf is not None:
            for p in self._bsf.filter(None):
                frames += self._submit(bytes(p), p.pts)
        return frames + self._submit(b"", None)

    def close(self) -> None:
        self._decoder = None


def to_host_bgr(image: Any):
    """A frame as a host numpy array (CPU-decoded frames are returned as they are)."""
    import numpy as np

    if isinstance(image, np.ndarray):
        return image
    return image.get()
