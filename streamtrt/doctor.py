"""``streamtrt doctor``: what this machine offers and what streamtrt will pick."""

from __future__ import annotations

import ctypes
import dataclasses
import platform
import sys
from typing import Any

from .config import RuntimeConfig
from .errors import StreamTRTError
from .hardware import mps_running
from .runtime.plan import make_plan
from .system import is_jetson, module_version, onnxruntime_providers, package_version, probe_cuda, tensorrt_module


def _lib_present(name: str) -> bool:
    try:
        ctypes.CDLL(name)
    except OSError:
        return False
    return True


def _dla_cores(trt_name: str | None) -> str:
    if not is_jetson():
        return "none (not a Jetson)"
    if trt_name is None:
        return "unknown (TensorRT not installed)"
    try:
        trt = __import__(trt_name)
        builder = trt.Builder(trt.Logger(trt.Logger.ERROR))
        return str(builder.num_DLA_cores)
    except Exception as exc:  # a broken TensorRT install must not break the report
        return f"unknown ({exc})"


def collect() -> dict[str, Any]:
    """The doctor report as a dict."""
    cuda = probe_cuda()
    trt_name = tensorrt_module()
    report: dict[str, Any] = {
        "python": sys.version.split()[0],
        "platform": f"{platform.system()} {platform.machine()}" + (" (Jetson)" if is_jetson() else ""),
        "cuda_driver": cuda.driver_version or f"none ({cuda.error})",
        "gpus": [
            {"index": g.index, "name": g.name, "compute_capability": f"{g.compute_capability[0]}.{g.compute_capability[1]}",
             "sm_count": g.sm_count, "memory_mb": g.memory_mb}
            for g in cuda.gpus
        ],
        "nvdec": "available" if cuda.available and _lib_present("libnvcuvid.so.1") else "not available",
        "cuda_mps": ("running" if mps_running() else "not running") if cuda.gpus else "not applicable (no GPU)",
        "dla_cores": _dla_cores(trt_name),
        "dali": module_version("nvidia.dali") or "not installed",
        "onnxruntime": module_version("onnxruntime") or "not installed",
        "onnxruntime_providers": onnxruntime_providers(),
        "tensorrt": f"{trt_name} {module_version(trt_name)}" if trt_name else "not installed",
        "cuda_python": package_version("cuda-python") or package_version("cuda-bindings") or "not installed",
        "pyav": module_version("av") or "not installed",
        "opencv": module_version("cv2") or "not installed",
    }
    from .jetson import inspect_jetson

    jetson = inspect_jetson()
    if jetson is not None:
        r = jetson.release
        report["jetson"] = {
            "l4t": r.version if r else "unknown", "jetpack": (r.jetpack if r else None) or "unknown",
            "board": r.board if r else None, "power_mode": jetson.power_mode or "unknown (nvpmodel not found)",
            "unified_memory": True, "warnings": jetson.warnings,
        }
    try:
        plan = make_plan(RuntimeConfig())
        from .runtime.threads import plan_threads

        threads = plan_threads(plan.runner, plan.decoder, plan.preprocessor)
        plan = dataclasses.replace(plan, thread_plan=threads, reasons=plan.reasons + threads.reasons)
        report["plan"] = plan.as_dict()
        report["plan_reasons"] = list(plan.reasons)
    except StreamTRTError as exc:
        report["plan"] = {"error": str(exc)}
        report["plan_reasons"] = []
    return report


def format_report(report: dict[str, Any]) -> str:
    lines = [
        f"python            {report['python']} on {report['platform']}",
        f"CUDA driver       {report['cuda_driver']}",
    ]
    if report["gpus"]:
        for g in report["gpus"]:
            lines.append(f"GPU {g['index']}             {g['name']} (sm {g['compute_capability']}, "
                         f"{g['sm_count']} SMs, {g['memory_mb']} MiB)")
    else:
        lines.append("GPU               none")
    lines += [
        f"NVDEC             {report['nvdec']}",
        f"CUDA MPS          {report['cuda_mps']}" + (" (processes sharing a GPU take turns; cluster workers want it)"
                                                   if report["cuda_mps"] == "not running" else ""),
        f"DLA cores         {report['dla_cores']}",
        f"DALI              {report['dali']}",
        f"ONNX Runtime      {report['onnxruntime']} (providers: {', '.join(report['onnxruntime_providers']) or 'none'})",
        f"TensorRT          {report['tensorrt']}",
        f"cuda-python       {report['cuda_python']}",
        f"PyAV / OpenCV     {report['pyav']} / {report['opencv']}",
    ]
    if "jetson" in report:
        j = report["jetson"]
        lines.append(f"Jetson            L4T {j['l4t']} (JetPack {j['jetpack']}), board {j['board']}, "
                     f"power mode {j['power_mode']}, unified memory")
        lines += [f"  warning: {w}" for w in j["warnings"]]
    plan = report["plan"]
    if "error" in plan:
        lines.append(f"default plan      cannot run: {plan['error']}")
    else:
        lines.append(f"default plan      decoder {plan['decoder']}, preprocessor {plan['preprocessor']}, runner {plan['runner']}")
        lines += [f"                  - {r}" for r in report["plan_reasons"]]
    return "\n".join(lines)
