"""Several streams in one pipeline, on the CPU: per-stream completeness, identity with
single-stream runs, batching across streams, independence of slow and failing streams."""

from __future__ import annotations

import json
import threading
import time

import numpy as np
import pytest

from streamtrt import Pipeline
from streamtrt.errors import ConfigError, PipelineError
from streamtrt.runtime.mux import StreamMux
from streamtrt.runtime.messages import EOS
from tests.conftest import ROOT, SAMPLES, decode_frames, make_config, same_detections, write_video

DYNAMIC = SAMPLES / "nanodet-m-416-dynamic.onnx"


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    """Three clips of different lengths and sizes from the sample video."""
    d = tmp_path_factory.mktemp("clips")
    frames = decode_frames(SAMPLES / "vtest.mp4", 40)
    a = write_video(d / "a.mp4", frames[:12], "libx264")
    b = write_video(d / "b.mp4", frames[20:27], "libx264")
    small = [np.ascontiguousarray(f[::2, ::2]) for f in frames[30:40]]
    c = write_video(d / "c.mp4", small, "mpeg4")
    return {"a": (a, 12), "b": (b, 7), "c": (c, 10)}


def multi_config(clips, tmp_path, **runtime):
    cfg = make_config(clips["a"][0], tmp_path, runtime={"batch_size": 4, **runtime})
    del cfg["source"]
    cfg["sources"] = [{"uri": str(p), "id": k} for k, (p, _) in clips.items()]
    cfg["model"]["path"] = str(DYNAMIC)
    return cfg


def by_stream(results):
    out: dict[str, list] = {}
    for r in results:
        out.setdefault(r.stream_id, []).append(r)
    return out


def test_every_frame_of_every_stream_and_identical_to_single_stream_runs(clips, tmp_path):
    out = tmp_path / "multi.jsonl"
    cfg = multi_config(clips, tmp_path)
    cfg["sinks"] = [f"jsonl:{out}"]
    with Pipeline.from_config(cfg) as pipe:
        results = by_stream(list(pipe))
        summary = pipe.summary
    assert {k: len(v) for k, v in results.items()} == {k: n for k, (_, n) in clips.items()}
    for sid, rs in results.items():
        assert [r.frame_index for r in rs] == list(range(clips[sid][1]))  # in order, none lost
    # batches really mixed streams: fewer inference batches than frames
    assert summary.stages["infer"].count < summary.frames
    assert set(summary.streams) == {"a", "b", "c"}
    for sid, st in summary.streams.items():
        assert st["state"] == "ended" and st["frames"] == clips[sid][1]
        assert st["latency_ms"]["p99"] >= st["latency_ms"]["p50"] > 0
    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert len({r["message_id"] for r in records}) == sum(n for _, n in clips.values())

    for sid, (path, n) in clips.items():
        single = make_config(path, tmp_path)  # the fixed-batch model, one frame at a time
        with Pipeline.from_config(single) as pipe:
            alone = list(pipe)
        assert len(alone) == n
        for r_multi, r_alone in zip(results[sid], alone):
            assert (r_multi.width, r_multi.height) == (r_alone.width, r_alone.height)
            assert same_detections(r_multi.detections, r_alone.detections), (sid, r_alone.frame_index)


@pytest.mark.slow  # over 5 s on a busy 2-core machine: .ci/run's second command
def test_results_do_not_depend_on_batch_size_or_timeout(clips, tmp_path):
    runs = []
    for runtime in ({"batch_size": 1}, {"batch_size": 3, "batch_timeout_ms": 0}, {"batch_size": 16, "batch_timeout_ms": 200}):
        with Pipeline.from_config(multi_config(clips, tmp_path, **runtime)) as pipe:
            runs.append({(r.stream_id, r.frame_index): r.detections for r in pipe})
    assert runs[0].keys() == runs[1].keys() == runs[2].keys()
    for key in runs[0]:
        assert same_detections(runs[0][key], runs[1][key]) and same_detections(runs[0][key], runs[2][key])


def test_a_slow_stream_does_not_hold_back_the_others(clips, tmp_path):
    """Stream a is a camera as slow as it gets: its next frame comes only when the test lets it.
    It holds frame 1 back until b and c have run to their end, so they cannot wait for it; then
    each of its frames comes alone, after its previous result, and must go to inference after
    the 10 ms batch timeout instead of waiting for three more to fill a batch of 4 (which would
    never come: a deadlock, ended by the gate's time limit as a failure)."""
    cfg = multi_config(clips, tmp_path, batch_size=4, batch_timeout_ms=10)
    cfg["sources"][0]["pace"] = True  # like a camera: one frame per chunk, at the earliest at its time
    pipe = Pipeline.from_config(cfg)
    n = {k: count for k, (_, count) in clips.items()}
    allowed = [threading.Event() for _ in range(n["a"])]
    allowed[0].set()
    gated = pipe.streams["a"].source
    original = type(gated).__iter__

    def gate(self):
        for frame in original(self):
            if not allowed[frame.index].wait(120):
                raise RuntimeError(f"frame {frame.index} of stream a was never let through")
            yield frame

    gated.__class__ = type("Gated", (type(gated),), {"__iter__": gate})
    order = []
    done = {"a": 0, "b": 0, "c": 0}
    with pipe:
        for r in pipe:
            order.append((r.stream_id, r.frame_index))
            done[r.stream_id] += 1
            if done["b"] == n["b"] and done["c"] == n["c"] and done["a"] < n["a"]:
                allowed[done["a"]].set()  # one frame at a time, each after the result of the last
    assert done == n
    for sid in n:
        assert [i for s, i in order if s == sid] == list(range(n[sid]))
    assert order.index(("a", 1)) == n["b"] + n["c"] + 1  # b and c all ended before a's frame 1
    # a's frames 1..11 went one per batch, after the 5 or more batches of b, c and a's frame 0
    assert pipe.summary.stages["infer"].count >= 11 + 5
    assert pipe.summary.streams["a"]["latency_ms"]["p99"] > 0


def test_a_failing_stream_ends_alone_and_is_reported(clips, tmp_path):
    out = tmp_path / "d.jsonl"
    cfg = multi_config(clips, tmp_path)
    cfg["sinks"] = [f"jsonl:{out}"]
    pipe = Pipeline.from_config(cfg)
    broken = pipe.streams["b"].source
    original = type(broken).__iter__

    def failing(self):
        for frame in original(self):
            if frame.index == 3:
                raise RuntimeError("camera unplugged")
            yield frame

    broken.__class__ = type("Failing", (type(broken),), {"__iter__": failing})
    seen = []
    with pytest.raises(PipelineError, match=r"1 of 3 streams failed \(2 completed\): stream b .*camera unplugged"):
        for r in pipe:
            seen.append((r.stream_id, r.frame_index))
    assert sum(1 for s, _ in seen if s == "a") == 12 and sum(1 for s, _ in seen if s == "c") == 10
    assert len(out.read_text().splitlines()) == len(seen)  # everything delivered also reached the sink
    assert pipe.summary.streams["b"]["state"] == "failed"
    assert not [t for t in threading.enumerate() if t.name.startswith("streamtrt-")]


def test_streams_added_and_removed_while_running(clips, tmp_path):
    paced = write_video(tmp_path / "paced.mp4", decode_frames(SAMPLES / "vtest.mp4", 40), "libx264")  # 4 s
    cfg = multi_config(clips, tmp_path, batch_size=2)
    cfg["sources"] = [{"uri": str(paced), "id": "a", "pace": True}]
    pipe = Pipeline.from_config(cfg, keep_alive=True)
    seen: dict[str, list[int]] = {}
    errors: list[BaseException] = []

    def wait(condition):
        deadline = time.monotonic() + 120
        while not condition():
            assert time.monotonic() < deadline, "timed out"
            time.sleep(0.02)

    def control():
        try:
            wait(lambda: len(seen.get("a", [])) >= 2)
            pipe.add_source({"uri": str(clips["b"][0]), "id": "late"})
            with pytest.raises(ConfigError, match="already in use"):
                pipe.add_source({"uri": str(clips["c"][0]), "id": "a"})
            pipe.remove_source("a")  # while it runs: at most the frames in flight follow
            wait(lambda: pipe.streams["late"].state == "ended")
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)
        finally:
            pipe.stop()

    t = threading.Thread(target=control)
    t.start()
    for r in pipe:
        seen.setdefault(r.stream_id, []).append(r.frame_index)
    t.join()
    assert not errors
    assert seen["late"] == list(range(7))
    # removed after its second result: only the frames already in flight followed, not all 40
    assert 2 <= len(seen["a"]) < 40 and seen["a"] == list(range(len(seen["a"])))
    assert pipe.summary.streams["a"]["state"] == "removed"


def test_config_errors_for_several_sources(clips, tmp_path):
    cfg = multi_config(clips, tmp_path)
    cfg["source"] = str(clips["a"][0])
    with pytest.raises(ConfigError, match="either source or sources"):
        Pipeline.from_config(cfg)
    cfg = multi_config(clips, tmp_path)
    cfg["sources"][1]["id"] = "a"
    with pytest.raises(ConfigError, match="duplicate stream id 'a'"):
        Pipeline.from_config(cfg)
    cfg = multi_config(clips, tmp_path)
    cfg["sources"][0]["bogus"] = 1
    with pytest.raises(ConfigError, match=r"unknown key 'sources\.0\.bogus'"):
        Pipeline.from_config(cfg)
    cfg = multi_config(clips, tmp_path)
    cfg["sinks"] = [f"video:{tmp_path / 'v.mp4'}"]
    with pytest.raises(ConfigError, match=r"add \?streams=ID"):
        Pipeline.from_config(cfg)


def test_video_sink_shows_the_chosen_stream(clips, tmp_path):
    import av

    cfg = multi_config(clips, tmp_path)
    cfg["sinks"] = [f"video:{tmp_path / 'b.mp4'}?streams=b"]
    with Pipeline.from_config(cfg) as pipe:
        list(pipe)
    with av.open(str(tmp_path / "b.mp4")) as c:
        assert sum(1 for _ in c.decode(video=0)) == 7


def test_sample_multi_stream_config_is_valid():
    from streamtrt.config import load_config

    cfg = load_config(ROOT / "configs" / "multi-stream.yaml")
    assert [s.id for s in cfg.streams()] == ["cam1", "cam2", "cam3"]
    assert cfg.model.path.is_file()


def test_mux_round_robin_blocking_and_dropping():
    mux = StreamMux()
    a = mux.add("a", 2)
    b = mux.add("b", 1, drop_oldest=True, on_drop=lambda item: dropped.append(item))
    dropped: list = []
    a.put(1)
    a.put(2)
    b.put("x")
    b.put("y")  # full: the stale "x" goes
    assert dropped == ["x"]
    import queue as q

    with pytest.raises(q.Full):
        a.put(3, timeout=0.05)  # a file lane blocks instead
    got = [mux.get(0.1) for _ in range(3)]
    assert got == [("a", 1), ("b", "y"), ("a", 2)]
    a.put(EOS)
    assert mux.get(0.1) == ("a", EOS) and len(mux) == 1
    assert mux.get(0.05) is None
