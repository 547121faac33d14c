"""The versioned JSON schemas of what every sink writes: one frame record per frame and one
event record per analytics event. Bump the version on any incompatible change."""

from __future__ import annotations

FRAME_SCHEMA_ID = "streamtrt.frame/1"
EVENT_SCHEMA_ID = "streamtrt.event/1"

_DETECTION = {
    "type": "object",
    "required": ["bbox", "score", "class_id", "class_name"],
    "additionalProperties": False,
    "properties": {
        "bbox": {"type": "array", "items": {"type": "number"}, "minItems": 4, "maxItems": 4,
                 "description": "x1, y1, x2, y2 in source-frame pixels"},
        "score": {"type": "number", "minimum": 0, "maximum": 1},
        "class_id": {"type": "integer", "minimum": 0},
        "class_name": {"type": "string"},
        "tracker_id": {"type": ["integer", "null"], "minimum": 1,
                       "description": "present when tracking is on; null while the track is tentative"},
        "track_state": {"enum": ["confirmed", "tentative"],
                        "description": "present when tracking is on: tentative until tracker.min_hits matches"},
        "keypoints": {"type": "array", "items": {"type": "array", "items": {"type": "number"},
                                                 "minItems": 3, "maxItems": 3},
                      "description": "pose models: [x, y, visibility] per keypoint, source-frame pixels"},
        "mask": {"type": "object", "required": ["size", "counts"], "additionalProperties": False,
                 "properties": {"size": {"type": "array", "items": {"type": "integer"}, "minItems": 2, "maxItems": 2},
                                "counts": {"type": "array", "items": {"type": "integer", "minimum": 0}}},
                 "description": "segmentation models: COCO uncompressed RLE of the object's pixels in the "
                                "frame ([height, width]; run lengths in column-major order, zeros first)"},
    },
}

FRAME_SCHEMA = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "$id": FRAME_SCHEMA_ID,
    "title": "streamtrt frame detections",
    "type": "object",
    "required": ["schema", "stream_id", "frame_index", "timestamp", "width", "height", "detections"],
    "additionalProperties": False,
    "properties": {
        "schema": {"const": FRAME_SCHEMA_ID},
        "message_id": {"type": "string", "description": "unique per record: deduplicate at-least-once delivery"},
        "stream_id": {"type": "string"},
        "frame_index": {"type": "integer", "minimum": 0},
        "timestamp": {"type": ["number", "null"], "description": "seconds from the stream's first frame"},
        "width": {"type": "integer", "minimum": 1},
        "height": {"type": "integer", "minimum": 1},
        "detections": {"type": "array", "items": _DETECTION},
        "pts": {"type": ["integer", "null"],
                "description": "video sources: the frame's presentation timestamp as stored in the file, in "
                               "time_base units; null where the stream has none (a raw .h264)"},
        "time_base": {"type": ["string", "null"], "pattern": "^[0-9]+/[0-9]+$",
                      "description": "video sources: seconds per pts unit, e.g. \"1/90000\""},
        "source_file": {"type": "string", "description": "image sources: the image file, relative to the folder"},
    },
}

EVENT_SCHEMA = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "$id": EVENT_SCHEMA_ID,
    "title": "streamtrt analytics event",
    "type": "object",
    "required": ["schema", "event", "name", "stream_id", "frame_index", "timestamp", "tracker_id", "class_name"],
    "additionalProperties": False,
    "properties": {
        "schema": {"const": EVENT_SCHEMA_ID},
        "message_id": {"type": "string"},
        "event": {"enum": ["line_cross", "zone_enter", "zone_exit"]},
        "name": {"type": "string", "description": "the line's or zone's name"},
        "stream_id": {"type": "string"},
        "frame_index": {"type": "integer", "minimum": 0},
        "timestamp": {"type": ["number", "null"]},
        "tracker_id": {"type": "integer", "minimum": 1},
        "class_name": {"type": "string"},
        "direction": {"enum": ["in", "out"]},
        "dwell_s": {"type": "number", "minimum": 0},
    },
}
