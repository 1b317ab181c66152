"""``detreduce sweep``: methods × fractions × seeds with full and random baselines, resumable."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import typer

from detreduce.cli.app import app
from detreduce.cli.common import (
    ON_ERROR_DEFAULT,
    AllowDownloadOpt,
    BudgetOpt,
    DataArg,
    FormatOpt,
    MaxEpochsOpt,
    OnErrorOpt,
    PatienceOpt,
    TrainArgOpt,
    ValEveryOpt,
    parse_key_values,
)
from detreduce.config import default


def _csv(text: str, kind: type = str) -> list:
    """``"a, b,c"`` → ``["a", "b", "c"]`` converted with ``kind``; a bad item is a ConfigError."""
    from detreduce.errors import ConfigError

    items = [t.strip() for t in text.split(",") if t.strip()]
    try:
        return [kind(t) for t in items]
    except ValueError:
        raise ConfigError(
            f"cannot read {text!r} as a comma-separated list of {kind.__name__}"
        ) from None


def _join(values) -> str:
    return ",".join(str(v) for v in values)


def command_line() -> str:
    """The command as typed (recorded in sweep.json and quoted in the report)."""
    import shlex
    import sys

    return "detreduce " + shlex.join(sys.argv[1:])


def sweep_progress():
    """A rich progress bar and an ``on_event`` callback that drives it (run i/N).

    The bar (a context manager) shows from the first event on, so an error raised while
    the arguments are checked prints alone, on one line.
    """
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    console = Console(stderr=True)
    progress = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
    )
    task = progress.add_task("sweep", total=None)

    @contextmanager
    def bar() -> Iterator[None]:
        try:
            yield
        finally:
            if progress.live.is_started:  # (stop() prints a newline even when never started)
                progress.stop()

    def on_event(ev) -> None:
        if not progress.live.is_started:
            progress.start()
        if ev.kind == "embed":
            progress.update(task, description="embedding the train split (once per sweep)")
            return
        if ev.kind == "proxy":
            progress.update(task, description="proxy run: scoring every image by its loss")
            return
        progress.update(task, total=ev.total)
        if ev.kind == "skip":
            progress.update(task, completed=ev.index)
        elif ev.kind in ("start", "epoch"):
            s = ev.spec
            text = f"run {ev.index}/{ev.total}: {s.method} f={s.fraction:g} seed={s.seed}"
            if ev.kind == "epoch":
                text += f" (epoch {ev.row['epoch']}/{ev.row['epochs']})"
            progress.update(task, description=text)
        elif ev.kind == "done":
            r = ev.row or {}
            if r.get("status") == "ok":
                progress.console.print(
                    f"[green]✓[/] {r['run_id']}: mAP50-95 {float(r.get('map50_95') or 0):.3f}, "
                    f"{float(r.get('kwh_total') or 0):.2e} kWh, {float(r.get('seconds') or 0):.0f} s"
                )
            else:
                progress.console.print(f"[red]✗[/] {r.get('run_id')}: {r.get('error')}")
            progress.update(task, completed=ev.index)

    return bar(), on_event


@app.command()
def sweep(
    data: DataArg,
    methods: str = typer.Option(
        _join(default("sweep.methods")),
        help="Comma-separated methods (see `detreduce methods`); random and full data are always added. "
        "ultralytics-fraction is Ultralytics' fraction= (first N sorted files).",
    ),
    fractions: str = typer.Option(
        _join(default("sweep.fractions")),
        help="Comma-separated kept shares of the train split, e.g. 0.1,0.25,0.5.",
    ),
    seeds: str = typer.Option(
        _join(default("sweep.seeds")), help="Comma-separated seeds, e.g. 0,1,2."
    ),
    out: Path | None = typer.Option(None, help="Sweep folder (default: runs/sweep-<dataset>)."),
    model: str = typer.Option(
        default("train.model"),
        help="Zoo model (yolo-mobilenetv2; `detreduce models`), model YAML or .pt path.",
    ),
    epochs: int = typer.Option(default("train.epochs"), help="Epochs of the full-data run."),
    imgsz: int = typer.Option(
        default("train.imgsz"), help="Training and validation image size (pixels)."
    ),
    batch: int = typer.Option(default("train.batch"), help="Images per batch."),
    device: str = typer.Option(
        default("train.device"),
        help="auto, cpu, 0, 0,1 (Ultralytics device) for training and for embedding.",
    ),
    budget: BudgetOpt = default("train.budget"),
    max_epochs: MaxEpochsOpt = default("train.max_epochs"),
    patience: PatienceOpt = default("train.patience"),
    val_every: ValEveryOpt = str(default("train.val_every")),
    allow_download: AllowDownloadOpt = default("train.allow_download"),
    workers: str = typer.Option(
        str(default("train.workers")), help="Train loader processes, or auto (as in `train`)."
    ),
    threads: str = typer.Option(
        str(default("train.threads")), help="Torch CPU threads, or auto (as in `train`)."
    ),
    backbone: str | None = typer.Option(
        None, help="Embedding backbone (default: features.backbone)."
    ),
    balance: str | None = typer.Option(
        None, help="none, classes or classes+boxes (default: balance.mode)."
    ),
    level: str = typer.Option(
        default("sweep.level"), help="Select on image or box (crop) embeddings."
    ),
    backend: str = typer.Option(
        default("sweep.backend"),
        help="Trial runner: local runs trials one after another in this process; ray runs "
        "each as a Ray task (this machine, or a cluster with --ray-address).",
    ),
    ray_address: str | None = typer.Option(
        default("sweep.ray_address"),
        help="--backend ray: auto or HOST:PORT joins a running Ray cluster (default: start "
        "Ray on this machine).",
    ),
    cpus_per_trial: float = typer.Option(
        default("sweep.cpus_per_trial"), help="--backend ray: CPUs reserved per trial."
    ),
    gpus_per_trial: float = typer.Option(
        default("sweep.gpus_per_trial"), help="--backend ray: GPUs reserved per trial."
    ),
    retry_failed: bool = typer.Option(
        default("sweep.retry_failed"), help="Retry runs recorded as failed when resuming."
    ),
    train_arg: TrainArgOpt = [],  # noqa: B006 - typer reads the default, never mutates it
    report: bool = typer.Option(True, help="Write report.md and plots when the sweep ends."),
    format: FormatOpt = None,
    on_error: OnErrorOpt = ON_ERROR_DEFAULT,
    overwrite: bool = typer.Option(
        False,
        "--overwrite",
        "--force-new",
        help="Discard the sweep already in --out and start afresh.",
    ),
    cpu_watts: float | None = typer.Option(
        default("train.energy_cpu_watts"),
        help="CPU power in watts for the kWh estimate on hosts without a RAPL counter "
        "(default: codecarbon's TDP guess; ignored where RAPL works).",
    ),
) -> None:
    """Train YOLO on reduced splits of DATA for every method × fraction × seed, and on full data.

    Each finished run is appended to OUT/results.csv at once; rerunning the same
    command skips finished runs, so an interrupted sweep resumes where it stopped.
    """
    from rich.console import Console

    from detreduce.settings import (
        BalanceSettings,
        EnergySettings,
        FeatureSettings,
        SweepSettings,
        TrainSettings,
    )
    from detreduce.sweep import run_sweep

    # The same objects run_sweep takes, built (and checked) once from the options.
    settings = dict(
        sweep=SweepSettings.build(
            methods=_csv(methods),
            fractions=_csv(fractions, float),
            seeds=_csv(seeds, int),
            level=level,
            backend=backend,
            ray_address=ray_address,
            cpus_per_trial=cpus_per_trial,
            gpus_per_trial=gpus_per_trial,
            retry_failed=retry_failed,
        ),
        train=TrainSettings.build(
            model=model,
            epochs=epochs,
            imgsz=imgsz,
            batch=batch,
            device=device,
            budget=budget,
            max_epochs=max_epochs,
            patience=patience,
            val_every=val_every,
            workers=workers,
            threads=threads,
            allow_download=allow_download,
        ),
        features=FeatureSettings.build(backbone=backbone, device=device),
        balance=BalanceSettings.build(mode=balance),
        energy=EnergySettings.build(cpu_watts=cpu_watts),
    )
    train_args = parse_key_values(train_arg)
    progress, on_event = sweep_progress()
    with progress, _resume_hint(out):
        result = run_sweep(
            data,
            out,
            **settings,
            train_args=train_args,
            format=format,
            on_error=on_error,
            overwrite=overwrite,
            on_event=on_event,
            command=command_line(),
        )
    console = Console()
    console.print(
        f"{result.total} runs: {result.ran} ran now ({result.failed} failed), "
        f"{result.skipped} finished before. Results: {result.results}",
        soft_wrap=True,
    )
    from detreduce.report.tables import load_sweep, one_line_answer, summary_table

    answer = one_line_answer(summary_table(load_sweep(result.out)[0]))
    if answer:
        console.print(f"[bold]{answer}[/]", soft_wrap=True)
    if report:
        from detreduce.report import write_report

        console.print(f"Report: {write_report(result.out)}", soft_wrap=True)
    else:
        console.print(f"Write the report: detreduce report {result.out}", soft_wrap=True)


@contextmanager
def _resume_hint(out: Path | None) -> Iterator[None]:
    """On Ctrl+C / SIGTERM, say what was kept and how to go on, then stop."""
    try:
        yield
    except KeyboardInterrupt:
        where = f" in {out}/results.csv" if out else ""
        logging.getLogger("detreduce").warning(
            "sweep stopped: finished runs are kept%s; rerun the same command to resume", where
        )
        raise
