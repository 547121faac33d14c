"""A folder or glob of still images, decoded with OpenCV, in sorted order."""

from __future__ import annotations

import glob
import os
from pathlib import Path
from typing import Iterator

import cv2

from ..errors import SourceError
from .base import Frame, FrameSource, SourceInfo, SourceStats
from .uri import IMAGE_SUFFIXES


def list_images(location: str, display: str) -> list[Path]:
    """The image files a folder, glob or single path names, sorted by name."""
    p = Path(location)
    if glob.has_magic(location):
        files = [Path(f) for f in glob.glob(location, recursive=True)]
    elif p.is_dir():
        files = [f for f in p.iterdir()]
    elif p.exists():
        files = [p]
    else:
        raise SourceError(f"source not found: {display}")
    files = sorted(f for f in files if f.is_file() and f.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise SourceError(f"{display}: no images found (looked for {', '.join(sorted(IMAGE_SUFFIXES))})")
    return files


class ImageFolderSource(FrameSource):
    """Yields each image as one frame; unreadable files are counted and skipped.

    Images have no time: ``timestamp`` is ``None``.
    """

    def __init__(self, location: str, display: str, stream_id: str = "0"):
        self.files = list_images(location, display)
        first = None
        for f in self.files[:1]:
            first = cv2.imread(str(f), cv2.IMREAD_COLOR)
        self.info = SourceInfo(
            stream_id=stream_id,
            uri=display,
            width=first.shape[1] if first is not None else None,
            height=first.shape[0] if first is not None else None,
            fps=None,
            frame_count=len(self.files),
            codec="image",
        )
        self.stats = SourceStats()

    def __iter__(self) -> Iterator[Frame]:
        index = 0
        for f in self.files:
            image = cv2.imread(str(f), cv2.IMREAD_COLOR) if os.access(f, os.R_OK) else None
            if image is None:
                self.stats.bad_frames += 1
                if len(self.stats.errors) < 5:
                    self.stats.errors.append(f"cannot decode image {f.name}")
                continue
            self.stats.decoded += 1
            yield Frame(image=image, index=index, timestamp=None)
            index += 1
