"""``detreduce show``: one self-contained HTML page of a reduction, kept vs dropped.

Why one file with everything inline (CSS, JS, SVG charts, thumbnails as base64 JPEG):
it opens from disk, an artifact store or an e-mail attachment, offline, with nothing to
serve. Its Content-Security-Policy (``default-src 'none'``) makes a browser refuse, and
log, any fetch, so a page that loads without console errors needs nothing else.

The page is read back from what ``detreduce reduce`` (or a sweep trial) wrote:
``selection.json`` names the dataset, which is reloaded to see the dropped images too.
It shows, per class, thumbnails of kept and dropped images with their boxes; a PCA map
of the image embeddings (cached ones are reused; the selection's own backbone); the
class, box-count and box-size histograms before and after; the duplicates and other
problems found when the dataset was read.
"""

from __future__ import annotations

import base64
import json
import logging
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from html import escape
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from detreduce.data.atomic import write_text
from detreduce.data.load import load_dataset
from detreduce.data.model import DetectionDataset, resolved_paths
from detreduce.data.problems import PROBLEM_KINDS
from detreduce.errors import ConfigError, DatasetError
from detreduce.metrics import selection_figures
from detreduce.report import html_assets as assets
from detreduce.report import svg
from detreduce.settings import DataSettings, FeatureSettings, ReduceSettings

logger = logging.getLogger("detreduce")

MANIFEST = "selection.json"
PAGE_NAME = "selection.html"
READY_MARKER = "detreduce-show ready"
JPEG_QUALITY = 72
#: ``progress(stage, done, total)``; stages: ``embed``, ``thumbnails``.
PageProgress = Callable[[str, int, int], None]


# ----------------------------------------------------------------- the reduction
@dataclass(frozen=True)
class Reduction:
    """A ``detreduce reduce`` output read back, with the train split it was drawn from.

    Attributes:
        out_dir: the output folder.
        manifest: its ``selection.json``.
        train: the train split of the reloaded dataset (rows are the page's image ids).
        kept: one bool per train image.
        problems: problems recorded at reduce time and found now, without repeats.
        changed: the dataset's fingerprint differs from the recorded one.
        notes: what the reader should know (e.g. the dataset changed since).
    """

    out_dir: Path
    manifest: dict[str, Any]
    train: DetectionDataset
    kept: np.ndarray
    problems: list[dict[str, Any]] = field(default_factory=list)
    changed: bool = False
    notes: list[str] = field(default_factory=list)


def read_manifest(out_dir: str | Path) -> dict[str, Any]:
    """``OUT/selection.json``, or a one-line error saying which command makes one."""
    out = Path(out_dir)
    make = f"`detreduce reduce DATA --out {out}` makes one"
    if not out.is_dir():
        raise ConfigError(f"{out}: no such folder ({make})")
    path = out / MANIFEST
    if not path.is_file():
        raise ConfigError(f"{out} has no {MANIFEST}: not a `detreduce reduce` output ({make})")
    try:
        manifest = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{path}:{exc.lineno}: not valid JSON ({exc.msg}); {make}") from None
    if not isinstance(manifest, dict):
        raise ConfigError(f"{path}: not a selection manifest (a JSON object); {make}")
    missing = [k for k in ("dataset", "method", "kept_images") if k not in manifest]
    if missing:
        raise ConfigError(f"{path}: no {', '.join(missing)} recorded; {make}")
    return manifest


def read_reduction(
    out_dir: str | Path, data: str | Path | None = None, format: str | None = None
) -> Reduction:
    """Read ``out_dir``'s manifest and reload its dataset (``data`` overrides the recorded
    source when the dataset has moved). Fails when a kept image is not in the train split:
    the page would show a selection that is not the one exported."""
    out = Path(out_dir)
    manifest = read_manifest(out)
    recorded = manifest["dataset"]
    source = Path(data) if data is not None else Path(recorded.get("source", ""))
    if data is None:
        format = format or recorded.get("format")
    if not str(source) or not source.exists():
        raise DatasetError(
            f"{source}: the dataset named in {out / MANIFEST} is not found (from {Path.cwd()}); "
            "pass --data PATH"
        )
    ds = load_dataset(source, format, on_error="warn")
    notes = []
    changed = bool(recorded.get("fingerprint")) and ds.fingerprint() != recorded["fingerprint"]
    if changed:
        notes.append(
            f"The dataset at {source} changed since the reduction (fingerprint "
            f"{ds.fingerprint()}, recorded {recorded['fingerprint']}): figures are recomputed "
            "from the dataset as it is now."
        )
        logger.warning("%s", notes[-1])
    train = ds.split("train")
    where = {p: i for i, p in enumerate(resolved_paths(train.image_paths))}
    kept_paths = [str(p) for p in manifest["kept_images"]]
    if data is not None:  # a moved dataset: the kept paths, rebased onto its new folder
        kept_paths = _rebase(kept_paths, Path(str(recorded.get("source", ""))), source)
    rows = [where.get(p, -1) for p in resolved_paths(kept_paths)]
    lost = [p for p, r in zip(kept_paths, rows) if r < 0]
    if lost:
        raise DatasetError(
            f"{len(lost)} kept image(s) of {out / MANIFEST} are not in the train split of "
            f"{source} (first: {lost[0]}); the dataset changed since `detreduce reduce`: "
            "reduce it again"
        )
    kept = np.zeros(train.num_images, dtype=bool)
    kept[rows] = True
    seen, problems = set(), []
    recorded_problems = (manifest.get("skipped_problems") or {}).get("items") or []
    for item in [*recorded_problems, *(p.to_dict() for p in ds.problems)]:
        key = (item.get("kind"), item.get("file"), item.get("line"), item.get("message"))
        if key not in seen:
            seen.add(key)
            problems.append(item)
    return Reduction(out, manifest, train, kept, problems, changed, notes)


def _root(source: Path) -> Path:
    return source.parent if source.suffix.lower() in (".yaml", ".yml", ".json") else source


def _rebase(paths: list[str], old: Path, new: Path) -> list[str]:
    """``paths`` under the recorded dataset folder ``old``, moved under ``new``."""
    old_root, new_root = _root(old).absolute(), _root(new).absolute()
    out = []
    for p in paths:
        try:
            out.append(str(new_root / Path(p).absolute().relative_to(old_root)))
        except ValueError:  # not under the old folder: kept as recorded
            out.append(p)
    return out


# ------------------------------------------------------------------- the pieces
def pick_evenly(rows: np.ndarray, k: int) -> np.ndarray:
    """``k`` of ``rows`` spread evenly over their order (all when fewer): a deterministic
    sample that spans the list instead of its first file names."""
    rows = np.asarray(rows)
    if k <= 0:
        return rows[:0]
    if len(rows) <= k:
        return rows
    return rows[np.linspace(0, len(rows) - 1, k).round().astype(np.int64)]


def display_names(paths: np.ndarray) -> list[str]:
    """Paths relative to their common folder: short, still unique."""
    paths = [os.fspath(p) for p in paths]
    if not paths:
        return []
    if len(paths) == 1:
        return [os.path.basename(paths[0])]
    try:
        root = os.path.commonpath(paths)
    except ValueError:  # different drives (Windows) or mixed relative/absolute
        return paths
    return [os.path.relpath(p, root) for p in paths]


def dominant_class(ds: DetectionDataset) -> np.ndarray:
    """Per image, the class with most boxes (lowest id on ties); -1 without boxes."""
    mat = ds.image_class_matrix()
    out = mat.argmax(1) if mat.shape[1] else np.zeros(ds.num_images, np.int64)
    return np.where(mat.sum(1) > 0, out, -1)


def _bgr(color: str) -> tuple[int, int, int]:
    r, g, b = (int(color[i : i + 2], 16) for i in (1, 3, 5))
    return b, g, r


def thumbnail(
    path: str,
    width: int,
    height: int,
    boxes: np.ndarray,
    colors: list[str],
    size: int,
) -> tuple[str, int, int] | None:
    """A JPEG data URI of the image with its boxes drawn (longest side at most ``size``)
    and its display size (longest side ``size``); None when the file cannot be decoded.

    JPEGs are decoded at 1/2–1/8 scale when that still covers ``size`` (cheap); boxes are
    drawn after the resize so they stay one pixel wide; small images are not enlarged
    (the browser does that for free).
    """
    factor = 1
    while factor < 8 and max(width, height) // (factor * 2) >= size:
        factor *= 2
    flag = {1: cv2.IMREAD_COLOR, 2: cv2.IMREAD_REDUCED_COLOR_2}
    flag |= {4: cv2.IMREAD_REDUCED_COLOR_4, 8: cv2.IMREAD_REDUCED_COLOR_8}
    img = cv2.imread(str(path), flag[factor])
    if img is None:
        return None
    h, w = img.shape[:2]
    scale = size / max(h, w)
    if scale < 1:
        dsize = (max(1, round(w * scale)), max(1, round(h * scale)))
        img = cv2.resize(img, dsize, interpolation=cv2.INTER_AREA)
    th, tw = img.shape[:2]
    sx, sy = tw / max(width, 1), th / max(height, 1)
    for (x1, y1, x2, y2), color in zip(boxes, colors):
        p1 = (int(round(x1 * sx)), int(round(y1 * sy)))
        p2 = (int(round(x2 * sx)) - 1, int(round(y2 * sy)) - 1)
        cv2.rectangle(img, p1, p2, _bgr(color), 1, cv2.LINE_AA)
    ok, buf = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
    if not ok:
        return None
    uri = "data:image/jpeg;base64," + base64.b64encode(buf.tobytes()).decode()
    shown = max(scale, 1.0)  # display size: longest side ``size``
    return uri, round(tw * shown), round(th * shown)


@dataclass(frozen=True)
class EmbeddingMap:
    """The 2-D map: which train rows, where, and what drew it (or why there is none)."""

    rows: np.ndarray
    xy: np.ndarray
    variance: tuple[float, float]
    backbone: str
    note: str = ""


def embedding_map(
    red: Reduction,
    *,
    backbone: str | None,
    device: str | None,
    max_points: int,
    progress: PageProgress | None = None,
) -> EmbeddingMap:
    """PCA of the image embeddings of (at most ``max_points``, evenly spread) train images.

    The selection's own backbone by default, so the map shows the space the method saw;
    ``embed_dataset`` serves cached rows and computes only the missing ones. A
    selection that read no embeddings gets no map unless ``backbone`` is given.
    """
    recorded = str(red.manifest.get("backbone") or "")
    name = backbone or recorded
    empty = np.zeros(0, np.int64)
    if not name:
        method = red.manifest.get("method", "?")
        return EmbeddingMap(
            empty,
            np.zeros((0, 2)),
            (0.0, 0.0),
            "",
            f"The selection used no embeddings ({method} reads none), so there is no "
            "embedding map; draw one with `detreduce show OUT --backbone mobilenet_v2`.",
        )
    from detreduce.features import embed_dataset  # torch: only when a map is drawn

    n = red.train.num_images
    rows = pick_evenly(np.arange(n), max_points)
    # A box-level reduction embedded whole images undecimated (beside the crops): same keys.
    draft = False if red.manifest.get("level") == "box" else None
    fs = FeatureSettings.build(backbone=name, level="image", device=device, draft_decode=draft)
    report = (lambda done, total: progress("embed", done, total)) if progress else False
    emb = embed_dataset(red.train, settings=fs, indices=rows, progress=report)
    xy, variance = svg.pca_2d(emb.image)
    note = ""
    if backbone and backbone != recorded:
        note = f"Drawn with {backbone}; the selection read " + (
            f"{recorded} embeddings." if recorded else "no embeddings."
        )
    if len(rows) < n:
        note += f" {len(rows)} of {n} images drawn (evenly spread; --max-points)."
    return EmbeddingMap(rows, xy, variance, emb.backbone, note.strip())


def histograms(red: Reduction) -> dict[str, Any]:
    """The figures of ``selection.json`` when it has them and the dataset is unchanged,
    else recomputed (a training policy's selection records none)."""
    figures = red.manifest.get("figures") or {}
    if "box_count_hist" not in figures or red.changed:
        figures = selection_figures(red.train, red.kept)
    return figures


# --------------------------------------------------------------------- the page
@dataclass(frozen=True)
class PageResult:
    """What ``write_selection_page`` wrote."""

    path: Path
    size_bytes: int
    thumbnails: int
    kept_shown: int
    dropped_shown: int
    points: int
    map_note: str


def write_selection_page(
    out_dir: str | Path,
    *,
    settings: ReduceSettings | Mapping[str, Any] | None = None,
    data: str | Path | None = None,
    format: str | None = None,
    backbone: str | None = None,
    device: str | None = None,
    draw_map: bool = True,
    page: str | Path | None = None,
    progress: PageProgress | None = None,
    **overrides: Any,
) -> PageResult:
    """Write the selection page of ``out_dir`` (a ``detreduce reduce`` output).

    ``settings`` (:class:`~detreduce.settings.ReduceSettings`, its ``show_*`` fields:
    thumbnails per class and side, thumbnail size, most map points) is built with
    ``ReduceSettings.build(settings, **overrides)``, so
    ``write_selection_page(out, show_per_class=8)`` works. ``data``/``format`` override
    the recorded dataset; ``backbone`` draws the map with another backbone (or at all,
    for a selection that read no embeddings); ``device`` is the embedding device.
    The page goes to ``page`` (default ``out_dir/selection.html``), written atomically;
    ``progress(stage, done, total)`` hears of each embedded batch and each thumbnail.
    """
    cfg = ReduceSettings.build(settings, **overrides)
    red = read_reduction(out_dir, data, format)
    train, kept = red.train, red.kept
    names = list(train.names)
    colors = svg.class_colors(len(names))
    labels = display_names(train.image_paths)

    emap = None
    if draw_map:
        emap = embedding_map(
            red,
            backbone=backbone,
            device=device,
            max_points=cfg.show_max_points,
            progress=progress,
        )

    groups = _groups(train, kept, labels, cfg.show_per_class)
    shown = sorted({i for g in groups for side in ("kept", "dropped") for i in g[side]})
    thumbs: dict[str, Any] = {}
    box_colors = [colors[c] for c in train.box_class]
    order = np.argsort(train.box_image, kind="stable")
    starts = np.searchsorted(train.box_image[order], np.arange(train.num_images + 1))
    for done, i in enumerate(shown, 1):
        sel = order[starts[i] : starts[i + 1]]
        w, h = (int(v) for v in train.image_sizes[i])
        t = thumbnail(
            train.image_paths[i],
            w,
            h,
            train.box_xyxy[sel],
            [box_colors[b] for b in sel],
            cfg.show_thumb_size,
        )
        thumbs[str(i)] = {"name": labels[i], "src": t[0] if t else None}
        if t:
            thumbs[str(i)].update(w=t[1], h=t[2])
        if progress:
            progress("thumbnails", done, len(shown))

    body = _render(red, cfg, names, colors, labels, emap, groups)
    payload = {"groups": groups, "thumbs": thumbs}
    html = assets.PAGE.format(
        title=escape(_title(red)),
        css=assets.CSS,
        body=body,
        # "<" escaped: no "</script>" or "<!--" inside the data can end the script block
        data=json.dumps(payload, separators=(",", ":")).replace("<", "\\u003c"),
        js=assets.JS.replace("READY_MARKER", json.dumps(READY_MARKER)),
        csp=assets.CSP,
    )
    path = Path(page) if page is not None else red.out_dir / PAGE_NAME
    write_text(path, html)
    kept_shown = sum(len(g["kept"]) for g in groups)
    dropped_shown = sum(len(g["dropped"]) for g in groups)
    return PageResult(
        path=path.absolute(),
        size_bytes=path.stat().st_size,
        thumbnails=len(shown),
        kept_shown=kept_shown,
        dropped_shown=dropped_shown,
        points=0 if emap is None else len(emap.rows),
        map_note="map not drawn (--no-map)" if emap is None else emap.note,
    )


def _groups(
    train: DetectionDataset, kept: np.ndarray, labels: list[str], cap: int
) -> list[dict[str, Any]]:
    """One group per class (the images holding it), then the images without boxes;
    each side sorted by file name and capped evenly."""
    mat = train.image_class_matrix() > 0
    by_name = np.argsort(np.array(labels, dtype=object), kind="stable")
    members = [mat[by_name, c] for c in range(mat.shape[1])]
    no_boxes = ~mat.any(1)[by_name]
    out = []
    for c, member in enumerate([*members, no_boxes]):
        if c == mat.shape[1] and not member.any():
            break
        rows = by_name[member]
        side = {}
        for name, want in (("kept", True), ("dropped", False)):
            all_rows = rows[kept[rows] == want]
            side[name] = [int(i) for i in pick_evenly(all_rows, cap)]
            side[f"{name}_total"] = int(len(all_rows))
        out.append({"cls": c if c < mat.shape[1] else -1, **side})
    return out


def _title(red: Reduction) -> str:
    m = red.manifest
    name = Path(str(m["dataset"].get("source", ""))).stem or "dataset"
    if name in ("data", "dataset"):
        name = Path(str(m["dataset"].get("source", ""))).parent.name or name
    return f"{name}: {m['method']} kept {int(red.kept.sum())} of {len(red.kept)} train images"


def _pct(part: float, whole: float) -> str:
    return f"{100 * part / whole:.1f} %" if whole else "–"


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    if value is None:
        return "–"
    return str(value)


def _render(
    red: Reduction,
    cfg: ReduceSettings,
    names: list[str],
    colors: list[str],
    labels: list[str],
    emap: EmbeddingMap | None,
    groups: list[dict[str, Any]],
) -> str:
    m, train, kept = red.manifest, red.train, red.kept
    n, k = len(kept), int(kept.sum())
    sub = train.subset(np.flatnonzero(kept))
    img_before, img_after = train.class_image_counts(), sub.class_image_counts()
    box_before, box_after = train.class_box_counts(), sub.class_box_counts()
    figures = histograms(red)
    eps = figures.get("epsilon") or {}
    eps_box = figures.get("epsilon_box") or {}
    out = [f"<header><h1>{escape(_title(red))} ({_pct(k, n)})</h1>"]
    out += [f'<p class="note warn">{escape(note)}</p>' for note in red.notes]
    meta = [
        ("dataset", f"{m['dataset'].get('source', '')} ({m['dataset'].get('format', '')})"),
        ("fingerprint", m["dataset"].get("fingerprint", "")),
        ("method", m["method"]),
        ("parameters", json.dumps(m.get("params") or {}, sort_keys=True)),
        ("fraction", m.get("fraction")),
        ("seed", m.get("seed")),
        ("balance", m.get("balance", "")),
        ("level", m.get("level", "")),
        ("backbone", m.get("backbone") or "none (the method reads no embeddings)"),
        ("boxes kept", f"{int(box_after.sum())} of {int(box_before.sum())}"),
    ]
    for label, block in (("ε image", eps), ("ε box crops", eps_box)):
        if block:
            meta.append((label, f"{_fmt(block.get('overall'))} ({block.get('metric', '')})"))
    missing = figures.get("missing_classes") or []
    meta.append(("classes lost", ", ".join(missing) or "none"))
    meta.append(("made", f"{m.get('created', '')} by detreduce {m.get('detreduce_version', '')}"))
    meta.append(("folder", str(red.out_dir.absolute())))
    out.append('<dl class="meta">')
    out += [f"<dt>{escape(a)}</dt><dd>{escape(_fmt(b))}</dd>" for a, b in meta]
    out.append("</dl></header>")

    # classes table (also the colour legend)
    out.append('<section id="classes"><h2>Classes</h2><table class="classes"><thead><tr>')
    cols = ["class", "images before", "images after", "boxes before", "boxes after"]
    cols += ["ε"] if eps else []
    out += [f"<th>{c}</th>" for c in cols] + ["</tr></thead><tbody>"]
    per_eps = eps.get("per_class") or {}
    for c, name in enumerate(names):
        cells = [
            f'<td><span class="swatch" style="background:{colors[c]}"></span>'
            f'<a href="#cls-{c}">{escape(name)}</a></td>',
            f"<td>{img_before[c]}</td><td>{img_after[c]}</td>",
            f"<td>{box_before[c]}</td><td>{box_after[c]}</td>",
        ]
        if eps:
            cells.append(f"<td>{escape(_fmt(per_eps.get(name)))}</td>")
        out.append("<tr>" + "".join(cells) + "</tr>")
    out.append("</tbody></table></section>")

    # map and histograms side by side
    out.append('<div class="row"><section id="map"><h2>Embedding map</h2>')
    if emap is None:
        out.append('<p class="note">Not drawn (--no-map).</p>')
    elif not len(emap.rows):
        out.append(f'<p class="note">{escape(emap.note)}</p>')
    else:
        axes = (
            f"PC1 ({100 * emap.variance[0]:.0f} % of variance)",
            f"PC2 ({100 * emap.variance[1]:.0f} %)",
        )
        dom = dominant_class(train)[emap.rows]
        titles = [
            f"{labels[i]} — {'kept' if kept[i] else 'dropped'} — "
            + (names[c] if c >= 0 else "no boxes")
            for i, c in zip(emap.rows, dom)
        ]
        out.append(
            svg.scatter_svg(
                emap.xy,
                kept[emap.rows],
                [colors[c] if c >= 0 else svg.NO_BOX_COLOR for c in dom],
                titles,
                emap.rows,
                axes=axes,
            )
        )
        out.append(
            f'<p class="caption">PCA of the {escape(emap.backbone)} image embeddings of '
            f"{len(emap.rows)} train images. <b>Filled: kept</b>, hollow: dropped; colour: "
            "the class with most boxes in the image (grey: no boxes). Hover a point or a "
            f"thumbnail to find the other. {escape(emap.note)}</p>"
        )
    out.append('</section><section id="histograms"><h2>Before and after</h2><div class="charts">')
    out.append(svg.bars_svg("images per class", names, img_before, img_after))
    out.append(svg.bars_svg("boxes per class", names, box_before, box_after, unit="boxes"))
    for key, title, unit in (
        ("box_count_hist", "boxes per image", "images"),
        ("box_size_hist", "box side / image side", "boxes"),
    ):
        block = figures.get(key) or {}
        if block.get("bins"):
            tv = block.get("tv")
            label = f"{title} (TV {tv:.3f})" if isinstance(tv, float) else title
            out.append(svg.bars_svg(label, block["bins"], block["full"], block["kept"], unit=unit))
    out.append(
        '</div><p class="caption"><span class="swatch" style="background:'
        f'{svg.BEFORE_COLOR}"></span>before (all {n} train images) '
        f'<span class="swatch" style="background:{svg.AFTER_COLOR}"></span>after ({k} kept), '
        "as shares of each set; counts in the tooltips. TV: total variation distance "
        "(0: same distribution).</p></section></div>"
    )

    # thumbnails
    cap = cfg.show_per_class
    out.append(
        f'<section id="thumbnails"><h2>Kept and dropped images per class</h2><p class="caption">'
        f"At most {cap} per class and side, spread evenly over the file names "
        "(--per-class); an image with several classes appears under each.</p>"
    )
    for gi, g in enumerate(groups):
        c = g["cls"]
        name, color = (names[c], colors[c]) if c >= 0 else ("no boxes", svg.NO_BOX_COLOR)
        out.append(
            f'<section class="cls" id="cls-{c if c >= 0 else "none"}"><h3>'
            f'<span class="swatch" style="background:{color}"></span>{escape(name)}</h3>'
            '<div class="sides">'
        )
        for side in ("kept", "dropped"):
            total, shown = g[f"{side}_total"], len(g[side])
            out.append(
                f'<div class="side {side}"><h4>{side} — {shown} of {total} shown</h4>'
                f'<div class="grid" data-group="{gi}" data-side="{side}"></div></div>'
            )
        out.append("</div></section>")
    out.append("</section>")
    out.append(_problems_html(red.problems))
    return "\n".join(out)


def _problems_html(problems: list[dict[str, Any]]) -> str:
    """Duplicates first (they change what a reduction may keep), then the rest by kind."""
    out = ['<section id="problems"><h2>Duplicates and problems</h2>']
    if not problems:
        checked = DataSettings.build().check_duplicates  # what load_dataset looked for
        dupes = "no byte-identical duplicate images and " if checked else ""
        unchecked = "" if checked else " (duplicates not checked: data.check_duplicates)"
        out.append(
            f'<p class="note">None: {dupes}no bad labels or unreadable images were found when '
            f"the dataset was read{unchecked}.</p></section>"
        )
        return "\n".join(out)
    kinds: dict[str, list[dict[str, Any]]] = {}
    for p in problems:
        kinds.setdefault(str(p.get("kind", "?")), []).append(p)
    order = sorted(kinds, key=lambda k: (k != "duplicate_image", -len(kinds[k]), k))
    for kind in order:
        items = kinds[kind]
        what = PROBLEM_KINDS.get(kind, "")
        opened = " open" if kind == "duplicate_image" or len(items) <= 10 else ""
        out.append(
            f'<details class="problems"{opened}><summary><b>{escape(kind)}</b>: {len(items)} '
            f"— {escape(what)}</summary><ul>"
        )
        for p in items[:500]:
            where = str(p.get("file", "")) + (f":{p['line']}" if p.get("line") else "")
            out.append(f"<li><code>{escape(where)}</code> {escape(str(p.get('message', '')))}</li>")
        if len(items) > 500:
            out.append(f"<li>… and {len(items) - 500} more (selection.json lists them all)</li>")
        out.append("</ul></details>")
    out.append("</section>")
    return "\n".join(out)
