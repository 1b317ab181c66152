"""Embedding on Ray: the images a dataset still needs are split into shards and embedded
by Ray actors, one model per actor, one actor per GPU when the cluster has GPUs.

The driver plans as the local path does (:func:`detreduce.features.embed_dataset`: which
rows the cache lacks, where every row goes), so a rerun sends only what is missing and a
fully cached dataset starts no actor. Each actor loads the backbone once and runs the
local path on its shards (``backend: local``, its own ``cpus_per_actor`` torch threads),
which writes the same cache shards the local path writes under the same cache root; it
returns the rows, which the driver writes into the output arrays, then fills the cached
and duplicate rows as the local path does. The same images therefore give the same
embeddings (tested against the local path: max abs difference ≤ 1e-5 on the CPU).

Shared paths: actors read the images at the paths the driver names and write the cache
under the driver's cache root (shipped to them, with the settings and the dataset's
tables; never the pixels). On a multi-node cluster both must be on a filesystem every
node mounts at the same path; an actor that cannot see them fails at its first shard
with the node's name, before any work. A shard is the unit of loss: an actor that dies
loses at most its shard in flight, and the shards written stay cached for the rerun.

Energy: each actor meters its own process (codecarbon ``process`` mode), so parallel
actors never count each other; the driver sums the actors' records into
:attr:`Embeddings.worker_energy`, which callers add to the embedding phase they meter
in the driver (:func:`detreduce.sweep.sweep` does).
"""

from __future__ import annotations

import logging
import os
import socket
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from detreduce.errors import ConfigError, DetReduceError

logger = logging.getLogger("detreduce")


class EmbedActor:
    """One backbone, loaded once; embeds shards of image rows with the local path."""

    def __init__(
        self, settings: Any, weights: Any, cache_root: str, energy: Any, weights_hash: str = ""
    ) -> None:
        os.environ["DETREDUCE_CACHE"] = cache_root  # the driver's cache, wherever we run
        from detreduce.features.backbones import get_backbone

        self.settings = settings
        self.energy = energy
        self.cache_root = cache_root
        self.backbone = get_backbone(
            settings.backbone, weights, allow_download=settings.allow_download
        )
        if weights_hash and self.backbone.weights_hash != weights_hash:
            raise ConfigError(
                f"Ray actor on {socket.gethostname()} loaded {settings.backbone} with weights "
                f"{self.backbone.weights_hash}, the driver has {weights_hash}: give the same "
                "weight file on every node"
            )

    def embed(self, dataset: Any, rows: np.ndarray) -> tuple[np.ndarray, Any, Any]:
        """``(rows, Embeddings of those rows, EnergyRecord of this call)``."""
        from detreduce.energy import EnergyMeter
        from detreduce.features.embed import embed_dataset

        for what, path in (("images", dataset.image_paths[rows[0]]), ("cache", self.cache_root)):
            if not Path(path).exists():
                raise ConfigError(
                    f"Ray actor on {socket.gethostname()} cannot see the {what} path {path}: "
                    "put it on a filesystem every node mounts at the same path"
                )
        with EnergyMeter(self.energy).measure("embedding") as phase:
            emb = embed_dataset(dataset, self.backbone, settings=self.settings, indices=rows)
        return rows, emb, phase.record


def shards(rows: np.ndarray, size: int) -> list[np.ndarray]:
    """``rows`` cut into consecutive shards of at most ``size`` rows."""
    return [rows[s : s + size] for s in range(0, len(rows), max(1, size))]


def compute_on_ray(plan: Any, dataset: Any, rows: np.ndarray, fs: Any, weights: Any,
                   report: Any, weights_hash: str = "", energy: Any = None
                   ) -> tuple[str, Any]:  # fmt: skip
    """Embed ``plan``'s missing rows on Ray actors and write them into ``plan``'s outputs.

    ``rows`` are the dataset indices of the plan's output rows. Returns ``(runtime,
    combined EnergyRecord of the actors)``; ``report(done)`` is called as shards finish.
    """
    from detreduce.config import cache_root
    from detreduce.energy import combine
    from detreduce.raycluster import connect

    todo = np.flatnonzero(plan.need_image | plan.need_box)
    ray = connect(fs.ray_address)
    resources = ray.cluster_resources()
    gpus = int(resources.get("GPU", 0))
    cpus = max(1, int(resources.get("CPU", 1)))
    per = max(1, int(fs.cpus_per_actor))
    n_actors = fs.ray_actors or (gpus if gpus else max(1, cpus // per))
    work = shards(rows[todo], fs.shard_images)
    n_actors = max(1, min(n_actors, len(work)))
    local = replace(
        fs,
        backend="local",
        threads=fs.threads or per,
        workers=fs.workers if fs.workers is not None else 0,
        device="auto" if gpus else "cpu",
    )
    actor_cls = ray.remote(num_cpus=per, num_gpus=1 if gpus else 0)(EmbedActor)
    root = str(cache_root())
    Path(root).mkdir(parents=True, exist_ok=True)
    actors = [actor_cls.remote(local, weights, root, energy, weights_hash) for _ in range(n_actors)]
    logger.info("embedding %d images on Ray: %d actors, %d shards", len(todo), n_actors,
                len(work))  # fmt: skip
    data_ref = ray.put(dataset)
    out_pos = np.full(dataset.num_images, -1, dtype=np.int64)
    out_pos[rows] = np.arange(len(rows))
    box_pos = np.full(dataset.num_boxes, -1, dtype=np.int64)
    box_pos[plan.box_index] = np.arange(len(plan.box_index))
    pending = {}
    queue = list(range(len(work)))
    for actor in actors:
        if queue:
            i = queue.pop(0)
            pending[actor.embed.remote(data_ref, work[i])] = actor
    records, runtimes, done = [], set(), 0
    t0 = time.perf_counter()
    try:
        while pending:
            ready, _ = ray.wait(list(pending), num_returns=1)
            ref = ready[0]
            actor = pending.pop(ref)
            try:
                shard_rows, emb, record = ray.get(ref)
            except Exception as exc:  # noqa: BLE001 - one line, what was lost, how to resume
                cause = getattr(exc, "cause", None)
                if isinstance(cause, DetReduceError):
                    raise cause from None
                raise DetReduceError(
                    f"a Ray embedding actor failed ({type(exc).__name__}: "
                    f"{str(exc).splitlines()[0] if str(exc) else ''}); the shards already "
                    "embedded are cached: rerun to embed the rest"
                ) from None
            if emb.image is not None:
                plan.out_image[out_pos[shard_rows]] = emb.image
            if emb.box is not None and len(emb.box_index):
                plan.out_box[box_pos[emb.box_index]] = emb.box
            records.append(record)
            runtimes.add(emb.runtime)
            done += len(shard_rows)
            report(done)
            if queue:
                i = queue.pop(0)
                pending[actor.embed.remote(data_ref, work[i])] = actor
    finally:
        for actor in actors:
            ray.kill(actor)
    logger.info("Ray embedding: %d images in %.1f s", done, time.perf_counter() - t0)
    runtime = ",".join(sorted(r for r in runtimes if r != "none")) or "none"
    return runtime, combine(records, "embedding")
