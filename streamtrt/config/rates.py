"""The frame rates assumed where a source states none: one value, and one documented exception.

:data:`FALLBACK_FPS` is used wherever a stream's rate is unknown (an image folder without ``fps``, a
raw stream or live input whose container states no rate) and something must still be timed: the
tracker's track buffer (``track_buffer_s`` x rate frames), real-time pacing of a replayed file,
arrival times of frames without timestamps, the stream benchmark's real-time target, the soak
loop, and the analytics clock (``frame / rate`` for frames without timestamps, so dwell times and
the tracker agree on how long a frame lasts). 30 fps is the most common camera and video rate.

The one deliberate exception is :data:`IMAGES_VIDEO_FPS`: the annotated video of a sequence without a
rate shows each image for 1/10 s, slow enough to follow detections image by image (README, "Sinks").
It only sets the output video's time line and changes nothing that is counted or timed.
"""

FALLBACK_FPS = 30.0
"""Frames per second assumed for a stream that states no rate (see the module docstring)."""

IMAGES_VIDEO_FPS = 10
"""Frames per second of the annotated video written for a stream that states no rate."""
