"""Image and box-crop embeddings of a detection dataset, batched, parallel and cached.

One pass over the images: DataLoader workers decode each image once and cut both the
whole-image input and every box crop from it; the main process runs the backbone on
batches under ``torch.inference_mode`` (AMP + channels_last on CUDA) and writes rows
straight into the output arrays and into cache shards. Memory is the output arrays
plus a few batches and one shard, whatever the dataset size. Cost: one decode per
image not already cached, one forward per image and per box.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from detreduce.data.model import DetectionDataset
from detreduce.device import cpu_cores, cpu_threads, loader_workers, others_load, parse_device
from detreduce.errors import ConfigError, DatasetError
from detreduce.features.backbones import Backbone, get_backbone
from detreduce.features.cache import ShardStore, derived_key, image_key, store_dir
from detreduce.features.dataset import CropParams, DecodeDataset, make_loader
from detreduce.features.preprocess import Preprocess, draft_factor
from detreduce.features.runtime import resolve_runtime
from detreduce.settings import CACHE_KEYS as CACHE_KEYS  # re-exported
from detreduce.settings import FEATURE_DTYPES, FEATURE_LEVELS, FeatureSettings

logger = logging.getLogger("detreduce")

LEVELS, DTYPES = FEATURE_LEVELS, FEATURE_DTYPES
Progress = Callable[[int, int], None]


@dataclass
class Embeddings:
    """Embeddings of some images of a dataset (and of their boxes).

    Attributes:
        image: ``(n, d)`` L2-normalized image embeddings, row ``j`` for dataset image
            ``image_indices[j]``; None for ``level='box'``.
        image_indices: dataset image index of each image row (the ``indices`` given).
        paths: absolute image path of each image row.
        box: ``(m, d)`` L2-normalized crop embeddings, None for ``level='image'``.
        box_image: dataset image index of each box row (same id space as ``image_indices``).
        box_index: index of each box row in the dataset's boxes table.
        box_class: class id of each box row.
        backbone, weights_hash, weights_source, dim: what produced the rows.
        params: preprocessing parameters (image and crop) the rows depend on.
        dataset_fingerprint: :meth:`DetectionDataset.fingerprint` of the source.
        computed, cached: images decoded in this call / images served from the cache.
        seconds: wall time of the call.
        runtime: what ran the network in this call (``torch``, ``onnxruntime``, or
            ``none`` when every row came from the cache).
        worker_energy: with ``backend: ray``, the actors' energy (an
            :class:`~detreduce.energy.EnergyRecord`, their processes summed), which a
            meter around the call in the driver does not see; None on the local path.
    """

    image: np.ndarray | None
    image_indices: np.ndarray
    paths: np.ndarray
    box: np.ndarray | None
    box_image: np.ndarray
    box_index: np.ndarray
    box_class: np.ndarray
    backbone: str
    weights_hash: str
    weights_source: str
    dim: int
    params: dict = field(default_factory=dict)
    dataset_fingerprint: str = ""
    computed: int = 0
    cached: int = 0
    seconds: float = 0.0
    runtime: str = "none"
    worker_energy: Any = None

    @property
    def num_images(self) -> int:
        return len(self.image_indices)

    @property
    def num_boxes(self) -> int:
        return len(self.box_index)

    def imagewise_classwise(self, normalize: bool = True) -> tuple[np.ndarray, np.ndarray]:
        """Mean crop embedding per (image, class): CSOD's features (Lee et al. 2024).

        Returns ``(keys, matrix)``: ``keys`` is ``(k, 2)`` int64 rows of (dataset image
        index, class id), sorted; ``matrix`` is ``(k, d)`` float32, each row the mean of
        that image's crops of that class (L2-normalized again when ``normalize``).
        O(m log m + m·d) for m boxes.
        """
        if self.box is None:
            raise ConfigError("these embeddings have no box rows; embed with level='box' or 'both'")
        if self.num_boxes == 0:
            return np.zeros((0, 2), np.int64), np.zeros((0, self.dim), np.float32)
        pairs = np.stack([self.box_image, self.box_class], axis=1)
        keys, inverse = np.unique(pairs, axis=0, return_inverse=True)
        inverse = inverse.reshape(-1)
        order = np.argsort(inverse, kind="stable")
        counts = np.bincount(inverse, minlength=len(keys))
        starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
        sums = np.add.reduceat(self.box[order].astype(np.float32), starts, axis=0)
        mean = sums / counts[:, None]
        if normalize:
            mean /= np.maximum(np.linalg.norm(mean, axis=1, keepdims=True), 1e-12)
        return keys.astype(np.int64), mean.astype(np.float32)


def auto_batch_size(device: torch.device, input_size: int) -> int:
    """Inputs per forward pass: small on CPU, large on GPU, scaled by input area.

    On CPU, small batches keep activations in cache: MobileNetV2 at 224 px on one
    thread ran 19 img/s at batch 8 and 14 img/s at batch 64 (crops at 112 px: 97 vs 80).
    """
    area = (224 / input_size) ** 2
    if device.type != "cuda":
        return int(min(64, max(8, 8 * area)))
    return int(min(1024, max(16, 256 * area)))


def auto_workers(device: torch.device) -> int:
    """Decode processes: few beside a CPU forward pass (it dominates), most cores beside a GPU.

    On CPU, inference costs ~10× the decode (MobileNetV2 at 224 px vs a 640×480 JPEG):
    :func:`detreduce.device.loader_workers` (none on two cores, decoding stays inline).
    """
    cores = cpu_cores()
    if device.type != "cuda":
        return loader_workers(cores)
    return max(1, min(12, cores - 1))


def auto_threads(workers: int) -> int:
    """Torch CPU threads: the cores the decode workers leave, or 1 on a busy machine
    (:func:`detreduce.device.cpu_threads`, the rule training applies too)."""
    return cpu_threads(cpu_cores(), others_load(), reserved=workers)


def embed_dataset(
    dataset: DetectionDataset,
    backbone: str | Backbone | None = None,
    level: str | None = None,
    *,
    settings: FeatureSettings | Mapping[str, Any] | None = None,
    indices: np.ndarray | list[int] | None = None,
    weights: str | Path | None = None,
    progress: bool | Progress = False,
    **overrides: Any,
) -> Embeddings:
    """Embed the images (and/or box crops) of a dataset with a pretrained backbone.

    Args:
        dataset: the dataset; boxes are read from it for ``level='box'|'both'``.
        backbone: a registry / torchvision / timm name, or a loaded :class:`Backbone`
            (which then wins over ``settings.backbone``).
        level: ``image``, ``box`` or ``both`` (both from one decode per image).
        settings: :class:`~detreduce.settings.FeatureSettings` (or a mapping of its
            keys); built once with ``FeatureSettings.build(settings, backbone=...,
            level=..., **overrides)``, so every key of ``cfg/features.yaml`` may also
            be given as a keyword (``device``, ``batch_size``, ``image_size``,
            ``crop_size``, ``crop_padding``, ``min_crop``, ``crop_batch_size``,
            ``dtype``, ``cache``, ``cache_key``, ``workers``, ``threads``, ``runtime``,
            ``draft_decode``, ``amp``, ``shard_images``, ``allow_download``: see that
            file); unknown keywords raise with suggestions.
        indices: dataset image indices to embed, in output order (None: all).
        weights: checkpoint path, ``random``, or None for the backbone's own weights.
        progress: True for a tqdm bar, or a callable ``(done, total)`` per batch.

    ``threads`` (torch CPU threads during the call) is restored afterwards.
    ``runtime='auto'`` uses ONNX Runtime for a neural backbone on CPU when installed,
    else torch; ``draft_decode`` (``level='image'``) decodes JPEGs at 1/2–1/8 scale when
    the reduced image still covers the input size (faster, nearly the same pixels).
    """
    t0 = time.perf_counter()
    name = None if isinstance(backbone, Backbone) else backbone
    fs = FeatureSettings.build(settings, backbone=name, level=level, **overrides)
    cfg = _Settings.resolve(fs)
    bb = (
        backbone
        if isinstance(backbone, Backbone)
        else get_backbone(fs.backbone, weights, allow_download=fs.allow_download)
    )
    bb = bb.to(cfg.device, amp=cfg.amp)
    rows = _rows(dataset, indices)
    plan = _Plan.build(dataset, rows, bb, cfg)
    worker_energy = None
    if fs.backend == "ray" and plan.n_todo:
        from detreduce.features.ray_embed import compute_on_ray

        report, close = _progress(progress, plan.n_todo)
        try:
            ray_fs = replace(fs, backbone=bb.name)
            runtime, worker_energy = compute_on_ray(
                plan, dataset, rows, ray_fs, weights, report, bb.weights_hash
            )
        finally:
            close()
    else:
        runtime = _compute(plan, bb, cfg, progress)
    plan.fill_from_cache()
    plan.fill_duplicates()
    emb = Embeddings(
        image=plan.out_image,
        image_indices=rows,
        paths=dataset.image_paths[rows],
        box=plan.out_box,
        box_image=plan.box_dataset_image,
        box_index=plan.box_index,
        box_class=plan.box_class,
        backbone=bb.name,
        weights_hash=bb.weights_hash,
        weights_source=bb.weights_source,
        dim=bb.dim,
        params=plan.params,
        dataset_fingerprint=dataset.fingerprint(),
        computed=plan.n_todo,
        cached=len(rows) - plan.n_todo,
        seconds=time.perf_counter() - t0,
        runtime=runtime,
        worker_energy=worker_energy,
    )
    logger.info(
        "embedded %d images (%d from cache) and %d boxes with %s on %s in %.1f s",
        emb.num_images,
        emb.cached,
        emb.num_boxes,
        bb.name,
        runtime,
        emb.seconds,
    )
    return emb


# --------------------------------------------------------------------- internals
@dataclass
class _Settings:
    level: str
    device: torch.device
    batch_size: int | None
    image_size: int | None
    crop: CropParams
    crop_batch_size: int | None
    dtype: str
    cache: bool
    cache_key: str
    workers: int
    threads: int
    amp: bool
    shard_images: int
    runtime: str
    draft_decode: bool

    @classmethod
    def resolve(cls, fs: FeatureSettings) -> _Settings:
        """The settings with the device and the auto values resolved for this machine."""
        dev = torch.device(parse_device(fs.device).torch)
        resolve_runtime(fs.runtime, dev, takes_uint8=False)  # onnxruntime must be installed
        workers = auto_workers(dev) if fs.workers is None else fs.workers
        return cls(
            level=fs.level,
            device=dev,
            batch_size=fs.batch_size,
            image_size=fs.image_size,
            crop=CropParams(fs.crop_size, fs.crop_padding, fs.min_crop),
            crop_batch_size=fs.crop_batch_size,
            dtype=fs.dtype,
            cache=fs.cache,
            cache_key=fs.cache_key,
            workers=workers,
            threads=auto_threads(workers) if fs.threads is None else fs.threads,
            amp=fs.amp,
            shard_images=fs.shard_images,
            runtime=fs.runtime,
            draft_decode=fs.draft_decode,
        )


def _rows(dataset: DetectionDataset, indices) -> np.ndarray:
    n = dataset.num_images
    if indices is None:
        return np.arange(n, dtype=np.int64)
    rows = np.asarray(indices, dtype=np.int64).reshape(-1)
    if len(rows) and (rows.min() < 0 or rows.max() >= n):
        raise ConfigError(
            f"indices must be image indices in [0, {n}), got {rows.min()}..{rows.max()}"
        )
    if len(np.unique(rows)) != len(rows):
        raise ConfigError("indices must not repeat an image")
    return rows


@dataclass
class _Plan:
    """What to compute, what to read from the cache, and where every row goes."""

    paths: np.ndarray
    sizes: np.ndarray
    want_image: bool
    want_box: bool
    image_pre: Preprocess
    crop_pre: Preprocess
    crop: CropParams
    params: dict
    out_image: np.ndarray | None
    out_box: np.ndarray | None
    box_offsets: np.ndarray
    box_xyxy: np.ndarray
    box_index: np.ndarray
    box_class: np.ndarray
    box_dataset_image: np.ndarray
    image_keys: list[bytes]
    box_keys: list[bytes]
    decode_factors: np.ndarray
    need_image: np.ndarray
    need_box: np.ndarray
    image_store: ShardStore | None
    box_store: ShardStore | None

    @property
    def n_todo(self) -> int:
        return int((self.need_image | self.need_box).sum())

    @classmethod
    def build(cls, dataset: DetectionDataset, rows: np.ndarray, bb: Backbone, cfg: _Settings):
        n = len(rows)
        want_image, want_box = cfg.level in ("image", "both"), cfg.level in ("box", "both")
        spec_pre = bb.spec.preprocess
        image_pre = Preprocess(
            cfg.image_size or spec_pre.size,
            spec_pre.resize,
            spec_pre.mean,
            spec_pre.std,
            spec_pre.pad_value,
            draft=cfg.draft_decode and not want_box,  # crops need the full-size decode
        )
        crop_pre = Preprocess(cfg.crop.size, "squash", spec_pre.mean, spec_pre.std)
        # Boxes of the chosen images, grouped by output row, dataset order inside a row.
        pos = np.full(dataset.num_images, -1, dtype=np.int64)
        pos[rows] = np.arange(n)
        if want_box:
            sel = np.flatnonzero(pos[dataset.box_image] >= 0)
            sel = sel[np.argsort(pos[dataset.box_image[sel]], kind="stable")]
        else:
            sel = np.zeros(0, dtype=np.int64)
        box_row = pos[dataset.box_image[sel]]
        box_offsets = np.concatenate([[0], np.cumsum(np.bincount(box_row, minlength=n))])
        box_xyxy = dataset.box_xyxy[sel]
        paths = dataset.image_paths[rows]
        sizes = dataset.image_sizes[rows]
        file_keys = [_key(p, cfg.cache_key) for p in paths]
        # Rows decoded at reduced scale get their own image keys: full-decode rows
        # (level both, or images too small to reduce) stay shared between levels.
        factors = np.array([draft_factor(int(w), int(h), image_pre) for w, h in sizes], np.int64)
        image_keys = [
            derived_key(k, f"draft{f}".encode()) if f > 1 else k
            for k, f in zip(file_keys, factors.tolist(), strict=True)
        ]
        box_keys = (
            [
                derived_key(file_keys[r], box_xyxy[box_offsets[r] : box_offsets[r + 1]].tobytes())
                for r in range(n)
            ]
            if want_box
            else []
        )
        common = {"backbone": bb.name, "arch": bb.spec.arch, "weights": bb.weights_hash}
        common["dtype"] = cfg.dtype
        params = {
            "image": {**image_pre.key(), "draft": image_pre.draft},
            "crop": {**crop_pre.key(), **cfg.crop.key()},
        }
        image_store = box_store = None
        if cfg.cache and want_image:
            p = {**common, **image_pre.key()}
            image_store = ShardStore(store_dir("image", p), p, bb.dim, cfg.dtype)
        if cfg.cache and want_box:
            p = {**common, **params["crop"]}
            box_store = ShardStore(store_dir("box", p), p, bb.dim, cfg.dtype)
        has_boxes = np.diff(box_offsets) > 0
        need_image = _needed(image_keys, image_store) if want_image else np.zeros(n, bool)
        need_box = (_needed(box_keys, box_store) & has_boxes) if want_box else np.zeros(n, bool)
        return cls(
            paths=paths,
            sizes=sizes,
            want_image=want_image,
            want_box=want_box,
            image_pre=image_pre,
            crop_pre=crop_pre,
            crop=cfg.crop,
            params=params,
            out_image=np.empty((n, bb.dim), dtype=cfg.dtype) if want_image else None,
            out_box=np.empty((len(sel), bb.dim), dtype=cfg.dtype) if want_box else None,
            box_offsets=box_offsets,
            box_xyxy=box_xyxy,
            box_index=sel,
            box_class=dataset.box_class[sel],
            box_dataset_image=dataset.box_image[sel],
            image_keys=image_keys,
            box_keys=box_keys,
            decode_factors=factors,
            need_image=need_image,
            need_box=need_box,
            image_store=image_store,
            box_store=box_store,
        )

    def fill_from_cache(self) -> None:
        """Copy cached rows into the outputs, one shard in memory at a time."""
        if self.image_store is not None:
            where = _rows_by_key(self.image_keys, ~self.need_image & ~_dups(self.image_keys))
            keys = [k for k in where if k in self.image_store]

            def put_image(key: bytes, data: np.ndarray) -> None:
                self.out_image[where[key]] = data[0]

            self.image_store.read(keys, put_image)
        if self.box_store is not None:
            has = np.diff(self.box_offsets) > 0
            where = _rows_by_key(self.box_keys, ~self.need_box & has & ~_dups(self.box_keys))
            keys = [k for k in where if k in self.box_store]

            def put_boxes(key: bytes, data: np.ndarray) -> None:
                for r in where[key]:
                    self.out_box[self.box_offsets[r] : self.box_offsets[r + 1]] = data

            self.box_store.read(keys, put_boxes)

    def fill_duplicates(self) -> None:
        """Rows whose key repeats an earlier row's (same file listed twice) copy it."""
        if self.out_image is not None:
            for r, first in _duplicate_pairs(self.image_keys):
                self.out_image[r] = self.out_image[first]
        if self.out_box is not None:
            o = self.box_offsets
            for r, first in _duplicate_pairs(self.box_keys):
                self.out_box[o[r] : o[r + 1]] = self.out_box[o[first] : o[first + 1]]


def _key(path: str, mode: str) -> bytes:
    try:
        return image_key(str(path), mode)
    except OSError as exc:
        raise DatasetError(f"{path}: cannot read image file ({exc.strerror})") from None


def _needed(keys: list[bytes], store: ShardStore | None) -> np.ndarray:
    """True for the first row of every key that is not cached yet."""
    seen: set[bytes] = set()
    out = np.zeros(len(keys), dtype=bool)
    for r, k in enumerate(keys):
        if k not in seen and (store is None or k not in store):
            out[r] = True
        seen.add(k)
    return out


def _dups(keys: list[bytes]) -> np.ndarray:
    seen: set[bytes] = set()
    out = np.zeros(len(keys), dtype=bool)
    for r, k in enumerate(keys):
        out[r] = k in seen
        seen.add(k)
    return out


def _duplicate_pairs(keys: list[bytes]) -> list[tuple[int, int]]:
    first: dict[bytes, int] = {}
    pairs = []
    for r, k in enumerate(keys):
        if k in first:
            pairs.append((r, first[k]))
        else:
            first[k] = r
    return pairs


def _rows_by_key(keys: list[bytes], mask: np.ndarray) -> dict[bytes, list[int]]:
    out: dict[bytes, list[int]] = {}
    for r in np.flatnonzero(mask):
        out.setdefault(keys[r], []).append(int(r))
    return out


def _compute(plan: _Plan, bb: Backbone, cfg: _Settings, progress: bool | Progress) -> str:
    """Decode and embed every row the cache lacks, writing outputs and shards.

    Returns the runtime that ran the network (``none`` when nothing was computed).
    """
    todo = np.flatnonzero(plan.need_image | plan.need_box)
    if len(todo) == 0:
        return "none"
    bb = bb.with_runtime(cfg.runtime, cfg.threads)
    batch = cfg.batch_size or auto_batch_size(cfg.device, plan.image_pre.size)
    crop_batch = cfg.crop_batch_size or auto_batch_size(cfg.device, plan.crop.size)
    workers = cfg.workers if len(todo) > batch else 0  # a single batch: no process start-up
    data = DecodeDataset(
        plan.paths,
        plan.sizes,
        plan.box_offsets,
        plan.box_xyxy,
        todo,
        plan.need_image,
        plan.need_box,
        plan.image_pre,
        plan.crop,
        plan.decode_factors,
    )
    loader = make_loader(data, batch, workers, pin_memory=cfg.device.type == "cuda")
    img_writer = plan.image_store.writer(cfg.shard_images) if plan.image_store else None
    box_writer = plan.box_store.writer(cfg.shard_images) if plan.box_store else None
    report, close = _progress(progress, len(todo))
    done = 0
    saved_threads = torch.get_num_threads()
    torch.set_num_threads(cfg.threads)
    try:
        with torch.inference_mode():
            for b in loader:
                bad = b["rows"][~b["ok"]]
                if len(bad):
                    path = plan.paths[int(bad[0])]
                    raise DatasetError(f"{path}: cannot decode image (corrupt or not an image)")
                if len(b["images"]):
                    feats = bb.embed(b["images"]).numpy().astype(cfg.dtype, copy=False)
                    for r, f in zip(b["image_rows"].tolist(), feats, strict=True):
                        plan.out_image[r] = f
                        if img_writer:
                            img_writer.add(plan.image_keys[r], f)
                if len(b["crops"]):
                    parts = [bb.embed(c) for c in b["crops"].split(crop_batch)]
                    feats = torch.cat(parts).numpy().astype(cfg.dtype, copy=False)
                    start = 0
                    for r, cnt in zip(
                        b["crop_rows"].tolist(), b["crop_counts"].tolist(), strict=True
                    ):
                        block = feats[start : start + cnt]
                        plan.out_box[plan.box_offsets[r] : plan.box_offsets[r + 1]] = block
                        if box_writer:
                            box_writer.add(plan.box_keys[r], block)
                        start += cnt
                done += len(b["rows"])
                report(done)
    finally:
        torch.set_num_threads(saved_threads)
        for w in (img_writer, box_writer):
            if w is not None:
                w.flush()
        close()
    return bb.runtime


def _progress(progress: bool | Progress, total: int) -> tuple[Callable[[int], None], Callable]:
    if callable(progress):
        return (lambda done: progress(done, total)), (lambda: None)
    if not progress:
        return (lambda done: None), (lambda: None)
    from tqdm.auto import tqdm

    bar = tqdm(total=total, unit="img", desc="embed")

    def report(done: int) -> None:
        bar.update(done - bar.n)

    return report, bar.close
