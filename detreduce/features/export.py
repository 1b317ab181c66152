"""Export embeddings for use outside detreduce (``.npz`` or ``.parquet``).

``.npz``: arrays ``paths`` (absolute image paths, str) and ``embeddings`` (n × d), and
when the embeddings have box rows (``level='both'``) also ``image_indices`` (dataset
image index of each image row), ``box_embeddings`` (m × d), ``box_paths`` (the image
path of each box row), ``box_image`` (its dataset image index, as in ``image_indices``),
``box_index`` (the box's row in the dataset's boxes table) and ``box_class``.
``.parquet``: columns ``path`` (string) and ``embedding`` (fixed-size list of floats);
box rows go to a second file beside it, ``<stem>.boxes.parquet``, with columns
``path``, ``image_index``, ``box_index``, ``class`` and ``embedding``.
Each file is written under a temp name and renamed (:func:`detreduce.data.atomic.
atomic_path`): a reader never sees half a file; the box file is renamed first, so a
reader that finds the image file finds the box file of the same export.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from detreduce.data.atomic import atomic_path
from detreduce.errors import ConfigError, OutputExistsError
from detreduce.features.embed import Embeddings

FORMATS = (".npz", ".parquet")


def export_embeddings(
    emb: Embeddings,
    paths: Sequence[str] | np.ndarray | None,
    out: str | Path,
    *,
    overwrite: bool = False,
) -> Path:
    """Write the embeddings of ``emb`` to ``out`` (box rows too, when it has them).

    Returns the absolute path of ``out``; see the module docstring for the layout.

    Args:
        emb: embeddings computed with ``level='image'`` or ``'both'``.
        paths: one path per image row (None: ``emb.paths``); box rows get the path of
            their image.
        out: target file; the suffix picks the format (``.npz`` or ``.parquet``).
        overwrite: replace existing files.
    """
    out = Path(out).absolute()
    if out.suffix not in FORMATS:
        raise ConfigError(f"--out must end in {' or '.join(FORMATS)}, got {out.name!r}")
    if emb.image is None:
        raise ConfigError("no image embeddings to export; embed with level='image' or 'both'")
    paths = np.asarray(emb.paths if paths is None else paths, dtype=str).reshape(-1)
    if len(paths) != len(emb.image):
        raise ConfigError(f"got {len(paths)} paths for {len(emb.image)} embeddings")
    boxes = _box_columns(emb, paths) if emb.box is not None else None
    targets = [out] + ([boxes_path(out)] if boxes is not None and out.suffix == ".parquet" else [])
    for target in targets:
        if target.exists() and not overwrite:
            raise OutputExistsError(f"{target} exists; pass --overwrite to replace it")
    if out.suffix == ".npz":
        arrays = {"paths": paths, "embeddings": emb.image}
        if boxes is not None:
            arrays["image_indices"] = np.asarray(emb.image_indices, dtype=np.int64)
            arrays.update(boxes)
        with atomic_path(out) as tmp, open(tmp, "wb") as f:
            np.savez(f, **arrays)
        return out
    if boxes is not None:
        columns = {
            "path": boxes["box_paths"],
            "image_index": boxes["box_image"],
            "box_index": boxes["box_index"],
            "class": boxes["box_class"],
        }
        with atomic_path(targets[1]) as tmp:
            _write_parquet(tmp, columns, boxes["box_embeddings"])
    with atomic_path(out) as tmp:
        _write_parquet(tmp, {"path": paths}, emb.image)
    return out


def boxes_path(out: str | Path) -> Path:
    """The parquet file of box rows that goes with an image-row parquet ``out``."""
    out = Path(out)
    return out.with_name(f"{out.stem}.boxes{out.suffix}")


def _box_columns(emb: Embeddings, paths: np.ndarray) -> dict[str, np.ndarray]:
    """The ``box_*`` arrays of the ``.npz``; ``box_paths`` found through the image rows."""
    image_indices = np.asarray(emb.image_indices, dtype=np.int64)
    box_image = np.asarray(emb.box_image, dtype=np.int64)
    order = np.argsort(image_indices, kind="stable")
    pos = np.searchsorted(image_indices[order], box_image)
    pos = np.minimum(pos, max(len(order) - 1, 0))
    found = len(order) > 0 and bool((image_indices[order][pos] == box_image).all())
    if len(box_image) and not found:
        raise ConfigError(
            "some box rows belong to images without an image row; embed with level='both'"
        )
    rows = order[pos] if len(box_image) else np.zeros(0, np.int64)
    return {
        "box_embeddings": np.asarray(emb.box),
        "box_paths": paths[rows],
        "box_image": box_image,
        "box_index": np.asarray(emb.box_index, dtype=np.int64),
        "box_class": np.asarray(emb.box_class, dtype=np.int64),
    }


def _write_parquet(path: Path, columns: dict[str, np.ndarray], matrix: np.ndarray) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    n, d = matrix.shape
    flat = pa.array(np.ascontiguousarray(matrix).reshape(-1))
    table = {k: pa.array(v.tolist()) for k, v in columns.items()}
    table["embedding"] = pa.FixedSizeListArray.from_arrays(flat, d)
    pq.write_table(pa.table(table), path)
