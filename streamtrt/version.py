"""The streamtrt version, at the bottom layer so that any module may read it (matches pyproject.toml)."""

__version__ = "0.1.0"
