"""Results stores resume wherever they and the dataset live now.

A sweep keys what it measured on the dataset's content (``content_fingerprint``), not on
its path, so a store committed in one checkout resumes in another (CI's clean clone, a
colleague's machine). Stores written before that (legacy: the dataset's absolute path in
the protocol and in the run-id key) are upgraded in place on a resume from where they
were written, keeping their run ids. The end-to-end tests train YOLO for real (1 epoch,
imgsz 64) on a tiny synthetic dataset; the last ones resume the committed BCCD stores.
"""

from __future__ import annotations

import csv
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import REPO

from detreduce.data import load_dataset
from detreduce.errors import OutputExistsError
from detreduce.sweep import read_results, run_sweep
from detreduce.sweep.sweep import _Plan

TINY = {"epochs": 1, "imgsz": 64, "batch": 8, "device": "cpu", "workers": 0}
HALF = {"methods": ["random"], "fractions": [0.5], "seeds": [0]}


def _dataset(folder: Path) -> Path:
    from detreduce.data.synthetic import make_synthetic

    return make_synthetic(folder, n_images=16, imgsz=64, seed=0)


def _move(src: Path, dst: Path, copy: bool = False) -> None:
    """Move (or copy) a folder holding a synthetic dataset ``data/`` and a sweep store;
    the data.yaml names its own absolute path, as Ultralytics' files often do: rewritten."""
    (shutil.copytree if copy else shutil.move)(src, dst)
    yaml = dst / "data" / "data.yaml"
    yaml.write_text(yaml.read_text().replace(str(src), str(dst)))


def test_the_content_fingerprint_survives_a_move_and_sees_a_relabel(tmp_path):
    a = load_dataset(_dataset(tmp_path / "a" / "data"))
    _move(tmp_path / "a", tmp_path / "b")
    b = load_dataset(tmp_path / "b" / "data" / "data.yaml")
    assert b.content_fingerprint() == a.content_fingerprint()
    assert b.fingerprint() != a.fingerprint()  # caches holding paths still tell them apart
    label = sorted((tmp_path / "b" / "data" / "labels" / "train").glob("*.txt"))[0]
    label.write_text(label.read_text() + "0 0.5 0.5 0.1 0.1\n")  # one more box
    assert load_dataset(tmp_path / "b" / "data").content_fingerprint() != a.content_fingerprint()


@pytest.mark.slow
def test_a_store_resumes_after_it_and_the_dataset_moved(tmp_path):
    data = _dataset(tmp_path / "a" / "data")
    first = run_sweep(data, tmp_path / "a" / "sweep", sweep=HALF, train=TINY)
    assert (first.ran, first.failed) == (2, 0)
    config = json.loads((tmp_path / "a" / "sweep" / "sweep.json").read_text())
    assert "dataset" not in config["protocol"]  # no path in what the run ids hash

    _move(tmp_path / "a", tmp_path / "b")
    again = run_sweep(tmp_path / "b" / "data", tmp_path / "b" / "sweep", sweep=HALF, train=TINY)
    assert (again.ran, again.skipped) == (0, 2)  # nothing recomputed
    assert len(read_results(tmp_path / "b" / "sweep", latest=False)) == 2

    label = sorted((tmp_path / "b" / "data" / "labels" / "train").glob("*.txt"))[0]
    label.unlink()  # other data: refused, with what differs
    with pytest.raises(OutputExistsError, match="fingerprint"):
        run_sweep(tmp_path / "b" / "data", tmp_path / "b" / "sweep", sweep=HALF, train=TINY)


def _make_legacy(out: Path, data: Path) -> str:
    """Rewrite a store as detreduce wrote it before location-free protocols: the protocol
    holds the dataset's absolute path and its location-bound fingerprint, and the run ids
    carry that protocol's key. Returns the legacy key."""
    ds = load_dataset(data)
    config = json.loads((out / "sweep.json").read_text())
    plan = _Plan.build(str(Path(data).absolute()), HALF, TINY, None, None, None, None, None)
    legacy = plan.protocol(ds.fingerprint(), dataset=plan.data)
    config["protocol"], new_key = legacy.to_dict(), config["protocol_key"]
    config["protocol_key"] = legacy.key()
    (out / "sweep.json").write_text(json.dumps(config))
    text = (out / "results.csv").read_text().replace(new_key, legacy.key())
    (out / "results.csv").write_text(text)
    return legacy.key()


@pytest.mark.slow
def test_a_legacy_store_is_upgraded_where_it_was_written_then_resumes_anywhere(tmp_path):
    data = _dataset(tmp_path / "a" / "data")
    out = tmp_path / "a" / "sweep"
    run_sweep(data, out, sweep=HALF, train=TINY)
    key = _make_legacy(out, data)

    _move(tmp_path / "a", tmp_path / "moved", copy=True)  # before the upgrade: a clear refusal
    with pytest.raises(OutputExistsError, match="resume it once from there"):
        run_sweep(tmp_path / "moved" / "data", tmp_path / "moved" / "sweep", sweep=HALF, train=TINY)

    here = run_sweep(data, out, sweep=HALF, train=TINY)  # where it was written: upgraded
    assert (here.ran, here.skipped) == (0, 2)
    config = json.loads((out / "sweep.json").read_text())
    assert "dataset" not in config["protocol"] and config["protocol_key"] == key

    _move(tmp_path / "a", tmp_path / "b")
    there = run_sweep(tmp_path / "b" / "data", tmp_path / "b" / "sweep", sweep=HALF, train=TINY)
    assert (there.ran, there.skipped) == (0, 2)
    rows = read_results(tmp_path / "b" / "sweep", latest=False)
    assert set(rows["protocol"]) == {key} and len(rows) == 2


@pytest.mark.parametrize("store", ["bccd-pretrained", "bccd-policies"])
def test_the_committed_bccd_stores_resume_from_this_checkout(store, bccd, tmp_path):
    """Copied elsewhere and rerun with their recorded command on the dataset wherever it
    is here, the committed stores have nothing left to run: a later session (or CI's
    clone) resumes them instead of recomputing."""
    src = REPO / "results" / store
    out = tmp_path / store
    out.mkdir()
    for name in ("sweep.json", "results.csv", "embedding.json", "proxy.json"):
        if (src / name).exists():
            shutil.copy(src / name, out / name)
    config = json.loads((src / "sweep.json").read_text())
    args = config["commands"][-1].split()
    assert args[:2] == ["detreduce", "sweep"]
    args[2] = str(bccd)
    args[args.index("--out") + 1] = str(out)
    rows_before = (out / "results.csv").read_text()
    proc = subprocess.run(
        [sys.executable, "-m", "detreduce", *args[1:]], capture_output=True, text=True,
        cwd=tmp_path, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "0 to run" in proc.stdout + proc.stderr
    assert (out / "results.csv").read_text() == rows_before
    with open(out / "results.csv", newline="") as f:
        assert {row["protocol"] for row in csv.DictReader(f)} == {config["protocol_key"]}
