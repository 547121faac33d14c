"""The ``cluster:`` section of the config: how many workers, where they run, how many streams each
takes, how failures are detected, and the batch mode's inputs and outputs.

Defaults come from measurements on an NVIDIA H200 (1080p30 H.264, the README's "GPU scale"): one
process holds about 80 real-time streams (its Python threads are the limit); several processes on one
GPU with CUDA MPS held 112 real-time streams and no more, whatever their number (2, 3 or 4 gave the
same total: NVDEC is the limit). Hence ``workers_per_gpu: 3`` and ``streams_per_worker: 36``, which
keeps three workers (108 streams) just under the 112 at which one GPU stops keeping up; past that
edge throughput collapses rather than levelling off.
"""

from __future__ import annotations

import re
from typing import Optional, Union

from pydantic import Field, field_validator

from .base import _Strict

__all__ = ["BatchConfig", "ClusterConfig", "OUTPUT_FIELDS"]

OUTPUT_FIELDS = ("stem", "name", "index")
"""Placeholders of a batch output template: the input's file name without its suffix, with it, and
its position in the sorted input list."""


class BatchConfig(_Strict):
    """Many video files, one work item each (``streamtrt cluster run`` with this section set)."""

    inputs: Union[str, list[str]]
    """A glob (``videos/**/*.mp4``), a folder (its video files, recursively), a list file (``.txt``:
    one path per line, ``#`` comments), or a list of any of these. Every node must see the same
    paths (a shared filesystem)."""
    outputs: list[str] = Field(min_length=1)
    """Per-file sink templates, e.g. ``out/{stem}.jsonl`` or ``summary:out/{stem}.json``, with
    ``{stem}``, ``{name}``, ``{index}``. Written to a temporary name and renamed when the file is
    done, so an output that exists is complete."""
    manifest: str = "streamtrt-manifest.jsonl"
    """One JSON line per completed input (path, size, mtime, outputs, frames). A rerun skips the
    inputs listed there whose file is unchanged and whose outputs all exist."""

    @field_validator("outputs")
    @classmethod
    def _templates(cls, v: list[str]) -> list[str]:
        for t in v:
            if "://" in t:
                raise ValueError(f"{t!r}: batch outputs are files (network sinks belong in `sinks` of a stream job)")
            unknown = sorted(set(re.findall(r"{([^{}]*)}", t)) - set(OUTPUT_FIELDS))
            if unknown:
                raise ValueError(f"{t!r}: unknown placeholder {{{unknown[0]}}} (use {{stem}}, {{name}} or {{index}})")
            if "{stem}" not in t and "{name}" not in t and "{index}" not in t:
                raise ValueError(f"{t!r}: every input would write the same file; put {{stem}} in the path")
        return v


class ClusterConfig(_Strict):
    """Running one job on a Ray cluster (``streamtrt cluster run``); ignored by ``streamtrt run``."""

    name: str = Field("streamtrt", pattern=r"^[A-Za-z0-9_.-]{1,40}$")
    """The job's name: the controller is the named Ray actor ``NAME-controller`` and workers
    ``NAME-wSLOT-GENERATION`` in the Ray namespace ``namespace``. Two jobs on one cluster need two names."""
    namespace: str = Field("streamtrt", pattern=r"^[A-Za-z0-9_.-]{1,40}$")
    workers: Optional[int] = Field(None, ge=1, le=4096)
    """Stream workers (Ray actors, one process and one Pipeline each). Default: ``workers_per_gpu``
    per GPU of the cluster, or on a CPU-only cluster one per ``cpus_per_worker`` CPUs; recomputed
    when a node joins (new workers, which take new streams; running streams stay put)."""
    workers_per_gpu: int = Field(3, ge=1, le=64)
    """Workers sharing one GPU (each asks Ray for 1/N of a GPU). 3: measured, see the module docstring."""
    cpus_per_worker: float = Field(1.0, gt=0.0)
    """Ray CPUs each worker (and each batch task) asks for."""
    streams_per_worker: int = Field(36, ge=1, le=10000)
    """A worker's capacity: streams beyond it wait (state ``pending``) until a worker has room.
    36: 3 x 36 = 108 stays under the 112 real-time 1080p30 streams one H200 held (module docstring)."""
    reconcile_s: float = Field(1.0, gt=0.0, le=60.0)
    """How often the controller compares desired and actual streams, and polls the workers."""
    worker_timeout_s: float = Field(5.0, gt=0.0, le=300.0)
    """A worker that does not answer a poll within this is declared dead: it is killed and its streams
    move (a node that left answers no more). With the poll interval it bounds the failover time."""
    orphan_timeout_s: float = Field(60.0, gt=0.0)
    """A worker that has not been polled for this long (its controller and driver are gone) stops its
    pipeline and exits, so nothing keeps streaming unwatched."""
    max_retries: int = Field(3, ge=0, le=100)
    """Batch mode: how often a file is retried after its worker process died (or its node left)."""
    metrics_host: str = "127.0.0.1"
    """Bind address of the cluster's Prometheus endpoint (on the machine running ``cluster run``)."""
    metrics_port: Optional[int] = Field(None, ge=0, le=65535)
    """Serve ``/metrics`` for the whole cluster (labels worker, node, gpu); 0 picks a free port. Off when unset."""
    batch: Optional[BatchConfig] = None
    """Batch mode: files in, per-file outputs; ``sources`` must then be empty."""
