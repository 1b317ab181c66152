"""Benchmark: a COCO 2017-sized instances JSON through ``load_dataset`` and ``detreduce reduce``.

Generates (once, cached under ``--root``) a COCO 2017 release layout::

    annotations/instances_train2017.json   N images, ~7.3 boxes each (long tail), 80 classes
    annotations/instances_val2017.json     N * 5000 / 118287 images (the release's ratio)
    train2017/*.jpg, val2017/*.jpg          one real, distinct 8x8 JPEG per image entry

The JSON is shaped like the release's: sparse category ids (1..90, COCO's ten gaps),
sparse image ids, the release's image fields (license, coco_url, date_captured, ...),
annotations in shuffled order, each with a polygon ``segmentation`` of ~24 vertices
(``--no-segmentation`` leaves them out; the real file is ~450 MB mostly because of
them), ~1 % ``iscrowd`` boxes with an RLE mask, ~1 % images without a box, Zipf-like
class imbalance (the first class ~30 % of the boxes, as ``person`` is in COCO), and box
sizes log-uniform from 4 to 400 px (about COCO's small/medium/large shares).

``load_dataset`` opens every image (header, end marker, duplicate hash): it takes the
width/height from the JSON, so the tiny files stand in for COCO's 640x480 photos, but
they are real, distinct, readable JPEGs and every one is opened. Reading real ~160 KB
photos from a cold disk adds IO this benchmark does not measure.

Each measurement runs in a fresh subprocess (its peak RSS is its own ``ru_maxrss``),
with its own empty ``DETREDUCE_RUNS`` / ``DETREDUCE_CACHE``, so ``reduce`` builds the
YOLO label view from scratch as a first run does. ``seconds`` is timed inside that
process (load: the ``load_dataset`` call; reduce: from importing the CLI to the end of
``detreduce.cli.main``), ``process s`` is the subprocess's wall time (interpreter start
included): what a user waits for.

    python benchmarks/bench_coco_scale.py --images 10000
    python benchmarks/bench_coco_scale.py --images 118287
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

#: COCO 2017: 118,287 train images, 860,001 boxes: 7.27 per image.
COCO_TRAIN_IMAGES = 118_287
COCO_VAL_IMAGES = 5_000
_MISSING_IDS = {12, 26, 29, 30, 45, 66, 68, 69, 71, 83}  # COCO's unused category ids
CATEGORY_IDS = [i for i in range(1, 91) if i not in _MISSING_IDS]  # 80
#: Common COCO image sizes (width, height).
SIZES = np.array([[640, 480], [640, 427], [480, 640], [640, 424], [500, 375], [640, 360]])
TARGETS = {"load": (30.0, 3072.0), "reduce": (60.0, None)}
_CHUNK = 20_000


def _boxes_per_image(rng: np.random.Generator, n: int) -> np.ndarray:
    """~1 % empty images, else 1 + negative binomial: mean ~7.3, long tail (max 100)."""
    k = 1 + rng.negative_binomial(1.3, 1.3 / (1.3 + 6.35), n)
    k[rng.random(n) < 0.01] = 0
    return np.minimum(k, 100)


def _class_weights(n_classes: int = 80) -> np.ndarray:
    w = 1.0 / np.arange(1, n_classes + 1) ** 0.9
    w[0] *= 2.2  # one dominant class, like person
    return w / w.sum()


def _write_split(
    root: Path, name: str, n: int, first_ann_id: int, rng: np.random.Generator, seg: bool
) -> tuple[int, int]:
    """Images of one split and its instances JSON; returns (images, annotations) written."""
    import cv2

    folder = root / name
    folder.mkdir(parents=True, exist_ok=True)
    ids = np.sort(rng.choice(np.arange(1, max(600_000, 5 * n)), n, replace=False))
    sizes = SIZES[rng.integers(0, len(SIZES), n)]
    images = []
    for i, (img_id, (w, h)) in enumerate(zip(ids.tolist(), sizes.tolist())):
        file_name = f"{img_id:012d}.jpg"
        pixels = rng.integers(0, 255, (8, 8, 3), dtype=np.uint8)
        pixels[0, 0] = (i % 256, (i // 256) % 256, (i // 65536) % 256)  # distinct bytes
        (folder / file_name).write_bytes(cv2.imencode(".jpg", pixels)[1].tobytes())
        images.append(
            {
                "license": int(1 + i % 8),
                "file_name": file_name,
                "coco_url": f"http://images.cocodataset.org/{name}/{file_name}",
                "height": h,
                "width": w,
                "date_captured": "2013-11-14 16:28:13",
                "flickr_url": f"http://farm{1 + i % 9}.staticflickr.com/{img_id}_z.jpg",
                "id": img_id,
            }
        )
    k = _boxes_per_image(rng, n)
    m = int(k.sum())
    owner = np.repeat(np.arange(n), k)[rng.permutation(m)]  # annotations in shuffled order
    cls = rng.choice(len(CATEGORY_IDS), m, p=_class_weights(len(CATEGORY_IDS)))
    side = np.exp(rng.uniform(np.log(4), np.log(400), m))
    aspect = np.exp(rng.normal(0, 0.5, m))
    wh = np.stack([side * np.sqrt(aspect), side / np.sqrt(aspect)], 1)
    img_wh = sizes[owner].astype(float)
    wh = np.minimum(wh, img_wh - 1)
    xy = rng.uniform(0, 1, (m, 2)) * (img_wh - wh)
    crowd = rng.random(m) < 0.01
    n_vert = 8 + rng.poisson(16, m)
    ann_path = root / "annotations" / f"instances_{name}.json"
    ann_path.parent.mkdir(parents=True, exist_ok=True)
    head = {"info": {"description": "generated COCO-scale benchmark", "year": 2017}}
    head["licenses"] = [{"url": "", "id": i, "name": f"license {i}"} for i in range(1, 9)]
    with open(ann_path, "w") as f:
        f.write(json.dumps(head)[:-1] + ', "images": ')
        f.write(json.dumps(images))
        f.write(', "annotations": [')
        for start in range(0, m, _CHUNK):
            rows = []
            for j in range(start, min(m, start + _CHUNK)):
                x, y = round(float(xy[j, 0]), 2), round(float(xy[j, 1]), 2)
                bw, bh = round(float(wh[j, 0]), 2), round(float(wh[j, 1]), 2)
                ann = {}
                if seg and crowd[j]:
                    runs = rng.integers(1, 400, 2 * int(n_vert[j]) * 4).tolist()
                    ann["segmentation"] = {
                        "counts": runs,
                        "size": img_wh[j, ::-1].astype(int).tolist(),
                    }
                elif seg:
                    t = rng.uniform(0, 2 * np.pi, int(n_vert[j]))
                    t.sort()
                    px = np.round(x + bw / 2 + np.cos(t) * bw / 2, 2)
                    py = np.round(y + bh / 2 + np.sin(t) * bh / 2, 2)
                    ann["segmentation"] = [np.stack([px, py], 1).reshape(-1).tolist()]
                ann["area"] = round(bw * bh * 0.7, 4)
                ann["iscrowd"] = int(crowd[j])
                ann["image_id"] = int(ids[owner[j]])
                ann["bbox"] = [x, y, bw, bh]
                ann["category_id"] = CATEGORY_IDS[int(cls[j])]
                ann["id"] = first_ann_id + j
                rows.append(ann)
            f.write(("" if start == 0 else ", ") + json.dumps(rows)[1:-1])
        f.write("], ")
        cats = [
            {"supercategory": f"super{cid // 10}", "id": cid, "name": f"class{cid:02d}"}
            for cid in CATEGORY_IDS
        ]
        f.write(f'"categories": {json.dumps(cats)}}}')
    return n, m


def generate(root: Path, n: int, seed: int = 0, seg: bool = True) -> tuple[dict, bool]:
    """Write the dataset once (cached by its parameters); returns its record and whether
    it was generated now."""
    record_file = root / "generated.json"
    if record_file.exists():
        return json.loads(record_file.read_text()), False
    if root.exists():
        shutil.rmtree(root)  # a half-written earlier attempt
    rng = np.random.default_rng(seed)
    t = time.perf_counter()
    n_val = round(n * COCO_VAL_IMAGES / COCO_TRAIN_IMAGES)
    train = _write_split(root, "train2017", n, 1, rng, seg)
    val = _write_split(root, "val2017", n_val, 1 + train[1], rng, seg) if n_val else (0, 0)
    json_mb = sum(p.stat().st_size for p in (root / "annotations").iterdir()) / 2**20
    record = {
        "seconds": time.perf_counter() - t,
        "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "images": train[0] + val[0],
        "boxes": train[1] + val[1],
        "train_images": train[0],
        "train_boxes": train[1],
        "json_mb": json_mb,
        "seed": seed,
        "segmentation": seg,
    }
    record_file.write_text(json.dumps(record))
    return record, True


# ------------------------------------------------------------------ measured in a child
def _child(mode: str, data: Path, result: Path, out: Path | None) -> None:
    t = time.perf_counter()
    if mode == "load":
        from detreduce.data.load import load_dataset

        t = time.perf_counter()
        ds = load_dataset(data)
        row = {"images": ds.num_images, "boxes": ds.num_boxes, "problems": len(ds.problems)}
    else:
        from detreduce.cli import main

        code = main(["reduce", str(data), "--method", "random", "--fraction", "0.1",
                     "--out", str(out)])  # fmt: skip
        if code != 0:
            raise SystemExit(f"detreduce reduce exited {code}")
        manifest = json.loads((out / "selection.json").read_text())
        row = {"images": manifest["images_after"], "boxes": manifest["boxes_after"]}
    row["seconds"] = time.perf_counter() - t
    row["rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    result.write_text(json.dumps(row))


def _measure(mode: str, data: Path, profile: Path | None = None) -> dict:
    with tempfile.TemporaryDirectory(prefix="detreduce-bench-coco-") as tmp:
        tmp = Path(tmp)
        env = dict(os.environ, DETREDUCE_RUNS=str(tmp / "runs"), DETREDUCE_CACHE=str(tmp / "cache"))
        env["DETREDUCE_LOG"] = env.get("DETREDUCE_LOG", "WARNING")
        cmd = [sys.executable]
        if profile is not None:
            cmd += ["-m", "cProfile", "-o", str(profile / f"{mode}.prof")]
        cmd += [__file__, "--child", mode, "--data", str(data), "--result", str(tmp / "r.json"),
                "--out", str(tmp / "out")]  # fmt: skip
        t = time.perf_counter()
        done = subprocess.run(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        if done.returncode != 0:
            sys.stderr.write(done.stderr.decode(errors="replace"))
            raise SystemExit(f"{mode} step failed (exit {done.returncode})")
        row = json.loads((tmp / "r.json").read_text())
        row["process_s"] = time.perf_counter() - t
    return row


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--images", type=int, default=COCO_TRAIN_IMAGES, help="train images")
    ap.add_argument("--root", type=Path, default=Path("/tmp/detreduce-bench-coco"))
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--no-segmentation", action="store_true", help="boxes only (small JSON)")
    ap.add_argument("--only", choices=("load", "reduce"), help="measure one step only")
    ap.add_argument("--profile", type=Path, help="write cProfile stats of each step here")
    ap.add_argument("--child", choices=("load", "reduce"), help=argparse.SUPPRESS)
    ap.add_argument("--data", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--result", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        _child(args.child, args.data, args.result, args.out)
        return

    load_before = os.getloadavg()[0]
    seg = not args.no_segmentation
    data = args.root / f"{args.images}{'' if seg else '-boxes'}-s{args.seed}"
    gen, fresh = generate(data, args.images, args.seed, seg)
    if args.profile:
        args.profile.mkdir(parents=True, exist_ok=True)
    modes = [args.only] if args.only else ["load", "reduce"]
    rows = {mode: _measure(mode, data, args.profile) for mode in modes}

    print(
        f"{data}: {gen['images']} images ({gen['train_images']} train), {gen['boxes']} "
        f"annotations, JSON {gen['json_mb']:.0f} MB; {os.cpu_count()} CPUs, "
        f"load average {load_before:.1f} at the start, {os.getloadavg()[0]:.1f} at the end"
    )
    print()
    print("| step | seconds | process s | peak RSS MB | images | boxes |")
    print("|---|---:|---:|---:|---:|---:|")
    gen_s = f"{gen['seconds']:.1f}" + ("" if fresh else " (cached)")
    print(f"| generate | {gen_s} | | {gen['rss_mb']:.0f} | {gen['images']} | {gen['boxes']} |")
    labels = {"load": "load", "reduce": "reduce random 10 %"}
    for mode, r in rows.items():
        print(
            f"| {labels[mode]} | {r['seconds']:.1f} | {r['process_s']:.1f} | {r['rss_mb']:.0f} "
            f"| {r['images']} | {r['boxes']} |"
        )
    print()
    print(
        f"targets (COCO 2017 train size): load < {TARGETS['load'][0]:.0f} s and "
        f"< {TARGETS['load'][1] / 1024:.0f} GB peak RSS; reduce < {TARGETS['reduce'][0]:.0f} s"
    )
    if args.images < COCO_TRAIN_IMAGES:
        print(f"(they apply at --images {COCO_TRAIN_IMAGES}; this run is smaller)")
        return
    if "load" in rows:
        ok = (
            rows["load"]["seconds"] < TARGETS["load"][0]
            and rows["load"]["rss_mb"] < TARGETS["load"][1]
        )
        print(f"load: {'met' if ok else 'NOT met'}")
    if "reduce" in rows:
        ok = rows["reduce"]["process_s"] < TARGETS["reduce"][0]
        print(f"reduce (whole process): {'met' if ok else 'NOT met'}")


if __name__ == "__main__":
    main()
