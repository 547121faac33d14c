"""Class names: the COCO list, a list from the config, or a text file."""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Sequence, Union

from ..errors import ConfigError

COCO_CLASSES = (
    "person", "bicycle", "car", "motorcycle", "airplane", "bus", "train", "truck", "boat", "traffic light",
    "fire hydrant", "stop sign", "parking meter", "bench", "bird", "cat", "dog", "horse", "sheep", "cow",
    "elephant", "bear", "zebra", "giraffe", "backpack", "umbrella", "handbag", "tie", "suitcase", "frisbee",
    "skis", "snowboard", "sports ball", "kite", "baseball bat", "baseball glove", "skateboard", "surfboard",
    "tennis racket", "bottle", "wine glass", "cup", "fork", "knife", "spoon", "bowl", "banana", "apple",
    "sandwich", "orange", "broccoli", "carrot", "hot dog", "pizza", "donut", "cake", "chair", "couch",
    "potted plant", "bed", "dining table", "toilet", "tv", "laptop", "mouse", "remote", "keyboard",
    "cell phone", "microwave", "oven", "toaster", "sink", "refrigerator", "book", "clock", "vase",
    "scissors", "teddy bear", "hair drier", "toothbrush",
)


def load_class_names(spec: Union[str, list[str], Path]) -> list[str]:
    """Resolve ``model.classes`` into a list of names."""
    if isinstance(spec, list):
        if not spec:
            raise ConfigError("model.classes: empty list")
        return [str(s) for s in spec]
    if spec == "coco":
        return list(COCO_CLASSES)
    path = Path(spec)
    try:
        names = [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    except OSError as exc:
        raise ConfigError(f"model.classes: cannot read {path}: {exc.strerror or exc}") from None
    if not names:
        raise ConfigError(f"model.classes: {path} lists no class names")
    return names


def resolve_class_filter(items: list[Union[int, str]], names: list[str]) -> set[int]:
    """Turn ``postprocess.classes`` (ids or names) into class ids, rejecting unknown names."""
    ids = set()
    lookup = {n: i for i, n in enumerate(names)}
    for item in items:
        if isinstance(item, int):
            if not 0 <= item < len(names):
                raise ConfigError(f"postprocess.classes: class id {item} is outside 0..{len(names) - 1}")
            ids.add(item)
        elif item in lookup:
            ids.add(lookup[item])
        else:
            raise unknown_name("postprocess.classes", "class", str(item), names, "the model's classes are")
    return ids


def unknown_name(key: str, kind: str, name: str, valid: Sequence[str], what: str) -> ConfigError:
    """The error for a name that is not one of ``valid``: key path, the name, the nearest valid names."""
    close = difflib.get_close_matches(name, list(valid), n=3, cutoff=0.6)
    hint = f" (did you mean {' or '.join(repr(c) for c in close)}?)" if close else ""
    shown = ", ".join(repr(v) for v in list(valid)[:8]) + (f", ... ({len(valid)} in all)" if len(valid) > 8 else "")
    return ConfigError(f"{key}: unknown {kind} {name!r}{hint}; {what}: {shown}")
