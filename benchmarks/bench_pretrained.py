"""Pretrained start vs scratch: the same epochs on the full train split, mAP and seconds.

For each dataset (BCCD, aquarium) and each model (``yolo-mobilenetv2``: a YOLOv8n neck
and head on an ImageNet MobileNetV2 backbone, from :mod:`detreduce.train.zoo`;
``yolov8n.yaml``: YOLOv8n from random initialisation), export the full train split
(``select_and_export(..., method="full", fraction=1.0)``), train with the same settings
(10 epochs, imgsz 256, batch 8, ``nbs=8`` so every batch is an optimizer step, seed 0,
CPU, one torch thread and no loader workers: one core per process) and validate once on
the untouched val split. Every run keeps its ``result.json`` under ``--out``; a run that
has one is not trained again, so two processes (one per core) can split the grid and a
last call prints the whole table:

    python benchmarks/bench_pretrained.py --models yolov8n.yaml &
    python benchmarks/bench_pretrained.py --models yolo-mobilenetv2 &
    wait; python benchmarks/bench_pretrained.py --table
    python benchmarks/bench_pretrained.py --speed   # ms per training step, interleaved

Columns: dataset, model, epochs, mAP50-95, mAP50, training seconds (the metered phase:
model build, dataloaders and every epoch), seconds per epoch (training seconds /
epochs), and per dataset the pretrained/scratch ratio of mAP50-95 and of seconds.
Results and the commands that produced them: benchmarks/NOTES_pretrained.md.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

logging.getLogger("detreduce").setLevel(logging.WARNING)

#: The real datasets beside the repository.
SHARED = Path(__file__).resolve().parents[2] / "shared" / "datasets"
DATASETS = ("bccd", "aquarium")
PRETRAINED, SCRATCH = "yolo-mobilenetv2", "yolov8n.yaml"
MODELS = (PRETRAINED, SCRATCH)
TRAIN = {
    "epochs": 10, "imgsz": 256, "batch": 8, "device": "cpu", "seed": 0, "workers": 0, "threads": 1,
}  # fmt: skip
TRAIN_ARGS = {"nbs": 8}


def export_full(dataset: str, out: Path) -> Path:
    """The full train split of ``dataset`` as a data YAML under ``out/data/<dataset>``."""
    from detreduce.data.load import load_dataset
    from detreduce.selection import select_and_export

    target = out / "data" / dataset
    if (target / "data.yaml").is_file():
        return target / "data.yaml"
    ds = load_dataset(SHARED / dataset)
    return select_and_export(ds, target, method="full", fraction=1.0).data_yaml


def run(dataset: str, model: str, out: Path) -> Path:
    """Train ``model`` on ``dataset`` (skipped when its result.json exists)."""
    from detreduce.train import RESULT_FILE, train_yolo

    run_dir = out / "runs" / dataset / model.replace(".", "_")
    if not (run_dir / RESULT_FILE).is_file():
        data_yaml = export_full(dataset, out)
        print(f"training {model} on {dataset} ...", flush=True)
        train_yolo(data_yaml, out_dir=run_dir, model=model, train_args=TRAIN_ARGS, **TRAIN)
    return run_dir / RESULT_FILE


def table(out: Path) -> str:
    """The Markdown table of every finished run under ``out``."""
    import json

    from detreduce.train import RESULT_FILE, TrainResult

    rows = [
        "| dataset | model | epochs | mAP50-95 | mAP50 | train s | s/epoch | pretrained/scratch |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for dataset in DATASETS:
        results = {}
        for model in MODELS:
            path = out / "runs" / dataset / model.replace(".", "_") / RESULT_FILE
            if path.is_file():
                results[model] = TrainResult.from_dict(json.loads(path.read_text()))
        for model, r in results.items():
            ratio = "–"
            if model == PRETRAINED and SCRATCH in results:
                s = results[SCRATCH]
                ratio = (
                    f"mAP50-95 ×{r.map50_95 / s.map50_95:.2f}, "
                    f"s ×{r.seconds_training / s.seconds_training:.2f}"
                )
            rows.append(
                f"| {dataset} | {model} | {r.epochs} | {r.map50_95:.3f} | {r.map50:.3f} | "
                f"{r.seconds_training:.0f} | {r.seconds_training / r.epochs:.1f} | {ratio} |"
            )
    return "\n".join(rows)


def speed(models: list[str], imgsz: int = 256, batch: int = 8, iters: int = 10) -> str:
    """Milliseconds per training step (forward + backward, batch of random images, one
    torch thread, deterministic algorithms as training uses them) of each model, the
    models interleaved step by step so that other load on the machine hits them alike."""
    import statistics
    import time

    import torch

    from detreduce.train.offline import import_ultralytics
    from detreduce.train.zoo import resolve_model

    import_ultralytics()
    from ultralytics.nn.tasks import DetectionModel

    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True, warn_only=True)
    nets = {}
    for name in models:
        resolved = resolve_model(name)
        with resolved.active():
            nets[name] = DetectionModel(resolved.source, nc=3, verbose=False).train()
    x = torch.rand(batch, 3, imgsz, imgsz)
    times: dict[str, list[float]] = {name: [] for name in models}
    for step in range(iters + 1):
        for name, net in nets.items():
            t0 = time.perf_counter()
            sum(t.float().mean() for t in _tensors(net(x))).backward()
            net.zero_grad(set_to_none=True)
            if step:  # the first step warms up allocators and kernels
                times[name].append(time.perf_counter() - t0)
    rows = [f"| model | params | ms / step (median of {iters}) |", "|---|---|---|"]
    for name, net in nets.items():
        n = sum(p.numel() for p in net.parameters())
        rows.append(f"| {name} | {n / 1e6:.2f} M | {1000 * statistics.median(times[name]):.0f} |")
    return "\n".join(rows)


def _tensors(obj):
    import torch

    if isinstance(obj, torch.Tensor):
        yield obj
    elif isinstance(obj, dict):
        for v in obj.values():
            yield from _tensors(v)
    elif isinstance(obj, list | tuple):
        for v in obj:
            yield from _tensors(v)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", default=",".join(DATASETS))
    parser.add_argument("--models", default=",".join(MODELS))
    parser.add_argument("--out", type=Path, default=Path("runs/bench_pretrained"))
    parser.add_argument("--table", action="store_true", help="Only print the table.")
    parser.add_argument(
        "--speed", action="store_true", help="Only time training steps of --models, interleaved."
    )
    args = parser.parse_args(argv)
    if args.speed:
        print(speed(args.models.split(",")))
        return 0
    out = args.out.absolute()
    if not args.table:
        for dataset in args.datasets.split(","):
            for model in args.models.split(","):
                run(dataset, model, out)
    print(table(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
