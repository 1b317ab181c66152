"""``detreduce show``: the selection page of a real reduction, read as a file and in a browser.

The reductions are real (``detreduce reduce`` on a synthetic dataset); expected thumbnail
counts come from ``selection.json``'s per-class figures, not from the page builder. The
browser tests load the page in Debian's headless Chromium: the page's CSP forbids every
fetch, so "no console message but the ready marker" proves it needs nothing outside
itself and that its script ran to the end.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from detreduce.cli import main
from detreduce.data.load import load_dataset
from detreduce.data.synthetic import make_synthetic
from detreduce.report import svg
from detreduce.report.html import READY_MARKER, _groups, pick_evenly, write_selection_page

CHROMIUM = Path("/usr/bin/chromium")
CAP = 5


def run(argv, capsys) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def reduce_to(data: Path, out: Path, method: str, *extra: str) -> Path:
    argv = ["reduce", str(data), "--method", method, "--fraction", "0.5", "--out", str(out)]
    assert main([*argv, *extra]) == 0
    return out


@pytest.fixture(scope="module")
def reductions(tmp_path_factory) -> dict[str, Path]:
    """A k-center (hist_hog embeddings) and a random reduction of one synthetic dataset."""
    root = tmp_path_factory.mktemp("show")
    with pytest.MonkeyPatch.context() as mp:  # module scope: set what conftest sets per test
        mp.setenv("DETREDUCE_RUNS", str(root / "runs"))
        mp.setenv("YOLO_OFFLINE", "1")
        data = make_synthetic(root / "ds", n_images=40, imgsz=64, seed=0)
        return {
            "data": data,
            "kcenter": reduce_to(data, root / "kc", "kcenter", "--backbone", "hist_hog"),
            "random": reduce_to(data, root / "rnd", "random"),
        }


def expected_thumbs(out: Path, cap: int) -> tuple[int, int]:
    """Kept and dropped thumbnails the page must show: per class (``selection.json``'s
    figures) and for the images without boxes (counted in the dataset), min(cap, images)."""
    m = json.loads((out / "selection.json").read_text())
    kept = sum(min(cap, m["classes_after"][c]["images"]) for c in m["classes_before"])
    dropped = sum(
        min(cap, m["classes_before"][c]["images"] - m["classes_after"][c]["images"])
        for c in m["classes_before"]
    )
    train = load_dataset(m["dataset"]["source"]).split("train")
    empty = {str(p) for p, n in zip(train.image_paths, train.boxes_per_image()) if n == 0}
    kept_empty = len(empty & set(m["kept_images"]))
    return kept + min(cap, kept_empty), dropped + min(cap, len(empty) - kept_empty)


def page_data(html: str) -> dict:
    block = re.search(r'<script type="application/json" id="detreduce-data">(.*?)</script>', html)
    return json.loads(block.group(1))


def external_refs(html: str) -> list[str]:
    """Every src/href/url() that leaves the file (a scheme or a protocol-relative //)."""
    attrs = re.findall(r"""(?:src|href)\s*=\s*["']?\s*([^"'\s>]+)""", html, flags=re.I)
    urls = re.findall(r"""url\(\s*["']?([^"')]+)""", html, flags=re.I)
    return [
        u
        for u in attrs + urls
        if re.match(r"(?i)([a-z][a-z0-9+.-]*:|//)", u) and not u.lower().startswith("data:")
    ]


# ------------------------------------------------------------------ the file
@pytest.mark.parametrize("cap", [CAP, 100])
def test_page_is_self_contained_with_capped_thumbnails_map_and_histograms(reductions, capsys, cap):
    out = reductions["kcenter"]
    code, stdout, err = run(["show", out, "--per-class", cap], capsys)
    assert code == 0, err
    page = out / "selection.html"
    assert page.is_file() and str(page) in stdout
    html = page.read_text()
    assert external_refs(html) == []
    assert "http://" not in html and "https://" not in html
    assert "default-src 'none'" in html  # the browser refuses any fetch
    data = page_data(html)
    kept, dropped = expected_thumbs(out, cap)
    assert sum(len(g["kept"]) for g in data["groups"]) == kept
    assert sum(len(g["dropped"]) for g in data["groups"]) == dropped
    shown = {str(i) for g in data["groups"] for s in ("kept", "dropped") for i in g[s]}
    assert set(data["thumbs"]) == shown
    assert all(t["src"].startswith("data:image/jpeg;base64,") for t in data["thumbs"].values())

    m = json.loads((out / "selection.json").read_text())
    points = re.findall(r'<circle class="pt (kept|dropped)" data-i="(\d+)"', html)
    assert len(points) == m["images_before"]  # one point per train image
    assert len({i for _, i in points}) == m["images_before"]
    assert sum(k == "kept" for k, _ in points) == m["images_after"]
    charts = re.findall(r'<svg class="bars".*?</svg>', html)
    assert len(charts) == 4  # images per class, boxes per class, boxes per image, box size
    n_bins = len(m["figures"]["box_count_hist"]["bins"])
    assert any(c.count('<rect class="bar') == 2 * n_bins for c in charts)


def test_page_is_deterministic_and_written_atomically(reductions, tmp_path):
    out = reductions["kcenter"]
    a = write_selection_page(out, page=tmp_path / "a.html", show_per_class=CAP)
    b = write_selection_page(out, page=tmp_path / "b.html", show_per_class=CAP)
    assert a.path.read_bytes() == b.path.read_bytes()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.html", "b.html"]  # no temp left


def test_a_selection_without_embeddings_says_so_unless_a_backbone_is_given(reductions, capsys):
    out = reductions["random"]
    assert run(["show", out], capsys)[0] == 0
    html = (out / "selection.html").read_text()
    assert "used no embeddings" in html and 'class="pt ' not in html
    assert run(["show", out, "--backbone", "hist_hog"], capsys)[0] == 0
    html = (out / "selection.html").read_text()
    n = json.loads((out / "selection.json").read_text())["images_before"]
    assert len(re.findall(r'<circle class="pt ', html)) == n
    assert "the selection read no embeddings" in html


def test_max_points_draws_an_even_subsample(reductions):
    result = write_selection_page(reductions["kcenter"], show_max_points=7, show_per_class=1)
    assert result.points == 7
    html = result.path.read_text()
    assert len(re.findall(r'<circle class="pt ', html)) == 7
    assert "7 of 30 images drawn" in html


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda tmp: tmp / "missing", r"missing: no such folder \(`detreduce reduce DATA --out"),
        (lambda tmp: tmp, r"has no selection\.json: not a `detreduce reduce` output"),
        (
            lambda tmp: (tmp / "selection.json").write_text("{bad") and tmp,
            r"selection\.json:1: not valid JSON",
        ),
        (
            lambda tmp: (tmp / "selection.json").write_text("{}") and tmp,
            r"selection\.json: no dataset, method, kept_images recorded",
        ),
    ],
)
def test_a_bad_out_is_one_line_naming_the_command_that_makes_one(tmp_path, capsys, make, message):
    code, _, err = run(["show", make(tmp_path)], capsys)
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("detreduce: error: ")
    assert re.search(message, lines[0])
    assert "detreduce reduce" in lines[0]


def test_a_bad_option_fails_before_the_dataset_is_read(reductions, capsys, monkeypatch):
    import detreduce.report.html as html

    def no_read(*args, **kwargs):
        raise AssertionError("the dataset was read before the options were checked")

    monkeypatch.setattr(html, "read_reduction", no_read)
    code, _, err = run(["show", reductions["kcenter"], "--per-class", "-1"], capsys)
    assert code == 2
    assert (
        err.strip() == "detreduce: error: reduce.show_per_class: expected an integer >= 0, got -1"
    )


def test_a_moved_dataset_is_named_and_data_overrides_it(tmp_path, capsys):
    data = make_synthetic(tmp_path / "ds", n_images=16, imgsz=64, seed=1)
    out = reduce_to(data, tmp_path / "out", "random")
    shutil.move(tmp_path / "ds", tmp_path / "moved")
    moved = tmp_path / "moved" / "data.yaml"  # its absolute `path:` moves with it, as a user would
    moved.write_text(moved.read_text().replace(str(tmp_path / "ds"), str(tmp_path / "moved")))
    code, _, err = run(["show", out], capsys)
    assert code == 2 and "is not found" in err and "pass --data PATH" in err
    code, _, err = run(["show", out, "--data", moved], capsys)
    assert code == 0, err
    assert "moved" in (out / "selection.html").read_text()


def test_duplicates_problems_and_a_changed_dataset_are_on_the_page(tmp_path, capsys):
    data = make_synthetic(tmp_path / "ds", n_images=16, imgsz=64, seed=2)
    images = sorted((tmp_path / "ds" / "images" / "train").iterdir())
    shutil.copy(images[0], images[0].with_name("zz_copy" + images[0].suffix))
    label = tmp_path / "ds" / "labels" / "train" / (images[1].stem + ".txt")
    label.write_text(label.read_text() + "0 0.5 oops\n")
    out = reduce_to(data, tmp_path / "out", "random")
    (tmp_path / "ds" / "labels" / "train" / (images[2].stem + ".txt")).write_text("")
    assert run(["show", out], capsys)[0] == 0
    html = (out / "selection.html").read_text()
    assert "<b>duplicate_image</b>: 1" in html and "zz_copy" in html
    assert "<b>malformed_line</b>: 1" in html and f"{label.name}:" in html
    assert "changed since the reduction" in html


# ------------------------------------------------------------ the pieces
@pytest.mark.parametrize(
    ("n", "k", "expected"),
    [(5, 10, [0, 1, 2, 3, 4]), (10, 3, [0, 4, 9]), (10, 1, [0]), (4, 0, []), (0, 3, [])],
)
def test_pick_evenly_spans_the_list(n, k, expected):
    assert pick_evenly(np.arange(n), k).tolist() == expected


def test_groups_hold_every_class_then_images_without_boxes():
    from detreduce.data.model import DetectionDataset

    ds = DetectionDataset(
        names=["a", "b"],
        image_paths=[f"/d/{i}.jpg" for i in range(4)],
        image_sizes=[[10, 10]] * 4,
        image_splits=["train"] * 4,
        box_image=[0, 0, 1],
        box_class=[0, 1, 1],
        box_xyxy=[[0, 0, 5, 5]] * 3,
    )
    kept = np.array([True, False, True, False])
    groups = _groups(ds, kept, [f"{i}.jpg" for i in range(4)], cap=5)
    assert [(g["cls"], g["kept"], g["dropped"]) for g in groups] == [
        (0, [0], []),
        (1, [0], [1]),
        (-1, [2], [3]),
    ]


def test_pca_2d_finds_the_main_axis_and_is_sign_stable():
    rng = np.random.default_rng(0)
    t = rng.normal(size=200)
    X = np.stack([t, 2 * t, 0.01 * rng.normal(size=200)], axis=1)
    xy, (v1, v2) = svg.pca_2d(X)
    assert v1 > 0.99 and v2 < 0.01
    assert np.allclose(np.abs(xy[:, 0]), np.abs(t - t.mean()) * np.sqrt(5), atol=1e-2)
    # the sign follows the largest loading, so the picture does not flip between runs
    assert np.corrcoef(xy[:, 0], t)[0, 1] > 0.99
    assert np.corrcoef(svg.pca_2d(-X)[0][:, 0], -t)[0, 1] > 0.99
    assert svg.pca_2d(np.ones((3, 4)))[1] == (0.0, 0.0)


def test_class_colors_are_distinct_for_many_classes():
    colors = svg.class_colors(40)
    assert len(set(colors)) == 40 and svg.NO_BOX_COLOR not in colors


# ----------------------------------------------------------- in a browser
def find_chromium() -> Path:
    """Debian's Chromium, or skip (fail with DETREDUCE_REQUIRE_DATA=1, as CI sets), like
    the real-data tests (tests/conftest.py)."""
    if not CHROMIUM.exists():
        reason = f"{CHROMIUM} not found: apt-get install chromium (Debian's headless browser)"
        if os.environ.get("DETREDUCE_REQUIRE_DATA") == "1":
            pytest.fail(reason + " and DETREDUCE_REQUIRE_DATA=1")
        pytest.skip(reason)
    return CHROMIUM


@pytest.fixture
def chromium() -> Path:
    return find_chromium()


def test_a_missing_browser_skips_and_fails_under_require_data(monkeypatch, tmp_path):
    monkeypatch.setattr(sys.modules[__name__], "CHROMIUM", tmp_path / "no-chromium")
    monkeypatch.delenv("DETREDUCE_REQUIRE_DATA", raising=False)
    with pytest.raises(pytest.skip.Exception, match="apt-get install chromium"):
        find_chromium()
    monkeypatch.setenv("DETREDUCE_REQUIRE_DATA", "1")
    with pytest.raises(pytest.fail.Exception, match="apt-get install chromium"):
        find_chromium()


def browse(browser: Path, page: Path, tmp: Path, *extra: str) -> tuple[str, list[str]]:
    """Load ``page`` headless: (the DOM after its scripts ran, every console message)."""
    cmd = [
        str(browser),
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={tmp / 'profile'}",
        "--enable-logging=stderr",
        "--v=0",
        *extra,
        page.absolute().as_uri(),
    ]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr[-2000:]
    console = re.findall(r':CONSOLE(?:\(\d+\)|:\d+)\] "(.*)", source: ', done.stderr)
    return done.stdout, console


def test_the_browser_harness_sees_script_errors_and_blocked_fetches(chromium, tmp_path):
    """Positive control: a page that breaks the rules is caught by ``browse``."""
    html = (
        '<!DOCTYPE html><html><head><meta http-equiv="Content-Security-Policy" '
        "content=\"default-src 'none'; script-src 'unsafe-inline'\"></head><body>"
        '<img src="file:///nonexistent.png"><script>noSuchFunction();</script></body></html>'
    )
    page = tmp_path / "bad.html"
    page.write_text(html)
    _, console = browse(chromium, page, tmp_path, "--dump-dom")
    assert any("noSuchFunction" in c for c in console)
    assert any("Content Security Policy" in c for c in console)


def test_page_runs_in_chromium_without_console_errors(reductions, chromium, tmp_path):
    out = reductions["kcenter"]
    result = write_selection_page(out, page=tmp_path / "page.html", show_per_class=CAP)
    kept, dropped = expected_thumbs(out, CAP)
    dom, console = browse(chromium, result.path, tmp_path, "--dump-dom")
    assert console == [f"{READY_MARKER} {kept + dropped}"]
    assert dom.count('<figure class="thumb kept"') == kept
    assert dom.count('<figure class="thumb dropped"') == dropped
    assert dom.count("<img ") == kept + dropped
    assert f'data-thumbnails="{kept + dropped}"' in dom


@pytest.mark.slow
def test_aquarium_page_renders_with_a_screenshot(aquarium, chromium, tmp_path, capsys):
    out = reduce_to(aquarium, tmp_path / "aq", "random")
    code, _, err = run(["show", out, "--backbone", "hist_hog"], capsys)
    assert code == 0, err
    page = out / "selection.html"
    assert page.stat().st_size < 3_000_000
    kept, dropped = expected_thumbs(out, 24)
    dom, console = browse(chromium, page, tmp_path, "--dump-dom")
    assert console == [f"{READY_MARKER} {kept + dropped}"]
    shot = tmp_path / "shot.png"
    browse(chromium, page, tmp_path, f"--screenshot={shot}", "--window-size=1400,2000")
    assert shot.stat().st_size > 50_000  # a rendered page, not a blank one
