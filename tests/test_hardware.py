"""streamtrt.hardware: NVML through nvidia-ml-py; no driver means no readings, never an error."""

import sys
from types import SimpleNamespace

import pytest

from streamtrt import hardware


@pytest.fixture
def fresh_nvml(monkeypatch):
    monkeypatch.setattr(hardware, "_nvml_ready", None)


def fake_pynvml(init_error: bool = False):
    class NVMLError(Exception):
        pass

    def init():
        if init_error:
            raise NVMLError("NVML Shared Library Not Found")

    mem = {0: (1_000, 8_000), 1: (2_500, 16_000)}
    return SimpleNamespace(
        NVMLError=NVMLError, nvmlInit=init, nvmlDeviceGetCount=lambda: 2,
        nvmlDeviceGetHandleByIndex=lambda i: i,
        nvmlDeviceGetMemoryInfo=lambda h: SimpleNamespace(used=mem[h][0], total=mem[h][1], free=mem[h][1] - mem[h][0]))


def test_gpu_memory_reads_every_gpu(monkeypatch, fresh_nvml):
    monkeypatch.setitem(sys.modules, "pynvml", fake_pynvml())
    assert hardware.gpu_memory() == [(0, 1_000, 8_000), (1, 2_500, 16_000)]


def test_no_driver_means_no_readings(monkeypatch, fresh_nvml):
    monkeypatch.setitem(sys.modules, "pynvml", fake_pynvml(init_error=True))
    assert hardware.gpu_memory() == []
    monkeypatch.setitem(sys.modules, "pynvml", None)  # the package missing: import fails
    monkeypatch.setattr(hardware, "_nvml_ready", None)
    assert hardware.gpu_memory() == []


def test_this_machine_answers_without_raising(fresh_nvml):
    for reading in (hardware.gpu_memory(), hardware.thermal_zones(), hardware.power_rails()):
        assert isinstance(reading, list)


def test_mps_is_seen_by_its_control_socket(tmp_path):
    """NVIDIA's MPS guide: the control daemon's pipe directory (CUDA_MPS_PIPE_DIRECTORY, default
    /tmp/nvidia-mps) holds the `control` socket while it runs."""
    from streamtrt.hardware import mps_running

    assert not mps_running({"CUDA_MPS_PIPE_DIRECTORY": str(tmp_path)})
    (tmp_path / "control").touch()
    assert mps_running({"CUDA_MPS_PIPE_DIRECTORY": str(tmp_path)})
