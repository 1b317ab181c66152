"""The sweep report: figures computed from a hand-made results.csv, Markdown and PNG plots."""

from __future__ import annotations

import json

import matplotlib.image as mpimg
import pandas as pd
import pytest

from detreduce.cli import main
from detreduce.errors import DetReduceError
from detreduce.methods import method_label
from detreduce.report import pareto_front, summary_table, write_report
from detreduce.sweep.store import read_results

RESULTS = """run_id,method,fraction,seed,status,map50,map50_95,kwh_total,seconds,eps,energy_mode,error
full_f1_s0,full,1.0,0,ok,0.6,0.40,0.010,100,0,cpu_load,
full_f1_s1,full,1.0,1,ok,0.7,0.50,0.012,110,0,cpu_load,
random_f0.5_s0,random,0.5,0,ok,0.5,0.30,0.006,50,0.9,cpu_load,
random_f0.5_s1,random,0.5,1,ok,0.5,0.35,0.006,52,0.8,cpu_load,
clc_f0.5_s0,clc,0.5,0,ok,0.55,0.36,0.007,60,0.5,cpu_load,
clc_f0.5_s1,clc,0.5,1,ok,0.56,0.38,0.007,61,0.7,cpu_load,
clc_f0.25_s0,clc,0.25,0,failed,,,,,,,RuntimeError: out of memory
clc_f0.25_s1,clc,0.25,1,ok,0.4,0.20,0.004,30,1.2,cpu_load,
"""

CONFIG = {
    "data": "/data/bccd",
    "seeds": [0, 1],
    "command": "detreduce sweep /data/bccd --methods clc --fractions 0.25,0.5 --seeds 0,1",
    "protocol": {
        "model": "yolov8n.yaml",
        "epochs": 30,
        "imgsz": 320,
        "batch": 16,
        "device": "cpu",
        "budget": "epochs",
        "backbone": "mobilenet_v2",
        "balance": "classes",
        "level": "image",
    },
}


@pytest.fixture
def sweep_dir(tmp_path):
    d = tmp_path / "bccd-sweep"
    d.mkdir()
    (d / "results.csv").write_text(RESULTS)
    (d / "sweep.json").write_text(json.dumps(CONFIG))
    (d / "embedding.json").write_text(
        json.dumps({"kwh": 0.002, "seconds": 40, "backbone": "mobilenet_v2", "charged_runs": 4})
    )
    return d


def test_summary_table_figures_relative_to_full(sweep_dir):
    table = summary_table(read_results(sweep_dir)).set_index(["method", "fraction"])
    # baselines first, then methods; fractions ascending
    assert list(table.index) == [("full", 1.0), ("random", 0.5), ("clc", 0.25), ("clc", 0.5)]
    full, rnd, clc25, clc50 = (table.loc[k] for k in table.index)
    assert full["map50_95"] == pytest.approx(0.45)
    assert full["map50_95_std"] == pytest.approx(0.05)
    assert full["map_rel"] == pytest.approx(1.0)
    assert rnd["map_rel"] == pytest.approx(0.325 / 0.45)
    assert rnd["kwh_saved"] == pytest.approx(1 - 0.006 / 0.011)
    assert clc50["map_rel"] == pytest.approx(0.37 / 0.45)
    assert clc50["eps"] == pytest.approx(0.6)
    assert clc50["seconds"] == pytest.approx(60.5)
    # the failed seed is counted, not averaged in
    assert (clc25["n"], clc25["failed"]) == (1, 1)
    assert clc25["map50_95"] == pytest.approx(0.20)


def test_pareto_front_keeps_only_non_dominated_points():
    pts = pd.DataFrame(
        {"kwh": [1.0, 2.0, 3.0, 2.5, 4.0], "map50_95": [0.1, 0.3, 0.2, 0.35, 0.5]},
        index=list("abcde"),
    )
    assert list(pareto_front(pts).index) == ["a", "b", "d", "e"]


def test_write_report_writes_markdown_table_and_readable_plots(sweep_dir):
    path = write_report(sweep_dir)
    assert path == sweep_dir / "report.md"
    text = path.read_text()
    # protocol stated
    for needle in (
        "yolov8n.yaml",
        "imgsz 320",
        "`epochs`",
        "epochs = 30",
        "cpu_load",
        "device `cpu`",
    ):
        assert needle in text, needle
    assert "split evenly over the 4 reduced runs" in text
    assert CONFIG["command"] in text
    # one table row per (method, fraction) with relative figures
    assert (
        f"| {method_label('full')} | 1.00 | 2 | 0.450 ± 0.050 | [-0.185, 1.085] | 0.650 | 100.0 % | 11 | – | 0 | 105 |"
        in text
    )
    assert (
        "| random (uniform, no balance) | 0.50 | 2 | 0.325 ± 0.025 | [0.007, 0.643] | 0.500 | 72.2 % | 6 | +45.5 % |"
        in text
    )
    assert "| clc | 0.25 | 1 (1 failed) | 0.200 ± 0.000 |" in text
    assert "RuntimeError: out of memory" in text
    for name in ("map_vs_fraction", "kwh_vs_fraction", "pareto"):
        png = sweep_dir / "plots" / f"{name}.png"
        assert f"plots/{name}.png" in text
        img = mpimg.imread(png)
        assert img.shape[0] > 300 and img.shape[1] > 500  # a real figure, not an empty file


def test_report_cli_prints_the_path(sweep_dir, capsys):
    assert main(["report", str(sweep_dir)]) == 0
    assert str(sweep_dir / "report.md") in capsys.readouterr().out.replace("\n", "")


def test_report_without_results_is_a_clear_error(tmp_path):
    with pytest.raises(DetReduceError, match="results.csv"):
        write_report(tmp_path)
    assert main(["report", str(tmp_path)]) == 2


def test_mean_interval_is_the_student_t_interval_over_seeds():
    from detreduce.metrics import mean_interval

    mean, lo, hi = mean_interval([1.0, 2.0, 3.0])
    half = 4.302652729911275 * 1.0 / 3**0.5  # t(0.975, 2) · s / √n, s = 1
    assert (mean, lo, hi) == pytest.approx((2.0, 2.0 - half, 2.0 + half))
    assert mean_interval([0.4])[0] == 0.4 and pd.isna(mean_interval([0.4])[1])


def test_paired_to_random_marks_what_the_seeds_can_tell(sweep_dir):
    from detreduce.report.tables import paired_to_random

    paired = paired_to_random(read_results(sweep_dir)).set_index(["method", "fraction"])
    clc50 = paired.loc[("clc", 0.5)]
    assert clc50["pairs"] == 2 and clc50["diff"] == pytest.approx(0.045)
    assert clc50["lo"] < 0 < clc50["hi"] and clc50["verdict"] == "indistinguishable"
    assert paired.loc[("clc", 0.25)]["verdict"] == "too few seeds"  # no random run at 0.25
    rows = [
        {"run_id": f"{m}_{s}", "method": m, "fraction": 0.5, "seed": s, "status": "ok",
         "map50_95": v}
        for m, vals in (("random", [0.30, 0.31, 0.32]), ("kcenter", [0.35, 0.37, 0.39]))
        for s, v in enumerate(vals)
    ]  # fmt: skip
    better = paired_to_random(pd.DataFrame(rows)).iloc[0]
    assert better["diff"] == pytest.approx(0.06) and better["lo"] > 0
    assert better["verdict"] == "better"


def test_report_has_the_paired_table(sweep_dir):
    text = write_report(sweep_dir).read_text()
    assert "## Against uniform random, paired by seed" in text
    assert "| clc | 0.50 | 2 | +0.045 | [-0.146, +0.236] | indistinguishable from random |" in text


def test_one_line_answer_names_the_best_method_and_random(sweep_dir):
    from detreduce.report.tables import one_line_answer

    answer = one_line_answer(summary_table(read_results(sweep_dir)))
    # at 50 %: clc 0.37 / 0.45 = 82 %, 1 − 0.007 / 0.011 = 36 %; random 72 %, 45 %
    assert answer == (
        "at 50 % of the images: clc keeps 82 % of full mAP50-95 for 36 % less energy; "
        "random keeps 72 % of full mAP50-95 for 45 % less energy"
    )
    assert f"**In one line**: {answer}." in write_report(sweep_dir).read_text()


def test_time_to_accuracy_table_reads_curves_against_the_same_seeds_full_run():
    from detreduce.report.markdown import tta_markdown
    from detreduce.report.tables import time_to_accuracy_table

    def curve(*maps):  # one point per epoch, 10 s and 0.001 kWh each
        return json.dumps(
            [
                {"epoch": e, "map50": m, "map50_95": m, "seconds_training": 9.0 * e,
                 "seconds_validation": 1.0 * e, "kwh": 0.001 * e}
                for e, m in enumerate(maps, start=1)
            ]
        )  # fmt: skip

    rows = [
        ("full", 1.0, 0, 0.40, curve(0.2, 0.4)),
        ("full", 1.0, 1, 0.50, curve(0.3, 0.5)),
        ("kcenter", 0.5, 0, 0.39, curve(0.30, 0.37, 0.39)),  # 90 % of 0.40 = 0.36 at epoch 2
        ("kcenter", 0.5, 1, 0.40, curve(0.35, 0.40)),  # 90 % of 0.50 = 0.45: never
    ]
    df = pd.DataFrame(
        [
            {"run_id": f"{m}{s}", "method": m, "fraction": f, "seed": s, "status": "ok",
             "map50_95": v, "curve": c}
            for m, f, s, v, c in rows
        ]
    )  # fmt: skip
    row = time_to_accuracy_table(df).iloc[0]
    assert (row["method"], row["runs"], row["reached_90"]) == ("kcenter", 2, 1)
    assert row["kwh_90"] == pytest.approx(0.002) and row["seconds_90"] == pytest.approx(20.0)
    # what the reduction cost (embedding share + selection) is paid before the first epoch
    reduced = df.assign(kwh_embedding=0.0005, kwh_selection=0.0001, seconds_selection=3.0)
    row = time_to_accuracy_table(reduced).iloc[0]
    assert row["kwh_90"] == pytest.approx(0.0026) and row["seconds_90"] == pytest.approx(23.0)
    assert row["reached_97"] == 1 and row["reached_99"] == 0  # 0.39 ≥ 0.97 × 0.40 = 0.388
    text = tta_markdown(time_to_accuracy_table(df))
    assert "| kcenter | 0.50 | 0.002, 20 s (1/2) |" in text and "never (0/2)" in text
    # how far the runs came: best 0.39 of 0.40 and 0.40 of 0.50 → mean 88.75 %
    assert row["best_share"] == pytest.approx((0.39 / 0.40 + 0.40 / 0.50) / 2)
    assert text.splitlines()[0].endswith("| best of full |") and "| 89 % |" in text
