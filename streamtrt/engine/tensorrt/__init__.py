"""TensorRT: ONNX parser -> builder -> cached engine -> double-buffered runner."""

from .builder import BuildOptions, ProfileSpec, builder_flags, build_serialized, compute_profiles
from .cache import EngineCache, EngineKey, default_cache_dir, hash_model
from .engines import PreparedEngine, prepare_engine
from .module import load_tensorrt, module_label, strongly_typed_only

__all__ = [
    "BuildOptions", "EngineCache", "EngineKey", "PreparedEngine", "ProfileSpec", "build_serialized",
    "builder_flags", "compute_profiles", "default_cache_dir", "hash_model", "load_tensorrt", "module_label",
    "prepare_engine", "strongly_typed_only",
]
