import typing
"""The README is checked against the code: its commands, its config table, its API example."""

import re

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
