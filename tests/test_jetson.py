"""Jetson detection and readings from recorded outputs (no Jetson needed)."""

from pathlib import Path

import pytest

from streamtrt.jetson import inspect_jetson, parse_power_mode, parse_tegra_release, parse_tegrastats, swap_enabled

DATA = Path(__file__).parent / "data" / "jetson"


@pytest.mark.parametrize("name, version, jetpack, board", [
    ("nv_tegra_release-r35.4.1", "35.4.1", "5.1.2", "t186ref"),
    ("nv_tegra_release-r36.3.0", "36.3.0", "6.0", "generic"),
])
def test_release(name, version, jetpack, board):
    r = parse_tegra_release((DATA / name).read_text())
    assert (r.version, r.jetpack, r.board) == (version, jetpack, board)


def test_not_a_release_file():
    assert parse_tegra_release("Debian GNU/Linux 12") is None


def test_power_mode():
    assert parse_power_mode("NV Power Mode: MAXN\n0\n") == "MAXN"
    assert parse_power_mode("NV Power Mode: 15W\n2\n") == "15W"


def test_tegrastats_orin():
    s = parse_tegrastats((DATA / "tegrastats-orin.txt").read_text())
    assert (s.ram_used_mb, s.ram_total_mb, s.swap_used_mb, s.swap_total_mb) == (2448, 7620, 0, 3810)
    assert s.temperatures_c["gpu"] == pytest.approx(46.156) and s.temperatures_c["tj"] == 47.5
    assert s.power_mw == {"VDD_IN": 4488, "VDD_CPU_GPU_CV": 485, "VDD_SOC": 1456}


def test_tegrastats_nano():
    s = parse_tegrastats((DATA / "tegrastats-nano.txt").read_text())
    assert (s.ram_used_mb, s.ram_total_mb, s.swap_used_mb) == (1830, 3956, 12)
    assert s.temperatures_c["gpu"] == 32 and s.power_mw["POM_5V_IN"] == 2447


def test_swap_detection():
    header = "Filename\tType\tSize\tUsed\tPriority\n"
    assert not swap_enabled(header)
    assert swap_enabled(header + "/dev/zram0\tpartition\t1950000\t0\t5\n")


def fake_jetson(root: Path, governor: str, gpu_governor: str, swap: bool) -> Path:
    (root / "etc").mkdir(parents=True)
    (root / "etc/nv_tegra_release").write_text((DATA / "nv_tegra_release-r35.4.1").read_text())
    cpu = root / "sys/devices/system/cpu/cpu0/cpufreq"
    cpu.mkdir(parents=True)
    (cpu / "scaling_governor").write_text(governor + "\n")
    gpu = root / "sys/devices/gpu.0/devfreq/17000000.ga10b"
    gpu.mkdir(parents=True)
    (gpu / "governor").write_text(gpu_governor + "\n")
    (root / "proc").mkdir()
    (root / "proc/swaps").write_text("Filename\tType\tSize\tUsed\tPriority\n" + ("/dev/zram0\tpartition\t1\t0\t5\n" if swap else ""))
    return root


def test_warnings_for_settings_that_hurt(tmp_path):
    report = inspect_jetson(str(fake_jetson(tmp_path, "powersave", "simple_ondemand", swap=True)))
    assert report.release.version == "35.4.1"
    text = " | ".join(report.warnings)
    assert "CPU frequency governor is 'powersave'" in text and "GPU clock governor is 'simple_ondemand'" in text
    assert "swap is on" in text


def test_no_warnings_when_tuned(tmp_path):
    report = inspect_jetson(str(fake_jetson(tmp_path, "performance", "performance", swap=False)))
    assert report.warnings == []


def test_not_a_jetson(tmp_path):
    assert inspect_jetson(str(tmp_path)) is None


def test_dla_fallback_layers_are_listed():
    from types import SimpleNamespace

    from streamtrt.engine.tensorrt.builder import gpu_fallback_layers

    layers = [SimpleNamespace(name=n) for n in ("conv1", "resize_up", "conv2", "nms")]
    network = SimpleNamespace(num_layers=4, get_layer=lambda i: layers[i])
    config = SimpleNamespace(can_run_on_DLA=lambda layer: layer.name.startswith("conv"))
    assert gpu_fallback_layers(config, network) == ["resize_up", "nms"]


def test_thermal_zones_and_power_rails_from_sysfs(tmp_path):
    from streamtrt.hardware import power_rails, thermal_zones

    for i, (kind, milli) in enumerate([("cpu-thermal", 47500), ("gpu-thermal", 46156)]):
        zone = tmp_path / "thermal" / f"thermal_zone{i}"
        zone.mkdir(parents=True)
        (zone / "type").write_text(kind + "\n")
        (zone / "temp").write_text(f"{milli}\n")
    assert thermal_zones(str(tmp_path / "thermal")) == [("cpu-thermal", 47.5), ("gpu-thermal", 46.156)]
    hw = tmp_path / "ina" / "1-0040" / "hwmon" / "hwmon3"
    hw.mkdir(parents=True)
    (hw / "in1_label").write_text("VDD_IN\n")
    (hw / "in1_input").write_text("5000\n")  # mV
    (hw / "curr1_input").write_text("900\n")  # mA
    assert power_rails(str(tmp_path / "ina")) == [("VDD_IN", pytest.approx(4.5))]


def test_base_install_forces_no_x86_only_wheel_on_aarch64():
    """What `pip install .` pulls on a Jetson (aarch64 Linux): nothing that only has x86_64 wheels."""
    import tomllib

    from packaging.requirements import Requirement

    from tests.conftest import ROOT

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    jetson = {"platform_machine": "aarch64", "sys_platform": "linux", "platform_system": "Linux",
              "python_version": "3.10", "extra": ""}
    x86_only = ("nvidia-dali", "pynvvideocodec")

    def pulled(reqs):
        out = []
        for raw in reqs:
            req = Requirement(raw)
            if req.marker is None or req.marker.evaluate(jetson):
                out.append(req.name.lower())
        return out

    base = pulled(project["dependencies"])
    assert not [n for n in base if n.startswith(x86_only)], base
    assert {"numpy", "onnxruntime", "av"} <= set(base)
    gpu = pulled(project["optional-dependencies"]["gpu"])
    assert not [n for n in gpu if n.startswith(x86_only)], gpu
