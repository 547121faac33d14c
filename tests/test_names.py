"""Names a user types (classes, stream ids) are checked against the model and the configured streams."""

import pytest

from streamtrt.config import load_config
from streamtrt.errors import ConfigError
from streamtrt.names import check_names
from streamtrt.postprocess.classes import COCO_CLASSES
from streamtrt.sinks import sink_filter

BASE = {"sources": [{"uri": "a.mp4", "id": "cam1"}, {"uri": "b.mp4", "id": "cam2"}], "model": {"path": "m.onnx"},
        "tracker": {"enabled": True}}


def check(sinks=(), runtime_streams=False, warn=None, **sections):
    cfg = load_config({**BASE, **sections})
    filters = [(f"sinks.{i}", sink_filter(uri)) for i, uri in enumerate(sinks)]
    check_names(cfg, COCO_CLASSES, filters, runtime_streams, warn or (lambda m: None))


def test_valid_names_pass():
    check(["jsonl:a.jsonl?classes=person,car&streams=cam2", "b.jsonl"],
          analytics={"lines": [{"name": "l", "start": [0, 0], "end": [1, 1], "classes": ["person"]}]},
          postprocess={"classes": ["person", 2]})


@pytest.mark.parametrize("kwargs, message", [
    ({"analytics": {"zones": [{"name": "z", "points": [[0, 0], [1, 0], [1, 1]], "classes": ["bycicle"]}]}},
     "analytics.zones.0.classes: unknown class 'bycicle' (did you mean 'bicycle'?)"),
    ({"sinks": ["x.jsonl", "jsonl:y.jsonl?classes=trukc"]}, "sinks.1 (?classes=): unknown class 'trukc' (did you mean 'truck'?)"),
    ({"sinks": ["jsonl:y.jsonl?streams=cam3"]}, "sinks.0 (?streams=): unknown stream 'cam3' (did you mean 'cam2' or 'cam1'?)"),
    ({"postprocess": {"classes": ["car"]}, "sinks": ["jsonl:y.jsonl?classes=person"]},
     "sinks.0 (?classes=): class 'person' is dropped by postprocess.classes"),
    ({"postprocess": {"classes": ["prson"]}}, "postprocess.classes: unknown class 'prson' (did you mean 'person'"),
])
def test_wrong_names_name_the_key_and_the_nearest_names(kwargs, message):
    with pytest.raises(ConfigError) as err:
        check(**kwargs)
    assert message in str(err.value)


def test_a_stream_added_at_run_time_may_be_named_with_a_warning():
    warnings = []
    check(["jsonl:y.jsonl?streams=cam3"], runtime_streams=True, warn=warnings.append)
    assert len(warnings) == 1 and "cam3" in warnings[0] and "sinks.0" in warnings[0]
