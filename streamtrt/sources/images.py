"""A folder or glob of still images, decoded with OpenCV, in natural order.

A path that exists is used as written (brackets, spaces and other glob characters included);
only a path that does not exist is read as a glob pattern. Files are ordered the way people number
them (``natsort``): ``2.jpg`` before ``10.jpg``, ``cam1_frame9`` before ``cam1_frame10``, zero-padded
and unpadded numbers by value. EXIF orientation is applied as viewers apply it (OpenCV's default),
unless ``orientation`` is ``ignore``.
"""

from __future__ import annotations

import glob
import os
from pathlib import Path
from typing import Iterator, Optional

import cv2
from natsort import natsorted, ns

from ..config import LiveConfig, SourceConfig
from ..errors import SourceError
from .base import Frame, FrameSource, SourceInfo, SourceStats
from .registry import SourceKind, register_source_kind
from .uri import IMAGE_SUFFIXES, SourceURI


def _glob_root(pattern: str) -> Path:
    """The folder a glob pattern starts from: its longest leading part without wildcards."""
    parts = Path(pattern).parts
    fixed = []
    for part in parts[:-1]:
        if glob.has_magic(part):
            break
        fixed.append(part)
    return Path(*fixed) if fixed else Path(".")


def list_images(location: str, display: str) -> tuple[list[Path], Path]:
    """The image files a folder, single path or glob names, in natural order, and the folder
    their names are relative to. Raises :class:`SourceError` when there are none."""
    p = Path(location).expanduser()
    if p.is_dir():
        files, root = list(p.iterdir()), p
    elif p.exists():
        files, root = [p], p.parent
    elif glob.has_magic(location):
        files, root = [Path(f) for f in glob.glob(location, recursive=True)], _glob_root(location)
        if not files:
            raise SourceError(f"source not found: {display} (no file or folder of that name, and nothing "
                              "matches it as a pattern)")
    else:
        raise SourceError(f"source not found: {display}")
    files = [f for f in files if f.is_file() and f.suffix.lower() in IMAGE_SUFFIXES]
    files = natsorted(files, key=lambda f: str(f), alg=ns.PATH)
    if not files:
        raise SourceError(f"{display}: no images found (looked for {', '.join(sorted(IMAGE_SUFFIXES))})")
    return files, root


def _relative(f: Path, root: Path) -> str:
    try:
        return f.relative_to(root).as_posix()
    except ValueError:
        return f.name


class ImageFolderSource(FrameSource):
    """Yields each image as one frame; unreadable files are counted and skipped.

    Each frame names its file (``source_file``, relative to the folder). Images have no time:
    ``timestamp`` is ``None`` unless ``fps`` gives the sequence a rate (then ``index / fps``,
    counting every file, so a skipped unreadable file leaves its gap).
    """

    kind = "images"

    def __init__(self, location: str, display: str, stream_id: str = "0", fps: Optional[float] = None,
                 orientation: str = "auto"):
        self.files, self.root = list_images(location, display)
        self.fps = fps
        self._flags = cv2.IMREAD_COLOR | (cv2.IMREAD_IGNORE_ORIENTATION if orientation == "ignore" else 0)
        first = None
        for f in self.files[:1]:
            first = cv2.imread(str(f), self._flags)
        self.info = SourceInfo(
            stream_id=stream_id,
            uri=display,
            width=first.shape[1] if first is not None else None,
            height=first.shape[0] if first is not None else None,
            fps=fps,
            frame_count=len(self.files),
            codec="image",
        )
        self.stats = SourceStats()

    def __iter__(self) -> Iterator[Frame]:
        index = 0
        for position, f in enumerate(self.files):
            image = cv2.imread(str(f), self._flags) if os.access(f, os.R_OK) else None
            if image is None:
                self.stats.bad_frames += 1
                self.stats.decode_errors += 1
                if len(self.stats.errors) < 5:
                    self.stats.errors.append(f"cannot decode image {f.name}")
                continue
            self.stats.decoded += 1
            ts = position / self.fps if self.fps else None
            yield Frame(image=image, index=index, timestamp=ts, source_file=_relative(f, self.root))
            index += 1


def open_image_folder(uri: SourceURI, stream_id: str, *, threads: Optional[int] = None, options: SourceConfig,
                      live: Optional[LiveConfig] = None, nvdec_device: Optional[int] = None) -> ImageFolderSource:
    """The :data:`~.registry.SourceKind.open` of kind ``images`` (a folder or a glob pattern)."""
    return ImageFolderSource(uri.location, uri.display, stream_id, fps=options.fps, orientation=options.orientation)


register_source_kind(SourceKind("images", open_image_folder, options=frozenset({"pace", "fps", "orientation"}),
                                description="an image folder or glob"))
