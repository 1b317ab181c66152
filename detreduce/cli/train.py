"""``detreduce train``: train YOLO on a data YAML, validate, and report mAP, seconds and kWh."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from detreduce.cli.app import app
from detreduce.cli.common import (
    ON_ERROR_DEFAULT,
    AllowDownloadOpt,
    BudgetOpt,
    MaxEpochsOpt,
    OnErrorOpt,
    PatienceOpt,
    TrainArgOpt,
    ValEveryOpt,
    parse_key_values,
)
from detreduce.config import default, output_root

if TYPE_CHECKING:
    from detreduce.train.result import TrainResult


def _fmt(value: float | None, spec: str) -> str:
    return "n/a" if value is None else format(value, spec)


@app.command()
def train(
    data_yaml: Path = typer.Argument(
        ...,
        help="Ultralytics data YAML (e.g. the one `detreduce reduce` wrote).",
        show_default=False,
    ),
    model: str = typer.Option(
        default("train.model"),
        help="A zoo model with an ImageNet-pretrained backbone, offline (yolo-mobilenetv2; "
        "list: `detreduce models`), a model YAML (from scratch) or a .pt file.",
    ),
    epochs: int = typer.Option(default("train.epochs"), help="Epochs (before budget scaling)."),
    imgsz: int = typer.Option(default("train.imgsz"), help="Train/val image size in pixels."),
    batch: int = typer.Option(default("train.batch"), help="Batch size."),
    device: str = typer.Option(default("train.device"), help="auto, cpu, 0, 0,1 ..."),
    seed: int = typer.Option(default("train.seed"), help="Seed (training is deterministic)."),
    workers: str = typer.Option(
        str(default("train.workers")),
        help="Train loader processes, or auto (0 on <= 2 CPU cores; Ultralytics' 8 on a GPU).",
    ),
    threads: str = typer.Option(
        str(default("train.threads")),
        help="Torch CPU threads, or auto (the machine's cores; 1 when others load it; "
        "on a GPU Ultralytics' own). Recorded in result.json.",
    ),
    budget: BudgetOpt = default("train.budget"),
    max_epochs: MaxEpochsOpt = default("train.max_epochs"),
    patience: PatienceOpt = default("train.patience"),
    val_every: ValEveryOpt = str(default("train.val_every")),
    fraction: float = typer.Option(
        default("train.fraction"), help="This split's share of the full train set (budget=steps)."
    ),
    max_epoch_scale: float = typer.Option(
        default("train.max_epoch_scale"), help="budget=steps trains at most this x epochs."
    ),
    out: Path | None = typer.Option(
        None, help="Output folder (default: runs/train/<dataset folder name>)."
    ),
    overwrite: bool = typer.Option(False, help="Replace a finished run in the output folder."),
    verbose: bool = typer.Option(
        default("train.verbose"), help="Show Ultralytics' own logs and progress bars."
    ),
    allow_download: AllowDownloadOpt = default("train.allow_download"),
    cpu_watts: float | None = typer.Option(
        default("train.energy_cpu_watts"),
        help="CPU power in watts for the kWh estimate on hosts without a RAPL counter "
        "(default: codecarbon's TDP guess; ignored where RAPL works).",
    ),
    train_arg: TrainArgOpt = [],  # noqa: B006 - typer reads the default, never mutates it
    policy: str = typer.Option(
        "full",
        help="Training policy that prunes inside the trainer: full (every image every "
        "epoch), infobatch, crest; set a parameter as infobatch@prune_ratio=0.75 "
        "(list: `detreduce methods --kind training`).",
    ),
    on_error: OnErrorOpt = ON_ERROR_DEFAULT,
) -> None:
    """Train YOLO on DATA_YAML's train split, validate on its full val split.

    Writes OUT/result.json (mAP50, mAP50-95, per-class AP, precision, recall, seconds and
    kWh of training and validation, the energy mode codecarbon used) and Ultralytics'
    run under OUT/train. Nothing is downloaded.

    Before training, the data YAML's images and label files are read through
    detreduce's loader: --on-error raise stops at the first problem; warn (default)
    prints the problems and trains on the data YAML unchanged (Ultralytics then applies
    its own label checks; train on `detreduce reduce DATA --fraction 1.0` output to
    train on detreduce's cleaned labels). Every option, and an existing result in OUT
    (without --overwrite), is checked before any data is read.
    """
    from detreduce.energy import EnergyMeter
    from detreduce.methods import get_method
    from detreduce.settings import TrainSettings
    from detreduce.train import RESULT_FILE, train_yolo

    policy_obj = get_method(policy, kind="training").create()  # bad names/values: one line

    # The same objects train_yolo takes, built (and checked) once from the options.
    settings = TrainSettings.build(
        model=model,
        epochs=epochs,
        imgsz=imgsz,
        batch=batch,
        device=device,
        seed=seed,
        workers=workers,
        threads=threads,
        budget=budget,
        fraction=fraction,
        max_epoch_scale=max_epoch_scale,
        max_epochs=max_epochs,
        patience=patience,
        val_every=val_every,
        verbose=verbose,
        allow_download=allow_download,
    )
    meter = EnergyMeter({"cpu_watts": cpu_watts})
    train_args = parse_key_values(train_arg)
    out_dir = out or output_root() / "train" / Path(data_yaml).absolute().parent.name
    console = Console()
    progress = Progress(
        TextColumn("[bold]training"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("epochs"),
        TimeElapsedColumn(),
        console=console,
        transient=True,
        disable=verbose,
    )
    task = progress.add_task("train", total=None)

    def on_epoch_end(done: int, total: int) -> None:
        if not progress.live.is_started:  # from the first epoch on: checks print alone
            progress.start()
        progress.update(task, completed=done, total=total)

    try:
        result = train_yolo(
            data_yaml,
            out_dir=out_dir,
            settings=settings,
            energy=meter,
            on_error=on_error,
            overwrite=overwrite,
            train_args=train_args,
            policy=policy_obj,
            on_epoch_end=on_epoch_end,
        )
    finally:
        if progress.live.is_started:
            progress.stop()
    for table in _result_tables(result):
        console.print(table)
    console.print(f"wrote {Path(result.out_dir) / RESULT_FILE}", soft_wrap=True)


def _result_tables(result: TrainResult) -> tuple[Table, Table]:
    """The run's headline figures, and AP per class on val."""
    row = result.to_dict()
    table = Table(title=f"{Path(result.model).name} on {result.data_yaml}", show_header=False)
    table.add_column("what")
    table.add_column("value", justify="right")
    capped = " (capped)" if result.budget_capped else ""
    table.add_row("budget", f"{result.budget}, fraction {result.fraction:g}{capped}")
    table.add_row(
        "epochs / steps / images seen",
        f"{result.epochs} / {result.steps} / {result.images_seen}",
    )
    table.add_row(
        "device / torch threads / workers", f"{result.device} / {result.threads} / {result.workers}"
    )
    if len(result.curve) > 1 or result.budget == "converge":
        best = max(result.curve, key=lambda p: p["map50_95"])
        stop = ", stopped on a plateau" if result.stopped_early else ""
        table.add_row(
            "validations during training",
            f"{len(result.curve)} ({result.seconds_validation_in_training:.1f} s), best "
            f"mAP50-95 {best['map50_95']:.4f} at epoch {best['epoch']}{stop}",
        )
    table.add_row("mAP50-95", f"{result.map50_95:.4f}")
    table.add_row("mAP50", f"{result.map50:.4f}")
    table.add_row("precision / recall", f"{result.precision:.3f} / {result.recall:.3f}")
    table.add_row(
        "seconds (train + val)", f"{result.seconds_training:.1f} + {result.seconds_validation:.1f}"
    )
    table.add_row(
        "kWh (cpu / gpu / ram)",
        f"{_fmt(row['kwh_total'], '.3g')} ({_fmt(row['kwh_cpu'], '.2g')} / "
        f"{_fmt(row['kwh_gpu'], '.2g')} / {_fmt(row['kwh_ram'], '.2g')})",
    )
    table.add_row("kg CO2", f"{_fmt(row['co2_kg'], '.3g')} ({row['country']})")
    table.add_row("power mode (cpu / gpu)", f"{row['cpu_power_mode']} / {row['gpu_power_mode']}")
    per_class = Table(title="per-class AP on val (n/a: no val boxes)")
    for col in ("class", "AP50", "AP50-95"):
        per_class.add_column(col, justify="left" if col == "class" else "right")
    for name in result.class_names:
        per_class.add_row(
            name,
            _fmt(result.per_class_ap50.get(name), ".4f"),
            _fmt(result.per_class_ap.get(name), ".4f"),
        )
    return table, per_class
