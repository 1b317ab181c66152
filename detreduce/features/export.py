"""Export image embeddings for use outside detreduce (``.npz`` or ``.parquet``).

``.npz``: arrays ``paths`` (absolute image paths, str) and ``embeddings`` (n × d).
``.parquet``: columns ``path`` (string) and ``embedding`` (fixed-size list of floats).
Written under a temp name and renamed: a reader never sees half a file.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Sequence
from pathlib import Path

import numpy as np

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
    """Write the image-level embeddings of ``emb`` to ``out``; returns its absolute path.

    Args:
        emb: embeddings computed with ``level='image'`` or ``'both'``.
        paths: one path per image row (None: ``emb.paths``).
        out: target file; the suffix picks the format (``.npz`` or ``.parquet``).
        overwrite: replace an existing file.
    """
    out = Path(out).absolute()
    if out.suffix not in FORMATS:
        raise ConfigError(f"--out must end in {' or '.join(FORMATS)}, got {out.name!r}")
    if emb.image is None:
        raise ConfigError("no image embeddings to export; embed with level='image' or 'both'")
    paths = np.asarray(emb.paths if paths is None else paths, dtype=str).reshape(-1)
    if len(paths) != len(emb.image):
        raise ConfigError(f"got {len(paths)} paths for {len(emb.image)} embeddings")
    if out.exists() and not overwrite:
        raise OutputExistsError(f"{out} exists; pass --overwrite to replace it")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.stem}.{uuid.uuid4().hex[:8]}.tmp{out.suffix}")
    try:
        if out.suffix == ".npz":
            with open(tmp, "wb") as f:
                np.savez(f, paths=paths, embeddings=emb.image)
        else:
            _write_parquet(tmp, paths, emb.image)
        os.replace(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)
    return out


def _write_parquet(path: Path, paths: np.ndarray, matrix: np.ndarray) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    n, d = matrix.shape
    flat = pa.array(np.ascontiguousarray(matrix).reshape(-1))
    column = pa.FixedSizeListArray.from_arrays(flat, d)
    pq.write_table(pa.table({"path": pa.array(paths.tolist()), "embedding": column}), path)
