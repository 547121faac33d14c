"""How a worker actor is placed and started: its Ray resources and options (used by the controller,
batch tasks and the benchmarks)."""

from __future__ import annotations

from ..config import ClusterConfig


def worker_options(cluster: ClusterConfig, ray) -> dict:
    """Ray resources of one worker (or batch task): 1/``workers_per_gpu`` of a GPU where the cluster
    has GPUs, else ``cpus_per_worker`` CPUs."""
    gpus = ray.cluster_resources().get("GPU", 0)
    if gpus >= 1:
        return {"num_gpus": 1.0 / cluster.workers_per_gpu, "num_cpus": 0}
    return {"num_cpus": cluster.cpus_per_worker}


def worker_actor(cluster: ClusterConfig, ray, name: str):
    """The :class:`StreamWorker` actor class with its resources: detached (it outlives a
    controller restart; the controller kills it at the end), never restarted by Ray (the
    controller replaces it, so the dead one's streams move at once), spread over the nodes."""
    from .worker import StreamWorker

    return ray.remote(StreamWorker).options(name=name, lifetime="detached", max_restarts=0, max_concurrency=4,
                                            scheduling_strategy="SPREAD", **worker_options(cluster, ray))
