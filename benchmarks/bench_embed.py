"""Embedding throughput vs the seed paper's naive loop, and peak memory vs dataset size.

``speed``: images/s and crops/s of ``embed_dataset`` (mobilenet_v2, defaults: 224 px
squash, crops at 112 px, batched, DataLoader decode workers) side by side with the
naive baseline the seed's scripts use: one image per forward pass at native resolution,
PIL decode, a per-image Python loop, and one forward pass per box crop at its native
size. Same weights, same machine, one run; cache off.

``quality``: leave-one-out nearest-class-centroid accuracy of aquarium box-crop
embeddings per backbone and crop size (what tests/test_features_real.py asserts).

``memory``: peak RSS growth while embedding N rows (hard links to a few small JPEGs, so
every row has its own cache key), each size in a fresh subprocess; the growth beyond
the output array stays flat when rows stream to cache shards.

    python benchmarks/bench_embed.py speed --data ../shared/datasets/bccd --limit 100
    python benchmarks/bench_embed.py memory --sizes 10000,100000
    python benchmarks/bench_embed.py quality --crop-sizes 64,96,112  # NCC of crop embeddings
    python benchmarks/bench_embed.py speed --variants auto,torch,1:1:8,0:1:8:64  # w:threads:batch[:crop]

Results and the commands that produced them: benchmarks/NOTES_embed.md.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

logging.getLogger("detreduce").setLevel(logging.ERROR)

#: The real datasets beside the repository (override with --data).
SHARED = Path(__file__).resolve().parents[2] / "shared" / "datasets"


# ------------------------------------------------------------------ speed
def naive_embed(ds, level: str, device: str = "cpu") -> tuple[float, int, int]:
    """The seed scripts' loop: PIL decode, native size, batch of one, per box too.

    It runs detreduce's own torch module (BN folded, channels_last), which is faster
    than the stock torchvision model the seed used, so the speedups are conservative.
    """
    import torch
    import torchvision.transforms.functional as TF
    from PIL import Image

    from detreduce.features import get_backbone

    net = get_backbone("mobilenet_v2").module.to(device)  # same weights, pooled features
    mean, std = [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]
    images, crops = 0, 0
    t0 = time.perf_counter()
    with torch.no_grad():
        for i, path in enumerate(ds.image_paths):
            img = Image.open(path).convert("RGB")
            if level in ("image", "both"):
                x = TF.normalize(TF.to_tensor(img), mean, std)[None].to(device)
                f = net(x).cpu()
                _ = (f / f.norm(dim=1, keepdim=True)).numpy()
                images += 1
            if level in ("box", "both"):
                for box in ds.box_xyxy[ds.box_image == i]:
                    x1, y1, x2, y2 = (int(v) for v in box)
                    patch = img.crop((x1, y1, max(x2, x1 + 1), max(y2, y1 + 1)))
                    x = TF.normalize(TF.to_tensor(patch), mean, std)[None].to(device)
                    f = net(x).cpu()
                    _ = (f / f.norm(dim=1, keepdim=True)).numpy()
                    crops += 1
    return time.perf_counter() - t0, images, crops


def ours_embed(
    ds,
    level: str,
    workers=None,
    batch_size=None,
    threads=None,
    crop_size=None,
    runtime=None,
    device="cpu",
):
    from detreduce.features import embed_dataset, get_backbone

    bb = get_backbone("mobilenet_v2")
    t0 = time.perf_counter()
    emb = embed_dataset(
        ds,
        bb,
        level,
        cache=False,
        device=device,
        workers=workers,
        batch_size=batch_size,
        threads=threads,
        crop_size=crop_size,
        runtime=runtime,
    )
    seconds = time.perf_counter() - t0
    n_img = emb.num_images if level in ("image", "both") else 0
    return seconds, n_img, emb.num_boxes


def speed(args) -> None:
    import torch

    from detreduce.data.load import load_dataset
    from detreduce.features.embed import auto_threads

    # The baseline gets the same torch thread policy as detreduce's default, so the
    # ratio measures the pipeline, not OpenMP contention on a busy machine.
    threads = args.threads or auto_threads(0)

    ds = load_dataset(args.data)
    if args.split:
        ds = ds.split(args.split)
    if args.limit:
        ds = ds.subset(np.arange(min(args.limit, ds.num_images)))
    print(
        f"data: {os.path.relpath(args.data)} split={args.split} images={ds.num_images} boxes={ds.num_boxes}; "
        f"device={args.device}, torch threads={threads}, cores={os.cpu_count()}, "
        f"load average={os.getloadavg()[0]:.1f}"
    )
    from detreduce.features import get_backbone

    t0 = time.perf_counter()
    bb = get_backbone("mobilenet_v2").to(args.device)
    runtime = bb.with_runtime("auto", threads).runtime
    print(
        f"runtime auto -> {runtime}: export/load {time.perf_counter() - t0:.1f} s (once per weights)"
    )
    rows = []
    for level in args.levels.split(","):
        torch.set_num_threads(threads)
        base = naive_embed(ds, level, args.device)
        rows.append(("naive (seed loop)", level, *base, None))
        variants = [v for v in args.variants.split(",") if v] or ["auto"]
        for v in variants:
            label, workers, batch = "detreduce", None, None
            torch.set_num_threads(threads)
            t, crop, runtime = None, None, None
            if v == "torch":
                label, runtime = "detreduce runtime=torch", "torch"
            elif v != "auto":
                w, t, b, *rest = (int(x) for x in v.split(":"))
                crop = rest[0] if rest else None
                label, workers, batch = f"detreduce w={w} t={t} b={b}", w, b
                label += f" crop={crop}" if crop else ""
            res = ours_embed(
                ds, level, workers, batch, t, crop, runtime=runtime, device=args.device
            )
            rows.append((label, level, *res, base[0]))
        if args.model_only:
            n = ds.num_images if level == "image" else ds.num_boxes
            sec = model_only(bb.with_runtime("auto", threads), level, n, args.device)
            counts = (n, 0) if level == "image" else (0, n)
            rows.append(("model only (no decode)", level, sec, *counts, base[0]))
    header = f"{'method':<32} {'level':<6} {'images':>6} {'crops':>6} {'seconds':>8} "
    header += f"{'img/s':>7} {'crops/s':>8} {'speedup':>8}"
    print(header)
    print("-" * len(header))
    for name, level, sec, n_img, n_crop, base_sec in rows:
        ips = f"{n_img / sec:.1f}" if n_img else "-"
        cps = f"{n_crop / sec:.1f}" if n_crop else "-"
        ratio = f"{base_sec / sec:.1f}x" if base_sec else "1.0x"
        print(
            f"{name:<32} {level:<6} {n_img:>6} {n_crop:>6} {sec:>8.1f} {ips:>7} {cps:>8} {ratio:>8}"
        )


def model_only(bb, level: str, n: int, device: str) -> float:
    """Seconds for the forward passes alone on random uint8 inputs of the default shapes.

    Next to the full pipeline this says what limits it: a pipeline far below this rate
    waits on decoding, one close to it on the network.
    """
    import torch

    from detreduce.config import default
    from detreduce.device import parse_device
    from detreduce.features.embed import auto_batch_size

    dev = torch.device(parse_device(device).torch)
    size = bb.spec.preprocess.size if level == "image" else default("features.crop_size")
    batch = auto_batch_size(dev, size)
    pixels = torch.randint(0, 256, (batch, size, size, 3), dtype=torch.uint8)
    if dev.type == "cuda":
        pixels = pixels.pin_memory()
    bb.embed(pixels)  # warm-up
    t0 = time.perf_counter()
    for start in range(0, n, batch):
        bb.embed(pixels[: min(batch, n - start)])
    return time.perf_counter() - t0


# ---------------------------------------------------------------- quality
def quality(args) -> None:
    """Crop-embedding quality per backbone / crop size on aquarium (as the real-data test)."""
    from detreduce.data.load import load_dataset
    from detreduce.features import embed_dataset
    from detreduce.features.quality import boxes_per_class, centroid_accuracy

    ds = boxes_per_class(load_dataset(args.data).split("train"), args.per_class)
    k = len(ds.names)
    print(f"{args.data}: {ds.num_boxes} crops ({args.per_class}/class), chance {1 / k:.3f}")
    header = f"{'backbone':<26} {'crop px':>7} {'accuracy':>8} {'balanced':>8} {'seconds':>8}"
    print(header)
    print("-" * len(header))
    for spec in args.backbones.split(","):
        name, _, weights = spec.partition(":")
        for crop in (int(c) for c in args.crop_sizes.split(",")):
            t0 = time.perf_counter()
            emb = embed_dataset(
                ds, name, "box", weights=weights or None, crop_size=crop, cache=False
            )
            acc, bal = centroid_accuracy(emb.box, emb.box_class, k)
            print(f"{spec:<26} {crop:>7} {acc:>8.3f} {bal:>8.3f} {time.perf_counter() - t0:>8.1f}")


# ----------------------------------------------------------------- memory
def _rss_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def memory_child(n: int, root: Path, image_size: int, cache: bool) -> dict:
    """Embed n hard-linked rows; report peak RSS growth over the pre-embed RSS."""
    import dataclasses

    from detreduce.data.load import load_dataset
    from detreduce.features import embed_dataset, get_backbone

    base = load_dataset(root / "data.yaml")
    links = root / f"links-{n}"
    links.mkdir(exist_ok=True)
    paths = []
    for i in range(n):
        src = base.image_paths[i % base.num_images]
        dst = links / f"{i:07d}.jpg"
        if not dst.exists():
            os.link(src, dst)
        paths.append(str(dst))
    ds = dataclasses.replace(
        base,
        image_paths=np.array(paths, dtype=object),
        image_sizes=base.image_sizes[np.arange(n) % base.num_images],
        image_splits=np.full(n, "train", dtype=object),
        box_image=np.zeros(0),
        box_class=np.zeros(0),
        box_xyxy=np.zeros((0, 4)),
    )
    bb = get_backbone("mobilenet_v2")
    Path("/proc/self/clear_refs").write_text("5")  # reset the peak (VmHWM) to now
    before = _rss_kib("VmRSS")
    t0 = time.perf_counter()
    emb = embed_dataset(ds, bb, "image", image_size=image_size, cache=cache, device="cpu")
    seconds = time.perf_counter() - t0
    peak = _rss_kib("VmHWM")
    out_mib = emb.image.nbytes / 2**20
    return {
        "n": n,
        "cache": cache,
        "computed": emb.computed,
        "seconds": round(seconds, 1),
        "output_mib": round(out_mib, 1),
        "peak_growth_mib": round((peak - before) / 1024, 1),
        "beyond_output_mib": round((peak - before) / 1024 - out_mib, 1),
    }


def memory(args) -> None:
    from detreduce.data.synthetic import make_synthetic

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        make_synthetic(root / "base", n_images=200, imgsz=64, seed=0)
        env = {**os.environ, "DETREDUCE_RUNS": str(root / "runs")}
        print(f"mobilenet_v2 at {args.image_size} px, 1280-d float32, rows = hard links")
        header = f"{'rows':>8} {'pass':<10} {'computed':>8} {'seconds':>8} {'output MiB':>10} "
        header += f"{'peak growth MiB':>15} {'beyond output MiB':>17}"
        print(header)
        print("-" * len(header))
        for n in (int(s) for s in args.sizes.split(",")):
            for label in ("first", "from cache"):
                cmd = [sys.executable, __file__, "_memory_child", str(n), str(root / "base")]
                cmd += [str(args.image_size)]
                out = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True)
                r = json.loads(out.stdout.strip().splitlines()[-1])
                print(
                    f"{r['n']:>8} {label:<10} {r['computed']:>8} {r['seconds']:>8} "
                    f"{r['output_mib']:>10} {r['peak_growth_mib']:>15} {r['beyond_output_mib']:>17}"
                )


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "_memory_child":
        n, root, size = int(sys.argv[2]), Path(sys.argv[3]), int(sys.argv[4])
        print(json.dumps(memory_child(n, root, size, cache=True)))
        return
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = ap.add_subparsers(dest="cmd", required=True)
    sp = sub.add_parser("speed")
    sp.add_argument("--data", default=str(SHARED / "bccd"))
    sp.add_argument("--split", default="train")
    sp.add_argument("--limit", type=int, default=100, help="first N images (0: all)")
    sp.add_argument("--levels", default="image,box")
    sp.add_argument(
        "--variants", default="", help="workers:threads:batch[:crop_size],... (default: auto)"
    )
    sp.add_argument("--threads", type=int, default=0, help="baseline threads (0: auto policy)")
    sp.add_argument("--device", default="cpu", help="cpu or cuda:N (baseline and detreduce)")
    sp.add_argument(
        "--model-only", action="store_true", help="add the forward-only rate (decode vs model)"
    )
    qp = sub.add_parser("quality")
    qp.add_argument("--data", default=str(SHARED / "aquarium"))
    qp.add_argument("--per-class", type=int, default=40)
    qp.add_argument(
        "--backbones", default="mobilenet_v2,mobilenet_v2:random,efficientnet_lite0,hist_hog"
    )
    qp.add_argument("--crop-sizes", default="112")
    mp = sub.add_parser("memory")
    mp.add_argument("--sizes", default="10000,100000")
    mp.add_argument("--image-size", type=int, default=32)
    args = ap.parse_args()
    {"speed": speed, "quality": quality, "memory": memory}[args.cmd](args)


if __name__ == "__main__":
    main()
