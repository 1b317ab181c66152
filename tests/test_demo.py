"""``detreduce demo``: where its dataset comes from, and a real (tiny) demo run."""

from __future__ import annotations

import logging

import pytest

from detreduce import demo, recipes
from detreduce.cli import main


def test_demo_data_prefers_the_datasets_env_folder(tmp_path, monkeypatch):
    (tmp_path / "bccd").mkdir()
    monkeypatch.setenv("DETREDUCE_DATASETS", str(tmp_path))
    path, synthetic = demo.resolve_demo_data(download=False)
    assert (path, synthetic) == (tmp_path / "bccd", False)


def test_demo_data_finds_the_shared_bccd(bccd, monkeypatch):
    monkeypatch.delenv("DETREDUCE_DATASETS", raising=False)
    path, synthetic = demo.resolve_demo_data(download=False)
    assert path.resolve() == bccd.resolve() and not synthetic


def test_demo_falls_back_to_synthetic_with_a_warning(tmp_path, monkeypatch, caplog):
    monkeypatch.setattr(recipes, "find_dataset", lambda name: None)
    with caplog.at_level(logging.WARNING, logger="detreduce"):
        path, synthetic = demo.resolve_demo_data(download=False, synthetic_dir=tmp_path / "syn")
    assert synthetic and path == tmp_path / "syn" / "data.yaml" and path.exists()
    assert "SYNTHETIC" in caplog.text and "detreduce fetch bccd" in caplog.text


def test_demo_offline_download_falls_back_to_synthetic(tmp_path, monkeypatch, caplog):
    monkeypatch.setattr(recipes, "find_dataset", lambda name: None)
    unreachable = {
        "url": (tmp_path / "missing.zip").as_uri(),  # fails like an offline machine
        "subdir": "BCCD",
        "licence": "MIT",
    }
    monkeypatch.setattr(recipes, "recipe", lambda name: unreachable)
    monkeypatch.setenv("DETREDUCE_CACHE", str(tmp_path / "cache"))
    with caplog.at_level(logging.WARNING, logger="detreduce"):
        path, synthetic = demo.resolve_demo_data(download=True, synthetic_dir=tmp_path / "syn")
    assert synthetic and path.exists()
    assert "cannot download bccd" in caplog.text and "SYNTHETIC" in caplog.text


def test_demo_missing_data_path_is_an_error(tmp_path):
    assert main(["demo", "--data", str(tmp_path / "nope")]) == 2


@pytest.mark.slow
def test_demo_runs_a_real_tiny_sweep_and_prints_the_report(tmp_path, capsys):
    from detreduce.data.synthetic import make_synthetic

    data = make_synthetic(tmp_path / "data", n_images=24, imgsz=64, seed=0)
    out = tmp_path / "demo"
    args = ["demo", "--data", str(data), "--out", str(out), "--epochs", "1", "--imgsz", "64"]
    assert main([*args, "--device", "cpu"]) == 0
    printed = capsys.readouterr().out.replace("\n", "")
    assert str(out / "report.md") in printed
    from detreduce.sweep import read_results

    df = read_results(out)
    methods = set(df["method"])
    assert {"full", "random"} <= methods and len(methods - {"full", "random"}) >= 2
    assert set(df.loc[df["method"] != "full", "fraction"]) == {0.5}
    assert (df["status"] == "ok").all()
    assert set(df["model"]) == {"yolo-mobilenetv2"}  # the pretrained start, offline
    text = (out / "report.md").read_text()
    assert "## Summary per method and fraction" in text and "(plots/pareto.png)" in text
