"""Per-image decomposition of Ultralytics' detection loss, with autograd intact.

Why: training-time data pruning needs each image's own loss, and a weight on it.
InfoBatch (Qin et al., "InfoBatch: Lossless Training Speed Up by Unbiased Dynamic Data
Pruning", ICLR 2024) ranks images by their last loss and rescales the loss of the
low-loss images it keeps; CREST (Yang et al., "Towards Sustainable Learning: Coresets
for Data-efficient Deep Learning", ICML 2023) weights the images of its coresets.
Ultralytics' ``v8DetectionLoss`` only returns batch-level sums.

The decomposition, read from Ultralytics 8.4.190 ``ultralytics/utils/loss.py``
(``get_assigned_targets_and_loss``, lines 423-490; ``BboxLoss.forward``, 127-164). For a
batch of ``B`` images, anchors ``a``, classes ``c``, assigned target scores ``t_iac``
(zero outside the foreground ``fg_i`` of image ``i``) and ``s_ia = sum_c t_iac``::

    S   = max(sum_{i,a,c} t_iac, 1)                       # target_scores_sum, batch-wide
    box = g_box * sum_i sum_{a in fg_i} (1 - CIoU_ia) * s_ia / S
    cls = g_cls * sum_i sum_{a,c} BCE(p_iac, t_iac) [* class_weight_c] / S
    dfl = g_dfl * sum_i sum_{a in fg_i} DFL_ia * s_ia / S   # mean L1 of ltrb when reg_max == 1

and the trainer back-propagates ``B * (box, cls, dfl)`` (``v8DetectionLoss.loss``, lines
506-512; ``BaseTrainer._do_train`` sums it, ``engine/trainer.py:550``). Every term is a
sum over images, so ``per_image[i] = (box_i, cls_i, dfl_i)`` is image ``i``'s inner sum
over ``S`` times the gain, and ``B * per_image.sum(0)`` is the stock loss. An image
without boxes has no foreground: box and dfl exactly 0, cls its background BCE. The
third column is the L1 term for ``reg_max == 1`` heads (YOLO26), named ``l1_loss``.

The assigner sees detached predictions (lines 452-460), so ``t``, ``fg`` and ``S`` carry
no gradient: ``per_image[i]`` depends on image ``i``'s predictions only. Images still
interact through ``S`` and, upstream, through BatchNorm's batch statistics.

Weights: ``loss = B * sum_i w_i * per_image[i]``, the normaliser staying the batch-wide
``S``. As in InfoBatch, which rescales per-sample terms of a mean-reduced loss, ``S`` is
the batch's (gradient-free) mean: all-ones weights give the stock loss and gradients, a
weight 0 removes an image's terms while its targets still count in ``S``. Renormalising
by the weighted target mass would let one weight rescale every other image. The
detached ``loss_items`` the trainer logs and validates with stay the unweighted stock
ones, so loss curves compare across policies. Weights reach the criterion through the
batch (``batch[WEIGHTS_KEY]``, for the trainer's ``preprocess_batch`` to fill) or as
the ``weights`` argument of ``per_image_loss``.

End-to-end heads (YOLO26, YOLOv10: ``Detect.one2one_cv2``) use ``E2ELoss`` (lines
1319-1351; ``DetectionModel.init_criterion``, ``nn/tasks.py:651-653``): ``o2m * L_o2m +
o2o * L_o2o`` with ``o2m`` decayed each epoch by ``update()``, loss items from the
one-to-one branch only. :class:`PerImageE2ELoss` combines the per-image terms of both
branches with the same gains. ``E2EDetectLoss`` (lines 1299-1316, a plain sum of a topk
10 and a topk 1 branch) also exists but no model builds it in 8.4.190: not covered.

Importing this module imports torch and Ultralytics (offline): only the trainer does.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from detreduce.errors import ConfigError
from detreduce.train.offline import import_ultralytics

import_ultralytics()

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from torch import nn  # noqa: E402
from ultralytics.nn.tasks import DetectionModel  # noqa: E402
from ultralytics.utils.loss import BboxLoss, E2ELoss, v8DetectionLoss  # noqa: E402
from ultralytics.utils.metrics import bbox_iou  # noqa: E402
from ultralytics.utils.tal import bbox2dist  # noqa: E402
from ultralytics.utils.torch_utils import unwrap_model  # noqa: E402

__all__ = [
    "WEIGHTS_KEY",
    "PerImageBboxLoss",
    "PerImageDetectionLoss",
    "PerImageE2ELoss",
    "PerImageLoss",
    "attach_per_image_loss",
    "per_image_loss_items",
    "weighted_total",
]

#: The batch key of the per-image loss weights: (B,) tensor or array, None = all 1.
WEIGHTS_KEY = "loss_weights"


@dataclass(frozen=True)
class PerImageLoss:
    """One forward's loss: what the trainer back-propagates, logs, and each image's share.

    ``loss``: (3,) box, cls, dfl, weighted, times the batch size (back-propagated).
    ``loss_items``: the stock detached, unweighted items (logged, validated).
    ``per_image``: (B, 3) unweighted terms with autograd history;
    ``B * per_image.sum(0)`` is the stock loss.
    """

    loss: torch.Tensor
    loss_items: dict[str, torch.Tensor]
    per_image: torch.Tensor


def weighted_total(per_image: torch.Tensor, weights: Any) -> torch.Tensor:
    """``B * sum_i w_i * per_image[i]``: (3,), the stock loss's scale (module docstring).

    ``weights``: (B,) tensor or array-like. Only the shape is checked: checking values
    on the device would synchronise it every batch.
    """
    w = torch.as_tensor(weights, dtype=per_image.dtype, device=per_image.device)
    if w.shape != per_image.shape[:1]:
        raise ConfigError(
            f"loss weights: expected shape ({per_image.shape[0]},), one per image of the "
            f"batch, got {tuple(w.shape)}"
        )
    return (w[:, None] * per_image).sum(0) * per_image.shape[0]


def per_image_loss_items(per_image: torch.Tensor) -> np.ndarray:
    """A detached score per image for policies that rank images: ``B * (box + cls + dfl)``.

    Times ``B`` so the batch mean is the unweighted back-propagated total over ``B`` (for
    ``v8DetectionLoss`` the total loss Ultralytics logs; ``E2ELoss`` logs its one-to-one
    branch only) and scores of batches of different sizes compare. The batch-wide
    normaliser ``S`` still makes a score depend on its batch mates (module docstring).
    """
    return (per_image.detach().float().sum(1) * per_image.shape[0]).cpu().numpy()


class _KeptBCE(nn.BCEWithLogitsLoss):
    """``BCEWithLogitsLoss(reduction="none")`` that keeps its last (B, A, nc) output.

    Ultralytics multiplies the class weights into that output in place (loss.py:465-468),
    so the kept tensor is the one whose sum is the stock cls numerator.
    """

    def __init__(self) -> None:
        super().__init__(reduction="none")
        self.last: torch.Tensor | None = None

    def forward(self, input: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        self.last = super().forward(input, target)
        return self.last

    def __getstate__(self) -> dict[str, Any]:
        return {**super().__getstate__(), "last": None}  # see PerImageDetectionLoss


class PerImageBboxLoss(BboxLoss):
    """``BboxLoss`` that also keeps per-image numerators: ``last_per_image = (box, dfl, S)``.

    The stock arithmetic of Ultralytics 8.4.190 (loss.py:127-164), restated so that each
    foreground anchor's term is summed per image (``index_add`` on the image index of
    ``fg_mask.nonzero``) as well as over the batch; the returned scalars are the stock
    expressions, term for term.
    """

    def __init__(self, reg_max: int = 16) -> None:
        super().__init__(reg_max)
        self.last_per_image: tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None = None

    def forward(
        self,
        pred_dist: torch.Tensor,
        pred_bboxes: torch.Tensor,
        anchor_points: torch.Tensor,
        target_bboxes: torch.Tensor,
        target_scores: torch.Tensor,
        target_scores_sum: torch.Tensor,
        fg_mask: torch.Tensor,
        imgsz: torch.Tensor,
        stride: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        batch_size = fg_mask.shape[0]
        fg = fg_mask.nonzero(as_tuple=True)
        image = fg[0]  # image index of every foreground anchor
        weight = target_scores[fg].sum(-1, keepdim=True)
        iou = bbox_iou(pred_bboxes[fg], target_bboxes[fg], xywh=False, CIoU=True)
        anchor_iou = (1.0 - iou) * weight  # (n_fg, 1)

        if self.dfl_loss:
            target_ltrb = bbox2dist(anchor_points, target_bboxes, self.dfl_loss.reg_max - 1)
            anchor_dfl = (
                self.dfl_loss(pred_dist[fg].view(-1, self.dfl_loss.reg_max), target_ltrb[fg])
                * weight
            )
        else:  # reg_max == 1: L1 on ltrb distances normalised by the image size
            target_ltrb = bbox2dist(anchor_points, target_bboxes) * stride
            target_ltrb[..., 0::2] /= imgsz[1]
            target_ltrb[..., 1::2] /= imgsz[0]
            pred_dist = pred_dist * stride
            pred_dist[..., 0::2] /= imgsz[1]
            pred_dist[..., 1::2] /= imgsz[0]
            anchor_dfl = (
                F.l1_loss(pred_dist[fg], target_ltrb[fg], reduction="none").mean(-1, keepdim=True)
                * weight
            )

        box, dfl = (
            t.new_zeros(batch_size).index_add(0, image, t.squeeze(-1))
            for t in (anchor_iou, anchor_dfl)
        )
        self.last_per_image = box, dfl, target_scores_sum
        return anchor_iou.sum() / target_scores_sum, anchor_dfl.sum() / target_scores_sum

    def __getstate__(self) -> dict[str, Any]:
        return {**super().__getstate__(), "last_per_image": None}  # see PerImageDetectionLoss


class PerImageDetectionLoss(v8DetectionLoss):
    """``v8DetectionLoss`` that also returns each image's box, cls and dfl terms.

    The stock loss runs unchanged (assignment, class weights, gains); its bce and bbox
    parts keep the per-image sums of the very tensors it adds up. Called as the stock
    criterion (``model.loss`` -> ``criterion(preds, batch)``) it returns ``(loss,
    loss_items)``, weighted by ``batch[WEIGHTS_KEY]`` when present, and leaves the
    (B, 3) terms, with their autograd history, in ``last_per_image``.
    ``per_image_loss`` returns all three as a :class:`PerImageLoss`.
    """

    def __init__(
        self, model: torch.nn.Module, tal_topk: int = 10, tal_topk2: int | None = None
    ) -> None:
        super().__init__(model, tal_topk, tal_topk2)
        self.bce = _KeptBCE()
        self.bbox_loss = PerImageBboxLoss(self.reg_max).to(self.device)
        self.last_per_image: torch.Tensor | None = None

    def per_image_loss(
        self,
        preds: dict[str, torch.Tensor] | tuple[torch.Tensor, dict[str, torch.Tensor]],
        batch: dict[str, Any],
        weights: Any = None,
    ) -> PerImageLoss:
        """The loss of one forward and its per-image terms; ``weights`` (B,) or None (all 1).

        Without weights ``loss`` is the stock tensor itself (bit for bit); with weights it
        is :func:`weighted_total` of the per-image terms (all ones: equal up to rounding).
        """
        preds = self.parse_output(preds)
        batch_size = preds["boxes"].shape[0]
        loss, loss_items = self.get_assigned_targets_and_loss(preds, batch)[1:]
        bce, self.bce.last = self.bce.last, None
        bbox_sums, self.bbox_loss.last_per_image = self.bbox_loss.last_per_image, None
        if bce is None or bbox_sums is None:
            raise RuntimeError(
                "Ultralytics' v8DetectionLoss no longer calls self.bce and self.bbox_loss "
                "as in 8.4.190 (loss.py:423-490): detreduce's per-image loss needs updating"
            )
        box, dfl, target_scores_sum = bbox_sums  # S: the one normaliser of all three terms
        terms = (box, bce.sum((1, 2)), dfl)
        gains = (self.hyp.box, self.hyp.cls, self.hyp.dfl)
        per_image = torch.stack(
            [(t / target_scores_sum).to(loss.dtype) * g for t, g in zip(terms, gains)], 1
        )
        total = loss * batch_size if weights is None else weighted_total(per_image, weights)
        self.last_per_image = per_image
        return PerImageLoss(total, loss_items, per_image)

    def loss(
        self, preds: dict[str, torch.Tensor], batch: dict[str, Any]
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """What ``BaseTrainer`` expects: ``(loss, loss_items)``, weighted by the batch's weights."""
        out = self.per_image_loss(preds, batch, batch.get(WEIGHTS_KEY))
        return out.loss, out.loss_items

    def __getstate__(self) -> dict[str, Any]:
        """State without the last forward's terms, for ``copy.deepcopy`` and pickle.

        ``ModelEMA`` deep-copies the model, criterion included (``utils/torch_utils.py``
        ``ModelEMA.__init__``), and a tensor with autograd history cannot be deep-copied.
        """
        return {**self.__dict__, "last_per_image": None}


class PerImageE2ELoss(E2ELoss):
    """``E2ELoss`` over two :class:`PerImageDetectionLoss` branches, per image too.

    ``per_image = o2m * per_image_o2m + o2o * per_image_o2o``, the stock combination
    (loss.py:1335-1341); ``update()`` (the ``o2m`` decay the trainer calls every epoch,
    trainer.py:642-643) is inherited. The one-to-one head sees detached features
    (``Detect.forward``, ``nn/modules/head.py:196``): its branch trains that head only.
    """

    def __init__(self, model: torch.nn.Module) -> None:
        super().__init__(model, loss_fn=PerImageDetectionLoss)
        self.last_per_image: torch.Tensor | None = None

    def per_image_loss(
        self,
        preds: dict[str, Any] | tuple[torch.Tensor, dict[str, Any]],
        batch: dict[str, Any],
        weights: Any = None,
    ) -> PerImageLoss:
        """Both branches' losses combined with the current gains; items from one-to-one."""
        preds = self.one2many.parse_output(preds)
        many = self.one2many.per_image_loss(preds["one2many"], batch, weights)
        one = self.one2one.per_image_loss(preds["one2one"], batch, weights)
        per_image = many.per_image * self.o2m + one.per_image * self.o2o
        self.last_per_image = per_image
        return PerImageLoss(many.loss * self.o2m + one.loss * self.o2o, one.loss_items, per_image)

    def __call__(
        self, preds: Any, batch: dict[str, Any]
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        out = self.per_image_loss(preds, batch, batch.get(WEIGHTS_KEY))
        return out.loss, out.loss_items

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "last_per_image": None}  # see PerImageDetectionLoss


def attach_per_image_loss(model: torch.nn.Module) -> PerImageDetectionLoss | PerImageE2ELoss:
    """Set ``model.criterion`` to the per-image loss ``init_criterion`` would build, and return it.

    ``DetectionModel.loss`` uses ``model.criterion`` once set (``nn/tasks.py:453-469``).
    Attach after the trainer's ``_setup_train`` (e.g. on ``on_train_start``,
    trainer.py:472-481): the criterion reads ``model.args`` and ``model.class_weights``
    when built (``set_model_attributes``, ``set_class_weights``), and resuming an
    end-to-end model rebuilds the stock criterion (trainer.py:1140-1144). Only plain
    detection models: segment, pose and OBB models have losses of their own.
    """
    model = unwrap_model(model)  # DDP, torch.compile
    if not isinstance(model, DetectionModel) or (
        type(model).init_criterion is not DetectionModel.init_criterion
    ):
        raise ConfigError(
            f"per-image loss: expected an Ultralytics DetectionModel (detect task), got "
            f"{type(model).__name__}"
        )
    if not hasattr(getattr(model, "args", None), "box"):
        raise ConfigError(
            "per-image loss: model.args must hold the training hyperparameters (box, cls, "
            "dfl gains); attach after the trainer's set_model_attributes, or set "
            "model.args = ultralytics.cfg.get_cfg()"
        )
    end2end = getattr(model.model[-1], "one2one_cv2", None) is not None
    model.criterion = PerImageE2ELoss(model) if end2end else PerImageDetectionLoss(model)
    return model.criterion
