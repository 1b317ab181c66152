"""``detreduce embed``: image and box-crop embeddings of a dataset, cached."""

from __future__ import annotations

from pathlib import Path

import typer

from detreduce.cli.app import app
from detreduce.cli.common import (
    ON_ERROR_DEFAULT,
    AnnotationsOpt,
    DataArg,
    FormatOpt,
    ImagesOpt,
    OnErrorOpt,
    ValFractionOpt,
    ValOpt,
)
from detreduce.config import default


@app.command()
def embed(
    data: DataArg,
    backbone: str = typer.Option(
        default("features.backbone"),
        help="Registry name (mobilenet_v2, efficientnet_lite0, yolo, hist_hog) or any "
        "torchvision/timm classifier name.",
    ),
    level: str = typer.Option(default("features.level"), help="image, box or both."),
    device: str = typer.Option(default("features.device"), help="auto, cpu or cuda:N."),
    batch_size: int | None = typer.Option(
        default("features.batch_size"), help="Images per forward pass (default: auto)."
    ),
    weights: str | None = typer.Option(
        None, help="Local checkpoint; for --backbone yolo an Ultralytics .pt or .yaml."
    ),
    split: str | None = typer.Option(None, help="Embed only this split (default: all)."),
    out: Path | None = typer.Option(
        None, help="Also export image embeddings to this .npz or .parquet file."
    ),
    overwrite: bool = typer.Option(False, help="Replace an existing --out file."),
    workers: int | None = typer.Option(
        default("features.workers"), help="Decode processes (default: auto)."
    ),
    threads: int | None = typer.Option(
        default("features.threads"),
        help="Torch CPU threads (default: cores minus workers; 1 on a busy machine).",
    ),
    image_size: int | None = typer.Option(
        default("features.image_size"), help="Input side for whole images (default: backbone's)."
    ),
    runtime: str = typer.Option(
        default("features.runtime"),
        help="auto (ONNX Runtime on CPU when installed, else torch), torch or onnxruntime.",
    ),
    dtype: str = typer.Option(default("features.dtype"), help="float32 or float16."),
    cache: bool = typer.Option(default("features.cache"), help="Reuse/store cached rows."),
    allow_download: bool = typer.Option(
        default("features.allow_download"),
        help="Let torchvision/timm download weights missing offline.",
    ),
    backend: str = typer.Option(
        default("features.backend"),
        help="local (this process) or ray: shards of --shard-images images embedded by "
        "Ray actors, one model each (one per GPU when the cluster has GPUs).",
    ),
    ray_address: str | None = typer.Option(
        default("features.ray_address"),
        help="Backend ray: unset starts Ray on this machine; auto or HOST:PORT joins a "
        "running cluster (images and the cache root must be on a filesystem every node "
        "mounts at the same path).",
    ),
    ray_actors: int | None = typer.Option(
        default("features.ray_actors"),
        help="Backend ray: actors (default: one per GPU, else cluster CPUs / --cpus-per-actor).",
    ),
    cpus_per_actor: int = typer.Option(
        default("features.cpus_per_actor"), help="Backend ray: CPUs (torch threads) per actor."
    ),
    shard_images: int = typer.Option(
        default("features.shard_images"),
        help="Images per cache shard (and per Ray task): an interrupted run loses at most one.",
    ),
    format: FormatOpt = None,
    images: ImagesOpt = None,
    annotations: AnnotationsOpt = None,
    val: ValOpt = None,
    val_fraction: ValFractionOpt = None,
    on_error: OnErrorOpt = ON_ERROR_DEFAULT,
) -> None:
    """Embed every image (and/or box crop) with a pretrained backbone; cached on disk.

    A second run reuses the cache; changed or added images are the only ones recomputed.
    Bad items (unreadable images, malformed labels) are skipped and summarized with
    --on-error warn, or stop the command with raise. Options and an existing --out
    (without --overwrite) are checked before any image is read.
    """
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    from detreduce.data.load import load_dataset
    from detreduce.errors import ConfigError, OutputExistsError
    from detreduce.settings import DataSettings, FeatureSettings

    if out is not None and Path(out).exists() and not overwrite:
        raise OutputExistsError(f"{out} exists; pass --overwrite to replace it")
    # The same object embed_dataset takes, built (and checked) once from the options.
    settings = FeatureSettings.build(
        backbone=backbone,
        level=level,
        device=device,
        batch_size=batch_size,
        workers=workers,
        threads=threads,
        image_size=image_size,
        runtime=runtime,
        dtype=dtype,
        cache=cache,
        allow_download=allow_download,
        backend=backend,
        ray_address=ray_address,
        ray_actors=ray_actors,
        cpus_per_actor=cpus_per_actor,
        shard_images=shard_images,
    )
    reading = DataSettings.build(
        on_error=on_error,
        images=images,
        annotations=annotations,
        val=val,
        val_fraction=val_fraction,
    )
    ds = load_dataset(data, format=format, settings=reading)
    from detreduce.features import embed_dataset, export_embeddings, get_backbone  # torch

    indices = None
    if split is not None:
        indices = ds.split_indices(split)
        if len(indices) == 0:
            raise ConfigError(f"--split {split!r} has no images; splits: {', '.join(ds.splits)}")
    model = get_backbone(settings.backbone, weights, allow_download=settings.allow_download)
    console = Console(stderr=True)
    columns = (
        TextColumn("embed"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[rate]} img/s"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=console, transient=True) as bar:
        task = bar.add_task("embed", total=None, rate="-")

        def report(done: int, total: int) -> None:
            elapsed = bar.tasks[task].elapsed or 0.0
            rate = f"{done / elapsed:.1f}" if elapsed > 0 else "-"
            bar.update(task, completed=done, total=total, rate=rate)

        emb = embed_dataset(
            ds, model, settings=settings, indices=indices, weights=weights, progress=report
        )
    rate = f" at {emb.computed / emb.seconds:.1f} img/s" if emb.computed and emb.seconds else ""
    typer.echo(
        f"{emb.num_images} images ({emb.computed} computed{rate}, {emb.cached} from cache), "
        f"{emb.num_boxes} boxes; backbone {emb.backbone} ({emb.dim}-d, weights "
        f"{emb.weights_hash}, {emb.runtime}) in {emb.seconds:.1f} s"
    )
    if emb.worker_energy is not None and emb.worker_energy.kwh is not None:
        typer.echo(f"Ray actors: {emb.worker_energy.kwh:.3g} kWh ({emb.worker_energy.cpu_mode})")
    if out is not None:
        path = export_embeddings(emb, None, out, overwrite=overwrite)
        typer.echo(f"wrote {path}")
