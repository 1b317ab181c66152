"""detreduce.train.loss: per-image terms of Ultralytics' detection loss, on real models.

Each architecture (YOLOv8n: DFL head, ``v8DetectionLoss``; YOLO26n: end-to-end, L1 head,
``E2ELoss``) is built once at imgsz 64 with nc=3, in train mode, on a batch of 4 images
whose image 2 has no boxes. The stock criterion is always a separate Ultralytics
instance, so the per-image terms are checked against Ultralytics itself.
"""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("ultralytics")

import torch  # noqa: E402
from ultralytics.cfg import get_cfg  # noqa: E402
from ultralytics.nn.tasks import DetectionModel, SegmentationModel  # noqa: E402
from ultralytics.utils.loss import E2ELoss, v8DetectionLoss  # noqa: E402
from ultralytics.utils.torch_utils import ModelEMA  # noqa: E402

from detreduce.errors import ConfigError  # noqa: E402
from detreduce.train.loss import (  # noqa: E402
    WEIGHTS_KEY,
    PerImageDetectionLoss,
    PerImageE2ELoss,
    attach_per_image_loss,
    per_image_loss_items,
    weighted_total,
)

B, IMGSZ, EMPTY = 4, 64, 2  # batch size, image size, the image without boxes
ARCHS = {"yolov8n": ("yolov8n.yaml", v8DetectionLoss), "yolo26n": ("yolo26n.yaml", E2ELoss)}
LOSS_TOL = {"rtol": 1e-5, "atol": 1e-6}


def _batch() -> dict[str, torch.Tensor]:
    """Four random images, boxes (normalised xywh) on images 0, 1 and 3, none on image 2."""
    g = torch.Generator().manual_seed(0)
    boxes = [
        (0, 0, 0.5, 0.5, 0.4, 0.4),
        (0, 1, 0.3, 0.3, 0.3, 0.5),
        (1, 2, 0.6, 0.4, 0.5, 0.6),
        (3, 0, 0.5, 0.5, 0.8, 0.8),
        (3, 1, 0.2, 0.7, 0.3, 0.3),
        (3, 2, 0.7, 0.2, 0.3, 0.4),
    ]
    t = torch.tensor(boxes)
    return {
        "img": torch.rand(B, 3, IMGSZ, IMGSZ, generator=g),
        "batch_idx": t[:, 0],
        "cls": t[:, 1:2],
        "bboxes": t[:, 2:],
    }


def _model(yaml: str) -> DetectionModel:
    torch.manual_seed(0)
    model = DetectionModel(yaml, nc=3, verbose=False)
    model.args = get_cfg()  # what the trainer's set_model_attributes does
    return model.train()


@pytest.fixture(scope="module", params=list(ARCHS))
def arch(request):
    """(name, model, batch, stock criterion class) for each architecture."""
    yaml, stock = ARCHS[request.param]
    return request.param, _model(yaml), _batch(), stock


def _grads(model: torch.nn.Module, criterion, batch: dict, **kwargs) -> dict[str, torch.Tensor]:
    """Gradients of every parameter after a fresh forward and ``loss.sum().backward()``."""
    model.zero_grad(set_to_none=True)
    preds = model(batch["img"])
    if kwargs:
        loss = criterion.per_image_loss(preds, batch, **kwargs).loss
    else:
        loss = criterion(preds, batch)[0]
    loss.sum().backward()  # as BaseTrainer._do_train
    return {n: p.grad.detach().clone() for n, p in model.named_parameters() if p.grad is not None}


def _max_grad_diff(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> float:
    assert a.keys() == b.keys()
    return max(float((a[n] - b[n]).abs().max()) for n in a)


def _assert_grads_close(a: dict, b: dict) -> None:
    assert a.keys() == b.keys() and a
    for name in a:  # atol relative to the tensor's scale: gradients reach ~1e2 here
        tol = 1e-6 * max(1.0, float(b[name].abs().max()))
        assert torch.allclose(a[name], b[name], rtol=1e-5, atol=tol), name


# ------------------------------------------------------------------ decomposition
def test_per_image_terms_sum_to_the_stock_loss(arch):
    name, model, batch, stock_cls = arch
    preds = model(batch["img"])
    stock_loss, stock_items = stock_cls(model)(preds, batch)
    out = attach_per_image_loss(model).per_image_loss(preds, batch)

    assert out.per_image.shape == (B, 3)
    assert out.per_image.requires_grad and out.per_image.grad_fn is not None
    summed = out.per_image.sum(0) * B
    for k in range(3):  # box, cls, dfl (l1 for yolo26) separately
        assert torch.allclose(summed[k], stock_loss[k], **LOSS_TOL), (name, k)
    assert torch.equal(out.loss, stock_loss)  # no weights: the stock tensor itself
    assert out.loss_items.keys() == stock_items.keys()
    for k, v in stock_items.items():
        assert torch.equal(out.loss_items[k], v)
    diff = float((summed - stock_loss).detach().abs().max())
    print(f"{name}: max |B*sum per_image - stock loss| = {diff:.3g}")


def test_image_without_boxes_has_only_a_cls_term(arch):
    _, model, batch, _ = arch
    per_image = attach_per_image_loss(model).per_image_loss(model(batch["img"]), batch).per_image
    box, cls, dfl = per_image[EMPTY].detach()
    assert float(box) == 0.0 and float(dfl) == 0.0
    assert float(cls) > 0.0
    assert (per_image[[0, 1, 3], 0] > 0).all()  # the others do have foreground


def test_all_ones_weights_give_the_stock_gradients(arch):
    name, model, batch, stock_cls = arch
    stock = _grads(model, stock_cls(model), batch)
    ours = _grads(model, attach_per_image_loss(model), batch, weights=torch.ones(B))
    assert len(stock) == sum(p.requires_grad for p in model.parameters())
    _assert_grads_close(ours, stock)
    print(f"{name}: max |grad ones - grad stock| = {_max_grad_diff(ours, stock):.3g}")


@pytest.mark.parametrize("name", list(ARCHS))
def test_weights_weigh_each_image_and_nothing_else(name):
    """Linear in the weights: grad(w with w_3 = 0) + grad(e_3) = grad(ones) != grad(w).

    In float64: adding two float32 gradients of a deep net cancels digits in early layers.
    """
    model = _model(ARCHS[name][0]).double()
    batch = _batch()
    batch["img"] = batch["img"].double()  # labels stay float32, as Ultralytics pads them
    criterion = attach_per_image_loss(model)
    w = torch.tensor([1.0, 0.5, 2.0, 0.0])
    out = criterion.per_image_loss(model(batch["img"]), batch, weights=w)
    manual = sum(w[i] * out.per_image[i] for i in range(B)) * B
    assert torch.allclose(out.loss, manual, **LOSS_TOL)

    ones = _grads(model, criterion, batch, weights=torch.ones(B))
    dropped = _grads(model, criterion, batch, weights=torch.tensor([1.0, 1.0, 1.0, 0.0]))
    only_3 = _grads(model, criterion, batch, weights=torch.tensor([0.0, 0.0, 0.0, 1.0]))
    assert _max_grad_diff(dropped, ones) > 1e-3  # image 3's weight changes the gradient
    summed = {n: dropped[n] + only_3[n] for n in ones}
    _assert_grads_close(summed, ones)
    print(f"{name}: max |grad(w) + grad(e_3) - grad(ones)| = {_max_grad_diff(summed, ones):.3g}")


def test_image_terms_depend_on_that_image_predictions_only():
    """The assigner sees detached predictions: d per_image[i] / d preds[j] = 0 for j != i."""
    model, batch = _model("yolov8n.yaml"), _batch()
    preds = model(batch["img"])
    per_image = PerImageDetectionLoss(model).per_image_loss(preds, batch).per_image
    for i in range(B):
        for k in range(3):
            if i == EMPTY and k != 1:
                continue  # no foreground: box and dfl have no gradient at all
            g_boxes, g_scores = torch.autograd.grad(
                per_image[i, k], [preds["boxes"], preds["scores"]], retain_graph=True
            )
            grad = (g_boxes if k != 1 else g_scores).abs().sum((1, 2))
            others = [j for j in range(B) if j != i]
            assert float(grad[i]) > 0 and float(grad[others].max()) == 0.0, (i, k)


# ------------------------------------------------------------------ trainer seam
def test_model_loss_reads_weights_from_the_batch(arch):
    """``model(batch)`` as BaseTrainer calls it: (loss, items), weighted, items unweighted."""
    _, model, batch, stock_cls = arch
    criterion = attach_per_image_loss(model)
    assert model.criterion is criterion
    w = np.array([1.0, 2.0, 0.0, 0.5])
    loss, items = model({**batch, WEIGHTS_KEY: w})
    assert loss.shape == (3,) and loss.requires_grad
    per_image = criterion.last_per_image
    assert per_image.shape == (B, 3) and per_image.requires_grad
    assert torch.allclose(loss, weighted_total(per_image, w), **LOSS_TOL)
    assert not torch.allclose(loss, per_image.sum(0) * B)  # the weights did something
    _, stock_items = stock_cls(model)(model(batch["img"]), batch)
    for k, v in stock_items.items():
        assert torch.allclose(items[k], v, **LOSS_TOL)


def test_model_deep_copies_after_a_forward(arch):
    """``ModelEMA`` deep-copies the model with its criterion; graph tensors cannot be."""
    _, model, batch, _ = arch
    criterion = attach_per_image_loss(model)
    model(batch)
    assert criterion.last_per_image.requires_grad
    ema = ModelEMA(model)
    assert ema.ema.criterion.last_per_image is None
    assert criterion.last_per_image is not None  # the original keeps its terms


def test_per_image_loss_items_mean_is_the_batch_loss(arch):
    name, model, batch, _ = arch
    out = attach_per_image_loss(model).per_image_loss(model(batch["img"]), batch)
    scores = per_image_loss_items(out.per_image)
    assert isinstance(scores, np.ndarray) and scores.shape == (B,)
    expected = out.per_image.detach().sum(1).numpy() * B
    np.testing.assert_allclose(scores, expected, rtol=1e-6)
    assert scores.mean() == pytest.approx(float(out.loss.detach().sum()) / B, rel=1e-5)
    if name == "yolov8n":  # E2ELoss logs the one-to-one branch only
        logged = sum(float(v) for v in out.loss_items.values())
        assert scores.mean() == pytest.approx(logged, rel=1e-5)
    assert scores[EMPTY] == scores.min()  # background only: the easiest image here


def test_class_weights_are_in_the_per_image_cls_term():
    """Ultralytics multiplies class weights into the bce in place; the terms follow."""
    model, batch = _model("yolov8n.yaml"), _batch()
    model.class_weights = torch.tensor([1.0, 3.0, 0.25])
    preds = model(batch["img"])
    stock, _ = v8DetectionLoss(model)(preds, batch)
    plain = PerImageDetectionLoss(model).per_image_loss(preds, batch).per_image
    assert torch.allclose(plain.sum(0) * B, stock, **LOSS_TOL)
    del model.class_weights
    unweighted = PerImageDetectionLoss(model).per_image_loss(preds, batch).per_image
    assert not torch.allclose(plain[:, 1], unweighted[:, 1])


def test_e2e_terms_follow_the_decayed_branch_gains():
    """After ``update()`` (the trainer's per-epoch o2m decay) both branches still add up."""
    model, batch = _model("yolo26n.yaml"), _batch()
    stock, ours = E2ELoss(model), attach_per_image_loss(model)
    for _ in range(30):
        stock.update()
        ours.update()
    assert ours.o2m == stock.o2m and ours.o2m < 0.8
    preds = model(batch["img"])
    out = ours.per_image_loss(preds, batch)
    assert torch.allclose(out.per_image.sum(0) * B, stock(preds, batch)[0], **LOSS_TOL)
    branches = ours.one2many.last_per_image * ours.o2m + ours.one2one.last_per_image * ours.o2o
    assert torch.allclose(out.per_image, branches)


# ------------------------------------------------------------------ errors
def test_attach_picks_the_criterion_init_criterion_would():
    assert type(attach_per_image_loss(_model("yolov8n.yaml"))) is PerImageDetectionLoss
    assert type(attach_per_image_loss(_model("yolo26n.yaml"))) is PerImageE2ELoss


def test_attach_refuses_other_tasks_and_models_without_hyperparameters():
    seg = SegmentationModel("yolov8n-seg.yaml", nc=3, verbose=False)
    seg.args = get_cfg()
    with pytest.raises(ConfigError, match="DetectionModel"):
        attach_per_image_loss(seg)
    with pytest.raises(ConfigError, match="model.args"):
        attach_per_image_loss(DetectionModel("yolov8n.yaml", nc=3, verbose=False))


@pytest.mark.parametrize("weights", [torch.ones(B - 1), torch.ones(B, 1), [1.0] * (B + 1)])
def test_weights_of_the_wrong_shape_raise(weights):
    per_image = torch.ones(B, 3)
    with pytest.raises(ConfigError, match=rf"expected shape \({B},\)"):
        weighted_total(per_image, weights)
