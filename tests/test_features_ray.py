"""Embedding on a real local Ray cluster: the same rows as the local path, the same cache,
a rerun that starts no actor, and the actors' own energy."""

from __future__ import annotations

import numpy as np
import pytest

ray = pytest.importorskip("ray")

from detreduce.data.load import load_dataset  # noqa: E402
from detreduce.errors import ConfigError  # noqa: E402
from detreduce.features import embed_dataset  # noqa: E402
from detreduce.features.ray_embed import EmbedActor, shards  # noqa: E402
from detreduce.settings import FeatureSettings  # noqa: E402

ROWS = np.arange(14)
#: shards of 5 images: 3 shards over the 2 actors of a 2-CPU head
RAY = {"backend": "ray", "shard_images": 5, "cpus_per_actor": 1, "device": "cpu"}


@pytest.fixture(scope="module")
def local_ray():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, _node_ip_address="127.0.0.1")
    yield
    ray.shutdown()


@pytest.fixture(scope="module")
def aquarium_train(request):
    from tests.conftest import shared_dataset

    return load_dataset(shared_dataset("aquarium")).split("train")


def test_shards_cover_the_rows_in_order():
    parts = shards(np.arange(12), 5)
    assert [len(p) for p in parts] == [5, 5, 2]
    assert np.concatenate(parts).tolist() == list(range(12))


@pytest.mark.slow
def test_ray_actors_give_the_local_embeddings(local_ray, aquarium_train, tmp_path, monkeypatch):
    monkeypatch.setenv("DETREDUCE_CACHE", str(tmp_path / "cache"))
    local = embed_dataset(aquarium_train, level="both", indices=ROWS, cache=False, device="cpu")
    on_ray = embed_dataset(aquarium_train, level="both", indices=ROWS, cache=False, **RAY)
    assert local.worker_energy is None
    assert on_ray.num_images == len(ROWS) and on_ray.num_boxes == local.num_boxes > len(ROWS)
    assert np.array_equal(on_ray.box_index, local.box_index)
    assert np.abs(on_ray.image - local.image).max() <= 1e-5
    assert np.abs(on_ray.box - local.box).max() <= 1e-5
    assert on_ray.computed == len(ROWS)
    # the actors metered their own processes: three shards' worth of energy and seconds
    assert on_ray.worker_energy.kwh > 0 and on_ray.worker_energy.seconds > 0


@pytest.mark.slow
def test_ray_writes_the_local_cache_and_a_rerun_starts_no_actor(
    local_ray, aquarium_train, tmp_path, monkeypatch
):
    monkeypatch.setenv("DETREDUCE_CACHE", str(tmp_path / "cache"))
    first = embed_dataset(aquarium_train, level="both", indices=ROWS, **RAY)
    assert first.computed == len(ROWS)
    assert list((tmp_path / "cache" / "embeddings").glob("*/shard-*.npz"))  # actors wrote it
    again = embed_dataset(aquarium_train, level="both", indices=ROWS, **RAY)
    assert again.computed == 0 and again.worker_energy is None and again.runtime == "none"
    assert np.array_equal(again.image, first.image) and np.array_equal(again.box, first.box)
    # the local path reads what the actors wrote: same cache format, same keys
    local = embed_dataset(aquarium_train, level="both", indices=ROWS, device="cpu")
    assert local.computed == 0 and np.array_equal(local.image, first.image)
    # more images: only the new ones go to the actors
    more = embed_dataset(aquarium_train, level="both", indices=np.arange(20), **RAY)
    assert more.computed == 6 and np.array_equal(more.image[:14], first.image)


def test_an_actor_that_cannot_see_the_images_says_so_before_any_work(
    aquarium_train, tmp_path, monkeypatch
):
    from dataclasses import replace

    # an actor points its process at the driver's cache: undo that for this test process
    monkeypatch.setenv("DETREDUCE_CACHE", str(tmp_path))
    moved = replace(
        aquarium_train,
        image_paths=np.array([str(tmp_path / "elsewhere" / "a.jpg")] * aquarium_train.num_images),
    )
    actor = EmbedActor(FeatureSettings.build(None), None, str(tmp_path), None)
    with pytest.raises(ConfigError, match="cannot see the images path .*elsewhere"):
        actor.embed(moved, np.arange(3))
