"""Jetson facts for ``doctor`` and metrics: L4T/JetPack release, power mode, governors, swap,
and tegrastats lines (RAM, swap, temperatures, power rails). Every reader takes the text it
parses, so it is tested on recorded samples without a Jetson."""

from __future__ import annotations

import re
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from .fileio import read_text

# L4T release -> JetPack (NVIDIA's release notes).
JETPACK_BY_L4T = {
    "32.7": "4.6.x", "35.1": "5.0.2", "35.2": "5.1", "35.3": "5.1.1", "35.4": "5.1.2", "35.5": "5.1.3",
    "35.6": "5.1.4", "36.2": "6.0 DP", "36.3": "6.0", "36.4": "6.1 / 6.2",
}


@dataclass
class L4TRelease:
    major: int
    revision: str
    board: Optional[str] = None

    @property
    def version(self) -> str:
        return f"{self.major}.{self.revision}"

    @property
    def jetpack(self) -> Optional[str]:
        minor = self.revision.split(".")[0]
        return JETPACK_BY_L4T.get(f"{self.major}.{minor}")


def parse_tegra_release(text: str) -> Optional[L4TRelease]:
    """``# R35 (release), REVISION: 4.1, GCID: ..., BOARD: t186ref, ...`` -> R35.4.1."""
    m = re.search(r"#\s*R(\d+)\s*\(release\),\s*REVISION:\s*([\d.]+)", text)
    if not m:
        return None
    board = re.search(r"BOARD:\s*([^,\s]+)", text)
    return L4TRelease(int(m.group(1)), m.group(2), board.group(1) if board else None)


def parse_power_mode(text: str) -> Optional[str]:
    """``nvpmodel -q`` output: ``NV Power Mode: MAXN`` -> ``MAXN``."""
    m = re.search(r"NV Power Mode:\s*(\S+)", text)
    return m.group(1) if m else None


@dataclass
class TegraStats:
    ram_used_mb: Optional[int] = None
    ram_total_mb: Optional[int] = None
    swap_used_mb: Optional[int] = None
    swap_total_mb: Optional[int] = None
    temperatures_c: dict[str, float] = field(default_factory=dict)
    power_mw: dict[str, int] = field(default_factory=dict)  # rail -> current mW


def parse_tegrastats(line: str) -> TegraStats:
    """One ``tegrastats`` line (formats of JetPack 4 to 6)."""
    s = TegraStats()
    if m := re.search(r"RAM (\d+)/(\d+)MB", line):
        s.ram_used_mb, s.ram_total_mb = int(m.group(1)), int(m.group(2))
    if m := re.search(r"SWAP (\d+)/(\d+)MB", line):
        s.swap_used_mb, s.swap_total_mb = int(m.group(1)), int(m.group(2))
    for name, value in re.findall(r"\b([A-Za-z][\w-]*)@(-?\d+(?:\.\d+)?)C\b", line):
        s.temperatures_c[name.lower()] = float(value)
    for name, current in re.findall(r"\b((?:VDD|POM|VIN)_[A-Z0-9_]+)\s+(\d+)(?:mW)?/\d+(?:mW)?", line):
        s.power_mw[name] = int(current)
    return s


def swap_enabled(proc_swaps: str) -> bool:
    """``/proc/swaps`` lists a device or file after its header line."""
    return len([l for l in proc_swaps.splitlines()[1:] if l.strip()]) > 0


@dataclass
class JetsonReport:
    release: Optional[L4TRelease]
    power_mode: Optional[str]
    warnings: list[str]


def inspect_jetson(root: str = "/") -> Optional[JetsonReport]:
    """Facts and warnings for this Jetson, or ``None`` if this is not one."""
    base = Path(root)
    text = read_text(base / "etc/nv_tegra_release")
    if text is None:
        return None
    release = parse_tegra_release(text)
    power = None
    if shutil.which("nvpmodel"):
        try:
            power = parse_power_mode(subprocess.run(["nvpmodel", "-q"], capture_output=True, text=True,
                                                    timeout=5).stdout)
        except (OSError, subprocess.TimeoutExpired):
            pass
    return JetsonReport(release, power, jetson_warnings(base))


def jetson_warnings(base: Path) -> list[str]:
    """Settings that cost throughput or latency on a Jetson."""
    warnings = []
    cpu_gov = read_text(base / "sys/devices/system/cpu/cpu0/cpufreq/scaling_governor")
    if cpu_gov and cpu_gov.strip() not in ("performance", "schedutil"):
        warnings.append(f"CPU frequency governor is '{cpu_gov.strip()}': run `sudo jetson_clocks` for steady throughput")
    for gov in sorted(base.glob("sys/devices/*gpu*/devfreq/*/governor")) + sorted(base.glob("sys/class/devfreq/*gpu*/governor")):
        value = gov.read_text().strip()
        if value not in ("performance", "nvhost_podgov"):
            warnings.append(f"GPU clock governor is '{value}' ({gov.parent.name}): clocks may stay low")
        elif value == "nvhost_podgov":
            warnings.append("GPU clocks scale with load (nvhost_podgov): `sudo jetson_clocks` pins them for benchmarks")
        break
    swaps = read_text(base / "proc/swaps")
    if swaps and swap_enabled(swaps):
        warnings.append("swap is on: TensorRT builds and large queues may page and stall; keep the budget within RAM")
    return warnings
