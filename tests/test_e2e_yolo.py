"""Proof that an export is consumable: Ultralytics trains on it unchanged and returns metrics."""

from __future__ import annotations

import pytest

from detreduce.data import load_dataset
from detreduce.reduce import reduce_dataset


@pytest.mark.slow
def test_yolo_trains_one_epoch_on_a_reduced_voc_export(bccd, tmp_path):
    from ultralytics import YOLO

    before = sorted(p.name for p in bccd.rglob("*"))
    ds = load_dataset(bccd)
    result = reduce_dataset(ds, method="random", fraction=24, seed=0, out=tmp_path / "sel")
    model = YOLO("yolov8n.yaml")
    metrics = model.train(
        data=str(result.data_yaml),
        epochs=1,
        imgsz=64,
        batch=8,
        workers=0,
        device="cpu",
        plots=False,
        amp=False,
        project=str(tmp_path / "yolo"),
        name="r",
        verbose=False,
        seed=0,
    )
    trainer = model.trainer
    assert len(trainer.train_loader.dataset.im_files) == 24  # the reduced list, not the folder
    assert len(trainer.test_loader.dataset.im_files) == 87  # the full BCCD val split
    assert (
        sum(len(lb["cls"]) for lb in trainer.test_loader.dataset.labels)
        == ds.split("val").num_boxes
    )
    assert 0.0 <= metrics.box.map <= metrics.box.map50 <= 1.0
    assert set(metrics.names.values()) == set(ds.names)
    assert sorted(p.name for p in bccd.rglob("*")) == before  # no cache written into the data
