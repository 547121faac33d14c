"""The sink registry: every built-in kind, how URIs pick a kind, python: sinks and the Registry itself."""

import pytest

from streamtrt.errors import ConfigError, SinkError
from streamtrt.registry import Registry
from streamtrt.sinks import SINKS, JsonlSink, Sink, SinkKind, open_sink, register_sink_kind, sink_usage
from streamtrt.sinks.filters import FilteredSink
from streamtrt.sinks.registry import SINK_SCHEMES, parse_sink_uri


def test_every_builtin_kind_is_registered():
    assert SINKS.names() == ["jsonl", "csv", "video", "summary", "mqtt", "webhook", "python"]
    assert {s: SINK_SCHEMES.lookup(s).name for s in SINK_SCHEMES.names()} == {
        "mqtt": "mqtt", "mqtts": "mqtt", "http": "webhook", "https": "webhook"}
    usage = sink_usage()
    for text in ("jsonl:PATH", "csv:PATH", "video:PATH", "summary:PATH", "mqtt://", "http(s)://", "python:MODULE:CLASS"):
        assert text in usage


@pytest.mark.parametrize("uri, kind, target", [
    ("out.csv", "csv", "out.csv"), ("jsonl:-", "jsonl", "-"), ("-", "jsonl", "-"), ("C:/out.jsonl", "jsonl", "C:/out.jsonl"),
    ("video:a.mkv?streams=0", "video", "a.mkv"), ("mqtts://u:p@h/t?ca=x.pem&outbox=o.db", "mqtt", "mqtts://u:p@h/t?ca=x.pem"),
    ("https://h/x?token=1&timeout=3", "webhook", "https://h/x?token=1"), ("python:m.n:K?a=1", "python", "m.n:K"),
])
def test_a_uri_picks_its_kind_target_and_options(uri, kind, target):
    parsed = parse_sink_uri(uri)
    assert (parsed.kind.name, parsed.spec.target) == (kind, target)
    assert "p@" not in parsed.spec.display


def test_options_a_kind_does_not_take_are_refused():
    with pytest.raises(SinkError, match=r"unknown option\(s\) timeout"):
        open_sink("out.jsonl?timeout=3")


def test_python_sink_gets_its_options_filters_and_display(tmp_path, monkeypatch):
    (tmp_path / "probe_sinks.py").write_text(
        "from streamtrt.sinks.base import Sink\n\n"
        "class Probe(Sink):\n"
        "    def __init__(self, tag='x'):\n"
        "        self.tag = tag\n\n"
        "    def write(self, result):\n"
        "        pass\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    sink = open_sink("python:probe_sinks:Probe?tag=cam&streams=a", key_path="sinks.0")
    assert isinstance(sink, FilteredSink) and sink.inner.tag == "cam" and sink.rule.streams == {"a"}
    assert sink.display == "python:probe_sinks:Probe?tag=cam&streams=a"
    with pytest.raises(ConfigError, match=r"^sinks\.0: probe_sinks:Probe: .*unexpected keyword argument 'colour'"):
        open_sink("python:probe_sinks:Probe?colour=red", key_path="sinks.0")


def test_a_new_kind_is_one_registration(tmp_path):
    register_sink_kind(SinkKind("ndjson-test", lambda spec: JsonlSink(spec.target), usage="ndjson-test:PATH"))
    try:
        sink = open_sink(f"ndjson-test:{tmp_path / 'x'}")
        assert isinstance(sink, JsonlSink) and isinstance(sink, Sink)
        assert "ndjson-test:PATH" in sink_usage()
    finally:
        SINKS._entries.pop("ndjson-test")


def test_registry_lookup_says_what_is_known():
    reg = Registry("colour")
    reg.register("red", "rouge")(1)
    reg.add("green", 2)
    assert reg.names() == ["red", "rouge", "green"] and "red" in reg and reg.get("blue") is None
    with pytest.raises(ConfigError, match=r"^paint\.colour: unknown colour 'gren'; did you mean 'green'\? "
                                          r"\(known: red, rouge, green\)$"):
        reg.lookup("gren", "paint.colour")
    with pytest.raises(ValueError, match="registered twice"):
        reg.add("red", 3)
