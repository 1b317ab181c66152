"""The CLI on real and broken datasets: right figures, one-line errors, never a traceback."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from detreduce.cli import main
from detreduce.data.synthetic import make_synthetic


def run(argv, capsys) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_info_json_on_bccd(bccd, capsys):
    code, out, _ = run(["info", bccd, "--json"], capsys)
    assert code == 0
    s = json.loads(out)
    assert s["images"] == 364
    assert s["splits"]["train"]["images"] == 205
    assert s["splits"]["train"]["boxes_per_class"] == {"Platelets": 209, "RBC": 2381, "WBC": 214}
    assert [(p["kind"], p["line"] is not None) for p in s["problems"]] == [
        ("degenerate_box", True)
    ] * 2
    assert all(p["file"].endswith(".xml") for p in s["problems"])


def test_info_text_on_aquarium_names_classes_and_background(aquarium, capsys):
    code, out, _ = run(["info", aquarium], capsys)
    assert code == 0
    assert "starfish" in out and "background images" in out and "No problems found" in out


@pytest.fixture
def broken(tmp_path):
    data = make_synthetic(tmp_path / "s", n_images=12, seed=9)
    label = sorted((data.parent / "labels" / "train").glob("*.txt"))[0]
    label.write_text(label.read_text() + "0 0.5 0.5 0.2\n9 0.5 0.5 0.1 0.1\n")
    img = sorted((data.parent / "images" / "train").glob("*.jpg"))[1]
    img.write_bytes(b"")
    return data, label, img


def test_info_lists_every_problem_and_exits_zero(broken, capsys):
    data, label, img = broken
    code, out, _ = run(["info", data, "--json"], capsys)
    assert code == 0
    kinds = sorted(p["kind"] for p in json.loads(out)["problems"])
    assert kinds == ["malformed_line", "unknown_class", "unreadable_image"]


def test_reduce_on_error_raise_stops_with_one_line(broken, capsys, tmp_path):
    data, label, _ = broken
    code, out, err = run(["reduce", data, "--on-error", "raise", "--out", tmp_path / "o"], capsys)
    assert code == 2
    assert err.count("\n") == 1 and f"{label}:" in err and "Traceback" not in err
    assert not (tmp_path / "o").exists()


def test_reduce_warn_skips_and_records_in_manifest(broken, capsys, tmp_path):
    data, _, img = broken
    code, out, err = run(["reduce", data, "--fraction", "0.5", "--out", tmp_path / "o"], capsys)
    assert code == 0, err
    m = json.loads((tmp_path / "o" / "selection.json").read_text())
    assert m["skipped_problems"]["counts"] == {
        "malformed_line": 1,
        "unknown_class": 1,
        "unreadable_image": 1,
    }
    assert str(img) not in m["kept_images"]


@pytest.mark.parametrize("fraction", ["0", "1.5", "-0.2", "abc", "100000"])
def test_bad_fraction_is_one_line(tmp_path, capsys, fraction):
    data = make_synthetic(tmp_path / "s", n_images=8, seed=1)
    code, _, err = run(["reduce", data, "--fraction", fraction, "--out", tmp_path / "o"], capsys)
    assert code == 2 and err.count("\n") == 1 and "Traceback" not in err
    assert "fraction" in err or "count" in err
    assert not (tmp_path / "o").exists()


def test_fraction_as_count_and_no_silent_overwrite(tmp_path, capsys):
    data = make_synthetic(tmp_path / "s", n_images=20, seed=1)
    code, _, err = run(["reduce", data, "--fraction", "5", "--out", tmp_path / "o"], capsys)
    assert code == 0, err
    assert len((tmp_path / "o" / "train.txt").read_text().split()) == 5
    code, _, err = run(["reduce", data, "--fraction", "6", "--out", tmp_path / "o"], capsys)
    assert code == 2 and "--overwrite" in err
    assert len((tmp_path / "o" / "train.txt").read_text().split()) == 5


@pytest.mark.parametrize("target", ["missing", "unknown"])
def test_unusable_dataset_paths(tmp_path, capsys, target):
    path = tmp_path / "nothing-here"
    if target == "unknown":
        path.mkdir()
        (path / "notes.txt").write_text("x")
    code, _, err = run(["info", path], capsys)
    assert code == 2 and err.startswith("detreduce: error:") and err.count("\n") == 1


def test_real_process_prints_no_traceback(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "detreduce", "reduce", str(tmp_path / "nope"), "--fraction", "0.5"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr and "no such file or folder" in proc.stderr
