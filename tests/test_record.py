"""Typed records at the seams: the results schema (RunRecord), selection figures, result.json.

The store's columns derive from :class:`RunRecord`; a record round-trips through the
store with its types; the committed stores read as they always did; an old-style
``result.json`` (the names before TrainResult took the store's) still loads.
"""

from __future__ import annotations

import csv
import json
import math
import shutil
from collections import Counter
from dataclasses import dataclass, fields
from pathlib import Path

import numpy as np
import pytest

from detreduce.data.model import DetectionDataset
from detreduce.energy import EnergyRecord
from detreduce.metrics import selection_figures
from detreduce.sweep import store
from detreduce.sweep.record import RunRecord, SelectionSummary, column_kinds
from detreduce.sweep.store import ResultsStore, read_results
from detreduce.train.result import TrainResult

ROOT = Path(__file__).resolve().parents[1]
COMMITTED = [ROOT / "results" / "bccd", ROOT / "results" / "bccd-nbs64-partial"]


# ----------------------------------------------------------------- the schema
def test_columns_derive_from_the_record():
    assert store.COLUMNS == tuple(f.name for f in fields(RunRecord))
    kinds = column_kinds(RunRecord)
    assert store.NUMERIC == tuple(c for c in store.COLUMNS if kinds[c] in ("int", "float"))
    assert {c: kinds[c] for c in ("run_id", "seed", "eps", "figures")} == {
        "run_id": "str",
        "seed": "int",
        "eps": "float",
        "figures": "json",
    }


def test_adding_a_field_adds_a_column():
    @dataclass(frozen=True, kw_only=True)
    class Wider(RunRecord):
        gpu_name: str = ""
        peak_gib: float | None = None

    kinds = column_kinds(Wider)
    assert tuple(kinds) == (*store.COLUMNS, "gpu_name", "peak_gib")
    assert (kinds["gpu_name"], kinds["peak_gib"]) == ("str", "float")
    back = Wider.from_row(
        {"run_id": "a", "method": "m", "fraction": "0.5", "seed": "1", "peak_gib": "3.5"}
    )
    assert back.peak_gib == 3.5 and back.seed == 1


# ------------------------------------------------------------------ round trip
def _record(**change) -> RunRecord:
    base = dict(
        run_id="kcenter_f0.25_s1_abc",
        method="kcenter",
        fraction=0.25,
        seed=1,
        status="ok",
        map50=0.61,
        map50_95=0.4123456789012345,
        kwh_total=1.5e-3,
        kwh_gpu=0.0,
        kwh_embedding=None,  # not measured: stays None, never 0
        energy_mode="cpu_load@65W",
        seconds=12.0,
        budget="steps",
        epochs=12,
        steps=312,
        images_seen=2460,
        n_train=205,
        n_kept=51,
        eps=math.inf,  # a class lost every point
        class_share_tv=0.0015,
        model="yolov8n.pt",
        imgsz=224,
        batch=8,
        device="cuda:0",
        backbone="mobilenet_v2",
        balance="classes+boxes",
        protocol="abc",
        started_at="2026-11-22T08:37:04+00:00",
        finished_at="2026-11-22T08:44:53+00:00",
        per_class_ap={"Platelets": 0.05, "RBC, big": 0.5, "WBC": None},
        figures={"balance": "classes+boxes", "missing_classes": ["WBC"], "budget_capped": False},
        run_dir="runs/x",
    )
    return RunRecord(**{**base, **change})


def test_a_record_round_trips_through_the_store_with_its_types(tmp_path):
    rec = _record()
    failed = _record(run_id="full_f1_s1_abc", method="full", fraction=1.0, status="failed",
                     error="RuntimeError: CUDA out of memory", map50=None, eps=0.0)  # fmt: skip
    results = ResultsStore(tmp_path / "results.csv")
    results.append(rec)
    results.append(failed.to_row())
    assert results.records() == [rec, failed]
    back = RunRecord.from_row(results.rows()[0])
    assert back == rec
    assert type(back.seed) is int and type(back.epochs) is int and type(back.fraction) is float
    assert back.eps == math.inf and back.kwh_embedding is None
    assert back.per_class_ap == {"Platelets": 0.05, "RBC, big": 0.5, "WBC": None}

    df = read_results(tmp_path).set_index("method")
    for col in store.NUMERIC:
        assert df[col].dtype.kind in "fi", col
    assert df.loc["kcenter", "map50_95"] == rec.map50_95
    assert df.loc["kcenter", "eps"] == math.inf and df.loc["kcenter", "steps"] == 312
    assert df.loc["full", "error"] == "RuntimeError: CUDA out of memory"
    assert json.loads(df.loc["kcenter", "figures"])["missing_classes"] == ["WBC"]


def test_from_row_tolerates_missing_and_unknown_columns():
    old = {"run_id": "a", "method": "random", "fraction": "0.5", "seed": "0", "status": "ok"}
    rec = RunRecord.from_row(old)  # an older file: every other column takes its default
    assert (rec.map50, rec.figures, rec.per_class_ap, rec.energy_mode) == (None, {}, None, "")
    newer = {**old, "figures": '{"balance":"none"}', "gpu_name": "H200", "empty_new": ""}
    rec = RunRecord.from_row(newer)  # a newer file: unknown columns are kept in figures
    assert rec.figures == {"balance": "none", "gpu_name": "H200"}
    assert RunRecord.from_row({"run_id": "b", "map50": "", "epochs": "12.0"}).epochs == 12


# ---------------------------------------------------------- the committed stores
def _csv_rows(path: Path) -> list[dict[str, str]]:
    with open(path / "results.csv", newline="") as fh:
        return list(csv.DictReader(fh))


@pytest.mark.parametrize("path", COMMITTED, ids=lambda p: p.name)
def test_committed_stores_read_as_before(path):
    raw = _csv_rows(path)
    last = {r["run_id"]: r for r in raw}  # the latest row per run wins
    df = read_results(path)
    assert len(df) == len(last) and list(df.columns[: len(store.COLUMNS)]) == list(store.COLUMNS)
    assert len(read_results(path, latest=False)) == len(raw)
    assert Counter(df["status"]) == Counter(r["status"] for r in last.values())
    full = df[df["method"] == "full"].set_index("run_id")["map50_95"]
    assert full.to_dict() == {
        rid: float(r["map50_95"]) for rid, r in last.items() if r["method"] == "full"
    }
    assert df["kwh_total"].tolist() == [float(r["kwh_total"]) for r in last.values()]
    records = ResultsStore(path / "results.csv").records()
    assert [r.run_id for r in records] == [r["run_id"] for r in raw]
    assert all(isinstance(r.figures, dict) and isinstance(r.seed, int) for r in records)


@pytest.mark.parametrize("path", COMMITTED, ids=lambda p: p.name)
def test_resuming_a_committed_store_appends_with_its_own_header(path, tmp_path):
    shutil.copy(path / "results.csv", tmp_path / "results.csv")
    header = (tmp_path / "results.csv").read_text().splitlines()[0]
    ResultsStore(tmp_path / "results.csv").append(_record())
    lines = (tmp_path / "results.csv").read_text().splitlines()
    assert lines[0] == header and len(lines) == len(_csv_rows(path)) + 2
    assert read_results(tmp_path).iloc[-1]["run_id"] == "kcenter_f0.25_s1_abc"


def test_an_older_header_keeps_new_columns_in_figures(tmp_path):
    short = [c for c in store.COLUMNS if c not in ("kwh_embedding_whole", "steps")]
    (tmp_path / "results.csv").write_text(",".join(short) + "\n")
    ResultsStore(tmp_path / "results.csv").append(_record(kwh_embedding_whole=2.5e-4))
    (rec,) = ResultsStore(tmp_path / "results.csv").records()
    assert rec.steps is None and rec.kwh_embedding_whole is None
    assert rec.figures["steps"] == 312 and rec.figures["kwh_embedding_whole"] == 2.5e-4


# ------------------------------------------------------------------ result.json
#: A ``result.json`` as detreduce wrote it before TrainResult took the store's names.
OLD_RESULT_JSON = {
    "data_yaml": "/d/data.yaml", "model": "yolov8n.pt", "imgsz": 64, "batch": 8,
    "device": "cpu", "seed": 0, "workers": 0, "amp": False, "budget": "steps",
    "fraction": 0.5, "max_epoch_scale": 4.0, "base_epochs": 1, "epochs": 2,
    "budget_capped": False, "class_names": ["circle", "square"], "n_train_images": 18,
    "n_val_images": 6, "epochs_run": 2, "iterations": 6, "optimizer_steps": 3,
    "images_seen": 36, "map50": 0.5, "map50_95": 0.25, "precision": 0.6, "recall": 0.4,
    "ap50_per_class": {"circle": 0.6, "square": None},
    "ap50_95_per_class": {"circle": 0.3, "square": None},
    "out_dir": "/o", "weights": "/o/train/weights/last.pt",
    "versions": {"ultralytics": "8.4.0"}, "seconds": 14.0, "train_seconds": 12.5,
    "val_seconds": 1.5, "kwh_total": 0.0022, "kwh_cpu": 0.00165, "kwh_gpu": 0.0,
    "kwh_ram": 0.00055, "kg_co2": 0.00088, "country_iso_code": "USA",
    "cpu_power_mode": "cpu_load", "gpu_power_mode": "none",
    "energy_tracking_mode": "process", "cpu_model": "Xeon", "train_kwh": 0.002,
    "train_cpu_kwh": 0.0015, "train_gpu_kwh": 0.0, "train_ram_kwh": 0.0005,
    "train_kg_co2": 0.0008, "train_energy_error": "", "val_kwh": 0.0002,
    "val_cpu_kwh": 0.00015, "val_gpu_kwh": 0.0, "val_ram_kwh": 5e-05, "val_kg_co2": 8e-05,
    "val_energy_error": "",
}  # fmt: skip


def _energy(phase: str, seconds: float, kwh: float, cpu: float, ram: float, co2: float):
    return EnergyRecord(
        phase, seconds, kwh=kwh, cpu_kwh=cpu, gpu_kwh=0.0, ram_kwh=ram, kg_co2=co2,
        cpu_mode="cpu_load", gpu_mode="none", tracking_mode="process",
        country_iso_code="USA", cpu_model="Xeon",
    )  # fmt: skip


def _train_result() -> TrainResult:
    return TrainResult(
        data_yaml="/d/data.yaml", model="yolov8n.pt", imgsz=64, batch=8, device="cpu",
        seed=0, workers=0, amp=False, budget="steps", fraction=0.5, max_epoch_scale=4.0,
        base_epochs=1, epochs_planned=2, budget_capped=False,
        class_names=["circle", "square"], n_train_images=18, n_val_images=6, epochs=2,
        iterations=6, steps=3, images_seen=36, map50=0.5, map50_95=0.25, precision=0.6,
        recall=0.4, per_class_ap50={"circle": 0.6, "square": None},
        per_class_ap={"circle": 0.3, "square": None},
        train_energy=_energy("training", 12.5, 0.002, 0.0015, 0.0005, 0.0008),
        val_energy=_energy("validation", 1.5, 0.0002, 0.00015, 5e-05, 8e-05),
        out_dir="/o", weights="/o/train/weights/last.pt", versions={"ultralytics": "8.4.0"},
    )  # fmt: skip


def test_train_result_reads_old_and_new_result_json_alike():
    expected = _train_result()
    new = json.loads(json.dumps(expected.to_dict()))
    from_old, from_new = TrainResult.from_dict(OLD_RESULT_JSON), TrainResult.from_dict(new)
    assert from_old == from_new == expected
    assert (from_old.epochs_planned, from_old.epochs, from_old.steps) == (2, 2, 3)
    assert from_old.to_dict() == new  # an old file, saved again, takes today's names


def test_train_result_speaks_the_store_names():
    row = _train_result().to_dict()
    for old in ("train_kwh", "val_kwh", "kg_co2", "train_seconds", "val_seconds",
                "optimizer_steps", "ap50_95_per_class", "epochs_run"):  # fmt: skip
        assert old not in row, old
    shared = set(row) & set(store.COLUMNS)
    assert {"kwh_training", "kwh_validation", "co2_kg", "seconds_training", "steps",
            "per_class_ap", "energy_mode", "epochs"} <= shared  # fmt: skip
    assert row["kwh_training"] == pytest.approx(0.002) and row["energy_mode"] == "cpu_load"
    assert row["kwh_total"] == pytest.approx(row["kwh_training"] + row["kwh_validation"])


# ---------------------------------------------------------- selection summary
def _dataset() -> DetectionDataset:
    # image 0: two a; image 1: one a + one b; image 2: one c; image 3: background
    return DetectionDataset(
        names=["a", "b", "c"],
        image_paths=[f"/d/{i}.jpg" for i in range(4)],
        image_sizes=[[100, 100]] * 4,
        image_splits=["train"] * 4,
        box_image=[0, 0, 1, 1, 2],
        box_class=[0, 0, 0, 1, 2],
        box_xyxy=[[0, 0, 10, 10], [0, 0, 50, 50], [0, 0, 10, 10], [0, 0, 30, 30], [0, 0, 80, 80]],
    )


def _figures(kept):
    ds = _dataset()
    X = np.array([[0.0, 0.0], [1.0, 0.0], [5.0, 5.0], [9.0, 9.0]])
    boxes = (ds.box_image, ds.box_class, 10.0 * np.arange(10, dtype=float).reshape(5, 2))
    return selection_figures(ds, kept, X, box_features=boxes, metric="chebyshev")


@pytest.mark.parametrize(
    ("level", "drop_box_block", "expected_level"),
    [("image", False, "image"), ("box", False, "box"), ("box", True, "image")],
)
def test_summary_reads_epsilon_at_the_sweep_level(level, drop_box_block, expected_level):
    figures = _figures([1, 2])  # keeps a, b and c (a's other image dropped)
    if drop_box_block:
        figures.pop("epsilon_box")
    s = SelectionSummary.from_figures(figures, level=level, balance="classes")
    block = figures["epsilon_box" if expected_level == "box" else "epsilon"]
    assert s.level == expected_level and s.eps == float(block["overall"])
    assert figures["epsilon"]["overall"] != figures.get("epsilon_box", {}).get("overall")
    assert s.class_share_tv == figures["box_share"]["tv"] and s.missing_classes == ()
    assert s.box_count_tv == figures["box_count_hist"]["tv"]
    assert s.box_size_tv == figures["box_size_hist"]["tv"]
    assert s.to_figures()["balance"] == "classes"


@pytest.mark.parametrize("level", ["image", "box"])
def test_summary_gives_infinity_for_a_lost_class(level):
    s = SelectionSummary.from_figures(_figures([0, 1]), level=level, balance="none")
    assert s.eps == math.inf and s.missing_classes == ("c",)
    assert s.eps_per_class["c"] == math.inf and s.eps_box_per_class["c"] == math.inf
    assert s.eps_per_class["a"] == 0.0
    out = s.to_figures()  # back to strict JSON: ∞ as "inf", as selection.json writes it
    json.dumps(out, allow_nan=False)
    assert out["epsilon_per_class"]["c"] == "inf" and out["missing_classes"] == ["c"]


def test_summary_without_figures_and_for_full_data():
    empty = SelectionSummary.from_figures({}, level="box", balance="none")
    assert (empty.eps, empty.class_share_tv, empty.eps_per_class) == (None, None, None)
    assert empty.to_figures() == {"balance": "none"}
    full = SelectionSummary.full_data("none")
    assert (full.eps, full.class_share_tv) == (0.0, 0.0)
