import typing
"""The README is checked against the code: its commands, its config table, its API example."""

import json
import re
import sys

import pytest

from pydantic import BaseModel

from streamtrt.config import Config
from tests.conftest import ROOT

README = (ROOT / "README.md").read_text()


def schema_keys(model: type[BaseModel], prefix: str = "") -> set[str]:
    keys = set()
    for name, field in model.model_fields.items():
        ann = field.annotation
        item = typing.get_args(ann)[0] if typing.get_origin(ann) is list else None
        if isinstance(ann, type) and issubclass(ann, BaseModel):
            keys |= schema_keys(ann, f"{prefix}{name}.")
        elif not prefix and isinstance(item, type) and issubclass(item, BaseModel):  # `sources`: each item's keys
            keys.add(prefix + name)
            keys |= schema_keys(item, f"{prefix}{name}.")
        else:
            keys.add(prefix + name)
    return keys


def test_readme_opens_with_the_two_commands():
    first_block = README.split("```bash", 1)[1].split("```", 1)[0]
    lines = [line for line in first_block.splitlines() if line and not line.startswith("#")]
    # Debian 12's system Python refuses `pip install` outside a virtual environment (PEP 668).
    assert lines == ["python3 -m venv .venv && . .venv/bin/activate && pip install . && streamtrt run configs/sample.yaml",
                     "pip install '.[test]' && pytest -ra"]
    assert "/.venv/" in (ROOT / ".gitignore").read_text().split()


def test_default_test_run_leaves_the_slow_cases_to_ci():
    """`pytest -ra` deselects the `slow` mark; .ci/run runs those as a second command."""
    ini = (ROOT / "pyproject.toml").read_text().split("[tool.pytest.ini_options]", 1)[1].split("\n[", 1)[0]
    assert re.search(r"""^addopts = "-m 'not slow'"$""", ini, flags=re.M)
    assert "pytest -ra -m slow" in (ROOT / ".ci" / "run").read_text()


def test_ci_runs_the_readme_test_command():
    assert "pip install '.[test]' && pytest -ra" in (ROOT / ".ci" / "run").read_text()


def test_config_table_documents_every_key_and_no_other():
    section = README.split("## Configuration", 1)[1].split("\n## ", 1)[0]
    documented = set(re.findall(r"^\| `([a-z_.]+)` \|", section, flags=re.M))
    assert documented == schema_keys(Config)


def test_python_api_example_runs(capsys, monkeypatch):
    code = README.split("## Python API", 1)[1].split("```python", 1)[1].split("```", 1)[0]
    monkeypatch.chdir(ROOT)
    exec(compile(code, "README.md", "exec"), {})
    out = capsys.readouterr().out
    assert "'runner': 'onnxruntime-" in out and "50 frames" in out


def test_record_examples_follow_the_schemas():
    import json

    import jsonschema

    from streamtrt.sinks.schema import EVENT_SCHEMA, FRAME_SCHEMA

    blocks = [b.split("```", 1)[0] for b in README.split("```json")[1:]]
    records = [json.loads(b) for b in blocks]
    assert {r["schema"] for r in records} == {FRAME_SCHEMA["$id"], EVENT_SCHEMA["$id"]}
    for r in records:
        jsonschema.validate(r, FRAME_SCHEMA if r["schema"] == FRAME_SCHEMA["$id"] else EVENT_SCHEMA)


def _extending_blocks(lang: str) -> list[str]:
    section = README.split("## Extending streamtrt", 1)[1].split("\n## ", 1)[0]
    return [b.split("```", 1)[0] for b in section.split(f"```{lang}\n")[1:]]


def test_extending_custom_sink_example_runs_from_the_config(tmp_path, monkeypatch):
    """The README's custom sink, verbatim, loaded by module path from a config on the sample clip:
    it receives every frame, in order, with the pipeline's own detections."""
    import yaml

    from streamtrt import Pipeline

    (tmp_path / "my_sinks.py").write_text(_extending_blocks("python")[0])
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.chdir(tmp_path)
    (sink_uri,) = yaml.safe_load(_extending_blocks("yaml")[0])["sinks"]
    assert sink_uri.startswith("python:my_sinks:")
    frames = 12
    expected = []
    with Pipeline.from_config(str(ROOT / "configs" / "sample.yaml"),
                              overrides=[f"runtime.max_frames={frames}", f"sinks={json.dumps([sink_uri])}"]) as pipe:
        for result in pipe:
            d = result.detections
            expected.append(f"{result.stream_id} {result.frame_index} "
                            f"{sum(n == 'person' and s >= 0.5 for n, s in zip(d.class_name, d.confidence))}")
    written = (tmp_path / "people.txt").read_text().splitlines()
    assert written == expected
    assert [line.split()[1] for line in written] == [str(i) for i in range(frames)]
    assert any(int(line.split()[2]) > 0 for line in written)  # the clip has people in it


def test_extending_custom_sink_errors_name_the_key_path(tmp_path, monkeypatch):
    from streamtrt.errors import ConfigError
    from streamtrt.sinks import open_sink

    (tmp_path / "not_sinks.py").write_text("class Thing:\n    pass\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    for uri, message in [("python:no_such_module_xyz:Sink", r"sinks\.1: cannot import module 'no_such_module_xyz'"),
                         ("python:not_sinks:Missing", r"sinks\.1: module 'not_sinks' has no attribute 'Missing'"),
                         ("python:not_sinks:Thing", r"sinks\.1: not_sinks:Thing is not a subclass of .*Sink"),
                         ("python:not_sinks", r"sinks\.1: 'not_sinks' is not 'module.path:ClassName'")]:
        with pytest.raises(ConfigError, match=message):
            open_sink(uri, key_path="sinks.1")
    assert "not_sinks" in sys.modules and "no_such_module_xyz" not in sys.modules
