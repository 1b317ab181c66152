"""The method catalog: one entry per method, kinds and traits read by every door."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from detreduce.cli import main
from detreduce.data.load import load_dataset
from detreduce.data.model import DetectionDataset
from detreduce.errors import ConfigError
from detreduce.methods import KINDS, canonical_name, get_method, list_methods
from detreduce.reducers import list_reducers
from detreduce.selection import select_images
from detreduce.sweep.grid import FULL, RANDOM, build_grid


def make_dataset(n: int) -> DetectionDataset:
    """n train images; class a everywhere, b in every 4th image, c in image 7."""
    box_image, box_class = [], []
    for i in range(n):
        for c in [0, 0] + ([1] if i % 4 == 0 else []) + ([2] if i == 7 else []):
            box_image.append(i)
            box_class.append(c)
    return DetectionDataset(
        names=["a", "b", "c"],
        image_paths=[f"/data/images/im{i:03d}.jpg" for i in range(n)],
        image_sizes=[[64, 48]] * n,
        image_splits=["train"] * n,
        box_image=box_image,
        box_class=box_class,
        box_xyxy=np.tile([[1, 1, 20, 20]], (len(box_image), 1)).astype(np.float32),
    )


def test_every_method_is_registered_once_with_kind_summary_and_reference():
    specs = list_methods()
    names = [s.name for s in specs]
    assert len(names) == len(set(names))
    assert {s.kind for s in specs} == set(KINDS)  # all three kinds are populated
    for spec in specs:
        assert spec.summary and spec.reference, spec.name
    kinds = {s.name: s.kind for s in specs}
    assert kinds["ultralytics_fraction"] == "dataset"
    assert kinds[FULL] == "training"
    assert kinds["kcenter"] == kinds[RANDOM] == kinds["srs"] == "embedding"
    assert {s.name for s in list_reducers()} == {n for n, k in kinds.items() if k == "embedding"}
    assert {s.name for s in list_methods() if s.joint} == {"des", "el2n", "fes", "flow", "psa"}


def test_names_resolve_through_aliases_and_unknown_names_suggest():
    assert canonical_name("Ultralytics-Fraction") == "ultralytics_fraction"
    assert canonical_name("k_center") == "kcenter"
    assert canonical_name("uniform") == RANDOM
    with pytest.raises(ConfigError, match="Did you mean: kcenter"):
        canonical_name("kcentre")


def test_create_rejects_unknown_and_bad_parameters_before_any_data():
    with pytest.raises(ConfigError, match="did you mean metric"):
        get_method("kcenter").create(metrik="cosine")
    with pytest.raises(ConfigError, match="metric"):
        get_method("kcenter").create(metric="manhattan")


def test_methods_json_lists_the_catalog_with_kinds_and_defaults(capsys):
    assert main(["methods", "--json"]) == 0
    rows = {r["name"]: r for r in json.loads(capsys.readouterr().out)}
    assert set(rows) == {s.name for s in list_methods()}
    assert rows["kcenter"]["kind"] == "embedding" and rows["kcenter"]["params"]["metric"]
    assert rows["random"]["balanced"] is False and rows["random"]["baseline"]
    assert rows[FULL]["kind"] == "training"
    assert main(["methods", "--kind", "dataset", "--json"]) == 0
    assert [r["name"] for r in json.loads(capsys.readouterr().out)] == ["ultralytics_fraction"]


def test_random_is_uniform_whatever_balance_says_and_srs_is_stratified():
    ds = make_dataset(n=40)
    sel = select_images(ds, "random", 10, seed=4, balance="classes+boxes")
    assert sel.balance == "none" and not sel.strata.get("reserved_for_classes")
    expected = np.random.default_rng(4).permutation(40)[:10]
    np.testing.assert_array_equal(sel.indices, expected)
    srs = select_images(ds, "srs", 10, seed=4, balance="classes+boxes")
    assert srs.balance == "classes+boxes" and srs.strata["reserved_for_classes"]


def test_random_and_srs_differ_on_aquarium(aquarium):
    """The bug this fixes: both wrote byte-identical train lists (seed 3, 25 %)."""
    train = load_dataset(aquarium).split("train")
    rand = select_images(train, "random", 0.25, seed=3, with_figures=False)
    srs = select_images(train, "srs", 0.25, seed=3, with_figures=False)
    assert rand.budget == srs.budget
    assert set(rand.indices.tolist()) != set(srs.indices.tolist())
    assert rand.balance == "none" and srs.balance != "none"


def test_grid_always_has_full_and_random_and_runs_training_policies_at_full_data():
    specs = build_grid(["kcenter", "full"], [0.25, 0.5], [0, 1], "p")
    per_seed = [(s.method, s.fraction) for s in specs if s.seed == 0]
    assert per_seed == [
        (FULL, 1.0),
        (RANDOM, 0.25),
        (RANDOM, 0.5),
        ("kcenter", 0.25),
        ("kcenter", 0.5),
    ]
    with pytest.raises(ConfigError, match="Did you mean"):
        build_grid(["kcentr"], [0.5], [0], "p")


def test_a_training_policy_keeps_the_whole_split():
    ds = make_dataset(n=12)
    sel = select_images(ds, FULL, 1.0)
    np.testing.assert_array_equal(sel.indices, np.arange(12))
    with pytest.raises(ConfigError, match="training policy"):
        select_images(ds, FULL, 0.5)


def test_every_method_builds_and_validates_with_its_defaults():
    for spec in list_methods():
        if spec.name == "el2n":  # its losses come from a proxy run: without them, say so
            with pytest.raises(ConfigError, match="needs per-image YOLO losses"):
                spec.create()
            assert spec.create(losses=[1.0, 2.0]) is not None
            continue
        obj = spec.create()  # runs the method's own parameter checks
        assert obj is not None, spec.name


def test_docs_methods_page_is_the_catalog(capsys):
    """docs/methods.md is generated from the catalog; regenerate it when a method changes."""
    assert main(["methods", "--markdown"]) == 0
    page = (Path(__file__).parents[1] / "docs" / "methods.md").read_text()
    assert page == capsys.readouterr().out, "run: detreduce methods --markdown > docs/methods.md"


def test_a_static_method_and_a_policy_combine_into_one_method():
    from detreduce.methods.catalog import canonical_name, get_method

    spec = get_method("K-Center+InfoBatch")
    assert spec.name == canonical_name("kcenter_greedy+infobatch") == "kcenter+infobatch"
    assert (spec.kind, spec.selection, spec.policy) == ("embedding", "kcenter", "infobatch")
    assert spec.uses_features and spec.balanced and not spec.baseline
    assert get_method("ultralytics-fraction+infobatch").kind == "dataset"
    assert get_method("kcenter").policy == "" and get_method("kcenter").selection == "kcenter"


@pytest.mark.parametrize(
    ("name", "match"),
    [
        ("infobatch+kcenter", "must be a static method"),
        ("kcenter+clc", "is of kind 'embedding', not 'training'"),
        ("kcenter+", "one static method and one training policy"),
        ("kcenter+infobatch+full", "one static method and one training policy"),
        ("kcentr+infobatch", "Did you mean"),
    ],
)
def test_bad_combinations_are_one_line_errors(name, match):
    from detreduce.methods.catalog import get_method

    with pytest.raises(ConfigError, match=match) as info:
        get_method(name)
    assert "\n" not in str(info.value)


# ------------------------------------------------------------ variants: name@key=value
def test_a_variant_sets_parameters_in_the_method_name():
    from detreduce.methods.catalog import canonical_name, get_method

    spec = get_method("InfoBatch@prune_ratio=0.750")
    assert spec.name == canonical_name("infobatch@prune_ratio=0.75") == "infobatch@prune_ratio=0.75"
    assert spec.kind == "training" and spec.params == {"prune_ratio": 0.75, "delta": 0.875}
    policy = spec.create()
    assert (policy.prune_ratio, policy.delta) == (0.75, 0.875)
    assert spec.create(delta=0.5).delta == 0.5  # a sweep's own params still apply on top
    # keys sorted, defaults dropped: one variant, one name (and so one run id)
    assert canonical_name("infobatch@prune_ratio=0.6@delta=0.9") == (
        "infobatch@delta=0.9@prune_ratio=0.6"
    )
    assert canonical_name("infobatch@prune_ratio=0.5") == "infobatch"
    # in a combination, per part
    combo = get_method("kcenter@metric=euclidean+infobatch@prune_ratio=0.7")
    assert (combo.selection, combo.policy) == (
        "kcenter@metric=euclidean",
        "infobatch@prune_ratio=0.7",
    )
    assert get_method(combo.selection).create().metric == "euclidean"


@pytest.mark.parametrize(
    ("name", "match"),
    [
        ("infobatch@prune_ratio=1.5", r"prune_ratio must be in \[0, 1\)"),
        ("infobatch@ratio=0.5", "did you mean prune_ratio"),
        ("infobatch@prune_ratio", "@key=value"),
        ("infobatch@=3", "@key=value"),
        ("infobatc@prune_ratio=0.7", "Did you mean"),
    ],
)
def test_bad_variants_are_one_line_errors(name, match):
    from detreduce.methods.catalog import get_method

    with pytest.raises(ConfigError, match=match) as info:
        get_method(name)
    assert "\n" not in str(info.value)


def test_a_bad_variant_value_names_the_variant_typed_not_only_its_base():
    from detreduce.methods.catalog import get_method

    for name in ("infobatch@prune_ratio=1.5", "kcenter@metric=x", "infobatch@bogus=1"):
        with pytest.raises(ConfigError) as info:
            get_method(name)
        message = str(info.value)
        assert message.startswith(f"method {name!r}: "), message
        assert "infobatch: " not in message and "method 'infobatch'" not in message
