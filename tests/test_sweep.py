"""Sweeps: grid and run ids, the append-only store, resume after kill -9, failed runs.

The end-to-end tests train YOLO for real (1 epoch, imgsz 64) on a tiny synthetic dataset.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from detreduce.errors import ConfigError, OutputExistsError
from detreduce.methods import method_label
from detreduce.sweep import ResultsStore, build_grid, read_results, run_sweep
from detreduce.sweep.grid import Protocol

TINY = {"epochs": 1, "imgsz": 64, "batch": 8, "device": "cpu", "workers": 0}
UF = {"methods": ["ultralytics-fraction"], "fractions": [0.5], "seeds": [0]}


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory):
    from detreduce.data.synthetic import make_synthetic

    return make_synthetic(tmp_path_factory.mktemp("synth"), n_images=24, imgsz=64, seed=0)


# ------------------------------------------------------------------------- grid
def _protocol(**change):
    base = dict(
        dataset="/d",
        fingerprint="f",
        model="yolov8n.yaml",
        epochs=1,
        imgsz=64,
        batch=8,
        device="cpu",
        budget="epochs",
        backbone="",
        balance="classes",
        level="image",
        workers=0,
    )
    return Protocol(**{**base, **change})


def test_grid_adds_full_and_random_baselines_once_per_seed():
    key = _protocol().key()
    grid = build_grid(["ultralytics-fraction", "random"], [0.5, 0.25, 1.0], [0, 1], key)
    runs = [(s.method, s.fraction, s.seed) for s in grid]
    assert runs[:5] == [
        ("full", 1.0, 0),
        ("random", 0.25, 0),
        ("random", 0.5, 0),
        ("ultralytics_fraction", 0.25, 0),
        ("ultralytics_fraction", 0.5, 0),
    ]
    assert len(runs) == 10 and len(set(runs)) == 10
    assert len({s.run_id for s in grid}) == 10


def test_run_id_is_stable_and_changes_with_the_protocol():
    a = build_grid(["random"], [0.5], [0], _protocol().key())
    b = build_grid(["random"], [0.5], [0], _protocol().key())
    c = build_grid(["random"], [0.5], [0], _protocol(epochs=2).key())
    assert [s.run_id for s in a] == [s.run_id for s in b]
    assert {s.run_id for s in a}.isdisjoint(s.run_id for s in c)


@pytest.mark.parametrize("bad", [[0.0], [1.5], ["half"]])
def test_bad_fractions_are_rejected(bad):
    with pytest.raises(ConfigError, match="fractions"):
        build_grid(["random"], bad, [0], "k")


# ------------------------------------------------------------------------ store
def test_store_drops_a_truncated_last_line_and_appends_cleanly(tmp_path):
    store = ResultsStore(tmp_path / "results.csv")
    store.append({"run_id": "a", "method": "random", "fraction": 0.5, "seed": 0, "status": "ok"})
    store.append({"run_id": "b", "method": "full", "fraction": 1.0, "seed": 0, "status": "ok"})
    with open(store.path, "ab") as fh:  # a writer killed mid-line
        fh.write(b"c,random,0.25,0,o")
    assert [r["run_id"] for r in store.rows()] == ["a", "b"]
    assert store.finished() == {"a", "b"}
    store.append({"run_id": "c", "method": "random", "fraction": 0.25, "seed": 0, "status": "ok"})
    lines = store.path.read_text().splitlines()
    assert len(lines) == 4 and lines[-1].startswith("c,random,0.25,0,ok")
    df = read_results(tmp_path)
    assert list(df["run_id"]) == ["a", "b", "c"]
    assert df["fraction"].dtype.kind == "f"


def test_store_keeps_unknown_keys_and_one_line_errors(tmp_path):
    store = ResultsStore(tmp_path / "results.csv")
    store.append({"run_id": "a", "status": "failed", "error": "boom\non two lines", "new_key": 3})
    (row,) = store.rows()
    assert row["error"] == "boom on two lines"
    assert '"new_key":3' in row["figures"]


def test_latest_row_per_run_wins(tmp_path):
    store = ResultsStore(tmp_path / "results.csv")
    store.append({"run_id": "a", "method": "random", "status": "failed", "error": "x"})
    store.append({"run_id": "a", "method": "random", "status": "ok", "map50_95": 0.3})
    df = read_results(tmp_path)
    assert len(df) == 1 and df.loc[0, "status"] == "ok" and df.loc[0, "map50_95"] == 0.3
    assert len(read_results(tmp_path, latest=False)) == 2


# ------------------------------------------------------------------- end to end
def _wait_for_rows(path, n, proc, timeout=240):
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        if path.exists() and len(ResultsStore(path).rows()) >= n:
            return
        if proc.poll() is not None:
            pytest.fail(f"sweep exited early ({proc.returncode}): {proc.stderr.read()}")
        time.sleep(0.1)
    pytest.fail("no finished run recorded in time")


def _start_sweep(data, out, epochs: int) -> subprocess.Popen:
    """``detreduce sweep`` (full, random, ultralytics-fraction at 0.5) in a subprocess."""
    args = ["--methods", "ultralytics-fraction", "--fractions", "0.5", "--seeds", "0"]
    args += ["--epochs", str(epochs), "--imgsz", "64", "--batch", "8", "--device", "cpu"]
    args += ["--workers", "0", "--out", str(out), "--no-report"]
    cmd = [sys.executable, "-m", "detreduce", "sweep", str(data), *args]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


@pytest.mark.slow
def test_sweep_killed_after_first_run_resumes_each_run_exactly_once(tiny_data, tmp_path):
    out = tmp_path / "sweep"
    proc = _start_sweep(tiny_data, out, epochs=1)
    try:
        _wait_for_rows(out / "results.csv", 1, proc)
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    first = ResultsStore(out / "results.csv").rows()
    assert len(first) == 1 and first[0]["method"] == "full" and first[0]["status"] == "ok"

    result = run_sweep(
        tiny_data, out, sweep=UF, train=TINY, energy={"cpu_watts": 20}, command="test"
    )
    assert (result.total, result.skipped) == (3, 1)
    rows = ResultsStore(out / "results.csv").rows()
    ids = [r["run_id"] for r in rows]
    assert len(ids) == len(set(ids)) == 3  # every run exactly once
    assert rows[0] == first[0]  # the finished run was not redone
    df = read_results(out).set_index("method")
    assert set(df.index) == {"full", "random", "ultralytics_fraction"}
    assert (df["status"] == "ok").all()
    assert df.loc["full", "n_kept"] == df.loc["full", "n_train"] == 18
    assert df.loc["random", "n_kept"] == 9 and df.loc["random", "epochs"] == 1
    assert (df["kwh_total"] > 0).all() and (df["seconds"] > 0).all()
    assert (df["kwh_total"] >= df["kwh_training"]).all()
    assert df["map50_95"].notna().all()
    from codecarbon.core.cpu import is_rapl_available

    if not is_rapl_available():  # the resumed runs used the given CPU power
        assert (df.loc[["random", "ultralytics_fraction"], "energy_mode"] == "cpu_load@20W").all()

    # a plain rerun does nothing; another config into the same folder is refused
    again = run_sweep(tiny_data, out, sweep=UF, train=TINY)
    assert (again.ran, again.skipped) == (0, 3)
    with pytest.raises(OutputExistsError, match="another protocol.*epochs: 1 → 2"):
        run_sweep(tiny_data, out, sweep=UF, train={**TINY, "epochs": 2})
    # the same protocol with one more method extends the sweep: only the new run trains
    more = {**UF, "methods": ["ultralytics-fraction", "srs"]}
    extended = run_sweep(tiny_data, out, sweep=more, train=TINY)
    assert (extended.ran, extended.skipped, extended.failed) == (1, 3, 0)
    config = json.loads((out / "sweep.json").read_text())
    assert set(config["methods"]) >= {"ultralytics_fraction", "srs"}
    assert len(config["commands"]) == 2
    # resuming a subset again (nothing to run) records no command twice
    assert run_sweep(tiny_data, out, sweep=UF, train=TINY).ran == 0
    assert json.loads((out / "sweep.json").read_text())["commands"] == config["commands"]
    assert set(read_results(out)["method"]) == {"full", "random", "ultralytics_fraction", "srs"}

    from detreduce.report import write_report

    text = write_report(out).read_text()
    assert f"| {method_label('ultralytics_fraction')} | 0.50 | 1 |" in text
    assert (out / "plots" / "pareto.png").stat().st_size > 10_000


@pytest.mark.slow
@pytest.mark.parametrize(
    ("sig", "code", "said"),
    [(signal.SIGTERM, 143, "detreduce: terminated (SIGTERM)"), (signal.SIGINT, 130, "interrupted")],
)
def test_signal_stops_the_sweep_cleanly_and_keeps_finished_runs(
    tiny_data, tmp_path, sig, code, said
):
    out = tmp_path / "sweep"
    proc = _start_sweep(tiny_data, out, epochs=3)
    try:
        _wait_for_rows(out / "results.csv", 1, proc)
        os.kill(proc.pid, sig)
        out_text, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == code, err
    assert said in err
    text = " ".join((out_text + err).split())  # log lines may wrap
    assert "finished runs are kept" in text and "rerun the same command to resume" in text
    assert "Traceback" not in err
    rows = ResultsStore(out / "results.csv").rows()
    assert 1 <= len(rows) < 3 and all(r["status"] == "ok" for r in rows)


def test_bad_cpu_watts_is_one_line_before_any_run(tiny_data, tmp_path, capsys):
    from detreduce.cli import main

    args = ["sweep", str(tiny_data), "--out", str(tmp_path / "s"), "--cpu-watts", "0"]
    assert main(args) == 2
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert last == (
        "detreduce: error: train.energy_cpu_watts: expected a power in watts > 0 or null, got 0.0"
    )
    assert not (tmp_path / "s").exists()


@pytest.mark.slow
def test_failed_run_is_recorded_and_the_sweep_goes_on(tiny_data, tmp_path, monkeypatch):
    from detreduce.sweep.runner import TrialRunner

    real_train = TrialRunner._train

    def flaky_train(self, spec, *args, **kwargs):
        if spec.is_full:
            raise RuntimeError("CUDA out of memory\nsecond line")
        return real_train(self, spec, *args, **kwargs)

    monkeypatch.setattr(TrialRunner, "_train", flaky_train)
    out = tmp_path / "sweep"
    random_half = {"methods": ["random"], "fractions": [0.5], "seeds": [0]}
    result = run_sweep(tiny_data, out, sweep=random_half, train=TINY)
    assert (result.ran, result.failed) == (2, 1)
    df = read_results(out).set_index("method")
    assert df.loc["full", "status"] == "failed"
    assert df.loc["full", "error"] == "RuntimeError: CUDA out of memory"
    assert df.loc["random", "status"] == "ok"  # the sweep went on

    monkeypatch.setattr(TrialRunner, "_train", real_train)  # fixed: the rerun retries it
    again = run_sweep(tiny_data, out, sweep=random_half, train=TINY)
    assert (again.ran, again.skipped, again.failed) == (1, 1, 0)
    assert read_results(out).set_index("method").loc["full", "status"] == "ok"
    assert len(read_results(out, latest=False)) == 3


@pytest.mark.slow
def test_a_training_policy_is_one_more_method_name(tiny_data, tmp_path, monkeypatch):
    """A policy of the catalog runs as a sweep method: the trainer forwards what it says."""
    import numpy as np

    from detreduce.methods import catalog
    from detreduce.train.policy import TrainingPolicy

    class FirstFour(TrainingPolicy):
        name = "first_four"
        summary = "the first four images, every epoch (test policy)"
        reference = "test"

        def epoch_indices(self, epoch: int) -> np.ndarray:
            return np.arange(4)

    catalog.get_method("full")  # load the catalog before adding to it
    spec = catalog.MethodSpec.from_class(FirstFour, "training")
    monkeypatch.setitem(catalog._SPECS, "first_four", spec)
    sweep = {"methods": ["first_four"], "fractions": [0.5], "seeds": [0]}
    result = run_sweep(tiny_data, tmp_path / "s", sweep=sweep, train={**TINY, "epochs": 2})
    assert result.failed == 0 and result.total == 3  # full, random 0.5, first_four at 1.0
    df = read_results(tmp_path / "s").set_index("method")
    assert df.loc["first_four", "fraction"] == 1.0
    assert df.loc["first_four", "n_kept"] == df.loc["full", "n_kept"] == 18
    assert df.loc["first_four", "images_seen"] == 2 * 4  # 2 epochs × the policy's 4 images
    assert df.loc["full", "images_seen"] == 2 * 18
    figures = df.loc["first_four", "figures"]
    policy = json.loads(figures)["policy"] if isinstance(figures, str) else figures["policy"]
    assert policy["name"] == "first_four"


def test_a_converge_sweep_stores_curves_the_time_to_accuracy_table_reads(tiny_data, tmp_path):
    """Every row carries its validation curve; the report's time-to-accuracy table is built
    from those curves against the full run of the same seed."""
    from detreduce.report.tables import time_to_accuracy_table
    from detreduce.train.convergence import time_to_accuracy

    train = {**TINY, "budget": "converge", "epochs": 2, "max_epochs": 3, "patience": 1}
    result = run_sweep(tiny_data, tmp_path / "c", sweep=UF, train=train)
    assert result.failed == 0
    df = read_results(tmp_path / "c")
    curves = {
        m: json.loads(c) if isinstance(c, str) else c for m, c in zip(df["method"], df["curve"])
    }
    for method, curve in curves.items():
        row = df[df["method"] == method].iloc[0]
        assert [p["epoch"] for p in curve] == list(range(1, int(row["epochs"]) + 1))
    table = time_to_accuracy_table(df)
    assert set(table["method"]) == {"random", "ultralytics_fraction"}
    full = float(df.loc[df["method"] == "full", "map50_95"].iloc[0])
    for _, row in table.iterrows():
        run = df[(df["method"] == row["method"]) & (df["fraction"] == row["fraction"])].iloc[0]
        hit = time_to_accuracy(curves[row["method"]], full)["90"]
        assert row["reached_90"] == (0 if hit is None or not full > 0 else 1)
        if row["reached_90"]:  # the reduction's kWh is counted before the curve's
            assert row["kwh_90"] == pytest.approx(
                hit["kwh"] + run["kwh_selection"] + run["kwh_embedding"]
            )


def test_a_static_selection_trained_under_a_policy_is_one_trial(tiny_data, tmp_path):
    """ultralytics_fraction 50 % + infobatch: the split is the static method's, the
    trainer prunes inside it (epoch 0 every kept image, then fewer)."""
    sweep = {"methods": ["ultralytics-fraction+infobatch"], "fractions": [0.5], "seeds": [0]}
    result = run_sweep(tiny_data, tmp_path / "combo", sweep=sweep, train={**TINY, "epochs": 3})
    assert result.failed == 0 and result.total == 3  # full, random 0.5, the combination
    df = read_results(tmp_path / "combo").set_index("method")
    row = df.loc["ultralytics_fraction+infobatch"]
    assert row["fraction"] == 0.5 and row["n_kept"] == 9
    figures = row["figures"] if isinstance(row["figures"], dict) else json.loads(row["figures"])
    policy = figures["policy"]
    assert policy["name"] == "infobatch" and policy["n_images"] == 9
    forwarded = policy["forwarded_per_epoch"]
    assert forwarded[0] == forwarded[2] == 9 and forwarded[1] < 9  # pruned, then annealed
    assert row["images_seen"] == sum(forwarded) < 3 * 9
    found = next((tmp_path / "combo").rglob("*fraction+infobatch*/**/selection.json"))
    assert json.loads(found.read_text())["method"] == "ultralytics_fraction"  # the static one


def test_loss_based_methods_read_one_proxy_run_and_pay_their_share(tiny_data, tmp_path):
    """el2n selects on real per-image YOLO losses from one proxy run per sweep folder;
    its kWh is split over the runs that use it and added to their selection."""
    import numpy as np

    sweep = {"methods": ["el2n"], "fractions": [0.5], "seeds": [0, 1], "proxy_epochs": 2}
    out = tmp_path / "loss"
    result = run_sweep(tiny_data, out, sweep=sweep, train=TINY)
    assert result.failed == 0 and result.total == 6  # full, random, el2n × 2 seeds
    info = json.loads((out / "proxy.json").read_text())
    losses = np.load(out / "proxy_losses.npz")["losses"]
    assert losses.shape == (18, 2) and np.isfinite(losses).all() and info["charged_runs"] == 2
    assert info["kwh"] > 0 and info["images_seen"] == 2 * 18
    df = read_results(out)
    el2n = df[df["method"] == "el2n"]
    for _, row in el2n.iterrows():
        figures = row["figures"] if isinstance(row["figures"], dict) else json.loads(row["figures"])
        assert figures["kwh_proxy_share"] == pytest.approx(info["kwh"] / 2)
        assert row["kwh_selection"] >= figures["kwh_proxy_share"]
        kept = json.loads(next((out / "runs" / row["run_id"]).rglob("selection.json")).read_text())
        # hardest first: every kept image's mean loss >= every dropped one's (one stratum
        # at a time under balance; here the check is on the whole split's top ranks)
        assert kept["method"] == "el2n"
    random = df[df["method"] == "random"]
    assert all(
        "kwh_proxy_share" not in (f if isinstance(f, dict) else json.loads(f))
        for f in random["figures"]
    )
    again = run_sweep(tiny_data, out, sweep=sweep, train=TINY)  # resume: no second proxy run
    assert again.ran == 0 and json.loads((out / "proxy.json").read_text()) == info


@pytest.mark.slow
def test_a_variant_joins_a_sweep_beside_the_same_full_and_random_runs(tiny_data, tmp_path):
    """``infobatch@prune_ratio=0.9`` is one more method: extending a sweep with it runs it
    alone (full and random are shared), and it prunes more than the default ratio."""
    out = tmp_path / "s"
    train = {**TINY, "epochs": 3}
    first = run_sweep(tiny_data, out, sweep={**UF, "methods": ["infobatch"]}, train=train)
    assert (first.ran, first.failed) == (3, 0)  # full, random 0.5, infobatch
    variant = {**UF, "methods": ["infobatch", "InfoBatch@prune_ratio=0.90"]}
    second = run_sweep(tiny_data, out, sweep=variant, train=train)
    assert (second.ran, second.skipped, second.failed) == (1, 3, 0)
    df = read_results(out).set_index("method")
    assert set(df.index) == {"full", "random", "infobatch", "infobatch@prune_ratio=0.9"}
    assert len({r.split("_s0_")[1] for r in df["run_id"]}) == 1  # one protocol key
    seen = df["images_seen"]
    assert seen["infobatch@prune_ratio=0.9"] < seen["infobatch"] < seen["full"]
