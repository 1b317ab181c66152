"""Pixel preprocessing shared by every backbone: decode, resize, box crops.

Everything here works on ``uint8`` HWC RGB arrays and stays in uint8: normalization
to the backbone's mean/std happens on the device, so a batch crosses to the GPU at a
quarter of the float32 size. The functions are pure and run inside DataLoader workers.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import cv2
import numpy as np

RESIZE_POLICIES = ("squash", "letterbox")


@dataclass(frozen=True)
class Preprocess:
    """How an image becomes a network input, declared next to the weights.

    Attributes:
        size: square input side in pixels.
        resize: ``squash`` (whole image warped to the square: keeps the full field of
            view, what classifiers see for an image embedding) or ``letterbox``
            (aspect kept, padded with ``pad_value``: what YOLO is trained on).
        mean, std: per-channel RGB normalization in [0, 1] units; ``None`` means the
            model takes raw uint8 pixels (the non-neural fallback).
        pad_value: letterbox padding grey level (Ultralytics uses 114).
        draft: decode at 1/2, 1/4 or 1/8 scale (libjpeg's DCT scaling, OpenCV's
            ``IMREAD_REDUCED_*``) whenever the reduced image still covers ``size``, then
            resize as usual. A 640×480 JPEG decodes about 2× faster and the area resize
            to 224 px gets 4× fewer pixels; the input differs from a full decode by
            resampling noise only. Used for whole-image inputs when no crops are cut.
    """

    size: int
    resize: str = "squash"
    mean: tuple[float, float, float] | None = (0.485, 0.456, 0.406)
    std: tuple[float, float, float] | None = (0.229, 0.224, 0.225)
    pad_value: int = 114
    draft: bool = False

    def __post_init__(self) -> None:
        if self.resize not in RESIZE_POLICIES:
            raise ValueError(f"resize must be one of {RESIZE_POLICIES}, got {self.resize!r}")
        if self.size < 8:
            raise ValueError(f"input size must be at least 8 pixels, got {self.size}")

    def key(self) -> dict:
        """The parameters that change the pixels a network sees (part of cache keys).

        ``draft`` is left out: whether an image was decoded at reduced scale depends on
        its size, so it goes into that image's own row key instead (see ``draft_factor``).
        """
        out = asdict(self)
        del out["draft"]
        return out


_REDUCED = {1: cv2.IMREAD_COLOR, 2: cv2.IMREAD_REDUCED_COLOR_2}
_REDUCED |= {4: cv2.IMREAD_REDUCED_COLOR_4, 8: cv2.IMREAD_REDUCED_COLOR_8}


def input_side(width: int, height: int, pre: Preprocess) -> int:
    """The side that must reach ``pre.size``: the short one (squash), the long one (letterbox)."""
    return min(width, height) if pre.resize == "squash" else max(width, height)


def draft_factor(width: int, height: int, pre: Preprocess) -> int:
    """Largest of 1, 2, 4, 8 that shrinks a ``width × height`` image no below the input.

    ``squash`` needs both sides to stay at least ``size``; ``letterbox`` only the long
    side (the short one is scaled by the same factor either way). Unknown sizes → 1.
    """
    if not pre.draft or width <= 0 or height <= 0:
        return 1
    side = input_side(width, height, pre)
    factor = 1
    while factor < 8 and side // (factor * 2) >= pre.size:
        factor *= 2
    return factor


def decode(path: str, factor: int = 1) -> np.ndarray | None:
    """RGB uint8 HWC pixels of an image file, or None when it cannot be decoded.

    ``factor`` 2, 4 or 8 decodes at that fraction of the size (cheap for JPEG). OpenCV
    applies the EXIF orientation, as Ultralytics does when it trains.
    """
    img = cv2.imread(path, _REDUCED[factor])
    if img is None:
        return None
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)


def _resize(img: np.ndarray, width: int, height: int) -> np.ndarray:
    h, w = img.shape[:2]
    shrink = width < w or height < h
    interp = cv2.INTER_AREA if shrink else cv2.INTER_LINEAR
    return cv2.resize(img, (width, height), interpolation=interp)


def resize_image(img: np.ndarray, pre: Preprocess) -> np.ndarray:
    """The whole image as a ``(size, size, 3)`` uint8 input under the resize policy."""
    s = pre.size
    if pre.resize == "squash":
        return _resize(img, s, s)
    h, w = img.shape[:2]
    scale = s / max(h, w)
    nw, nh = max(1, round(w * scale)), max(1, round(h * scale))
    out = np.full((s, s, 3), pre.pad_value, dtype=np.uint8)
    top, left = (s - nh) // 2, (s - nw) // 2
    out[top : top + nh, left : left + nw] = _resize(img, nw, nh)
    return out


def crop_windows(
    boxes_xyxy: np.ndarray, width: int, height: int, padding: float, min_crop: int
) -> np.ndarray:
    """Integer crop windows ``(k, 4)`` (x1, y1, x2, y2, end exclusive) for pixel boxes.

    Each box gets ``padding`` × its width/height of context on every side (R-CNN,
    Girshick et al. 2014, found warped crops with context beat tight ones) and is grown
    around its centre to at least ``min_crop`` pixels per side, so zero-area and tiny
    boxes still give a meaningful patch. A window crossing the border is shifted inside
    (keeping its size, hence the object's scale) and clipped only where it is larger
    than the image. Every window is at least 1 pixel and lies inside the image. O(k).
    """
    b = np.asarray(boxes_xyxy, dtype=np.float64).reshape(-1, 4)
    out = np.empty((len(b), 4), dtype=np.int64)
    for axis, limit in ((0, width), (1, height)):
        lo = np.minimum(b[:, axis], b[:, axis + 2])
        hi = np.maximum(b[:, axis], b[:, axis + 2])
        side = np.maximum((hi - lo) * (1 + 2 * padding), min(min_crop, limit))
        start = np.round((lo + hi) / 2 - side / 2)
        end = start + np.maximum(np.round(side), 1)
        start = start - np.maximum(end - limit, 0)  # shift left/up into the image
        end = end - np.minimum(start, 0)  # shift right/down into the image
        start, end = np.maximum(start, 0), np.minimum(end, limit)
        out[:, axis], out[:, axis + 2] = start, end
    return out


def crop_boxes(
    img: np.ndarray, boxes_xyxy: np.ndarray, size: int, padding: float, min_crop: int
) -> np.ndarray:
    """All box crops of one decoded image, each warped to ``(size, size, 3)`` uint8."""
    h, w = img.shape[:2]
    wins = crop_windows(boxes_xyxy, w, h, padding, min_crop)
    out = np.empty((len(wins), size, size, 3), dtype=np.uint8)
    for i, (x1, y1, x2, y2) in enumerate(wins):
        out[i] = _resize(img[y1:y2, x1:x2], size, size)
    return out
