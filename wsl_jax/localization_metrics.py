"""Localization metrics: pointing game, pointwise localization, WSOL (MaxBoxAccV2, PxAP),
segmentation confusion matrix, mean IoU (SPEC §A5–A6).

Functions are pure and jittable (``num_classes``, ``ignore_index``, ``cam_curve_interval`` are
static) except :func:`maxboxacc_hits` (contours, host-side NumPy/SciPy) and the final reductions
:func:`maxboxacc` and :func:`pxap` (host-side, float64). Shape checks raise a :class:`ValueError`
naming the argument; value checks (class ids in range) run only on concrete inputs. Under ``jit``
they are skipped: out-of-range ids are then dropped from the counts.

Each metric is named for what it is:

* **Pointing game** (Zhang et al., ECCV 2016), :func:`pointing_game`: an accuracy over the
  (image, present class) pairs; see below.
* **Pointwise localization** (Oquab et al., CVPR 2015; the protocol of the WELDON/TPAMI tables),
  :func:`pointwise_localization_hits` then :func:`pointwise_localization`: a *ranking* metric. Per
  class, every image is ranked by its class score; the image is a true positive when the peak of
  its class map lies within the tolerance of a box of the class, a false positive otherwise
  (including every image without the class); AP per class over the images holding the class,
  mean over classes.
* **MaxBoxAccV2** (Choe et al., "Evaluating Weakly Supervised Object Localization Methods Right",
  CVPR 2020; their ``clovaai/wsolevaluation`` code is the reference), :func:`maxboxacc_hits` then
  :func:`maxboxacc`: boxes around every contour of the min-max normalised class map thresholded
  over a sweep; the accuracy at the best threshold for IoU 30, 50 and 70, and their mean. GT-known
  localization accuracy is the IoU-50 accuracy at one threshold (chosen on validation); top-1
  localization also needs the top-1 class right.
* **PxAP** (same paper), :func:`pxap_histograms` then :func:`pxap`: the pixel precision-recall AP
  of the normalised class maps against the masks, over the same sweep.

Pointing game (Zhang et al., "Top-down neural attention by excitation backprop", ECCV 2016):

* For each image and each class present in ``labels`` that has at least one valid box of its class,
  the arg-max pixel of the class's heat map is a *hit* if its centre lies within ``tolerance``
  pixels (Euclidean distance, 0 inside) of one of those boxes, i.e. inside a box dilated by
  ``tolerance`` with rounded corners. Present classes without any valid box cannot be scored and are
  skipped.
* Pixel ``(i, j)`` has centre ``(i + 0.5, j + 0.5)``; boxes are absolute
  ``[ymin, xmin, ymax, xmax]`` in the same continuous coordinates (see :mod:`wsl_jax.localization`,
  and :func:`~wsl_jax.localization.boxes_to_pixels` for normalised boxes). Among tied maxima the
  first pixel in row-major order is the arg-max.
* Accuracy is reported per class (hits / totals), as the mean over the classes that were scored at
  least once (the usual figure), and overall (all hits / all totals). Sum ``hits`` and ``totals``
  over batches before calling :func:`pointing_game_accuracy`.

Confusion matrix and IoU:

* ``confusion[t, p]`` counts the pixels with target ``t`` and prediction ``p`` (rows: ground truth).
  Pixels whose target is ``ignore_index`` (VOC's 255 "void" border) are dropped.
* ``IoU_c = TP_c / (TP_c + FP_c + FN_c)``. A class absent from both target and prediction has an
  undefined IoU (NaN) and is excluded from the mean; the mean of no class is NaN.

Example (one image, two classes; class 0's peak lies in its box, class 1's does not):
  >>> import jax.numpy as jnp
  >>> heat = jnp.zeros((1, 32, 32, 2)).at[0, 4, 4, 0].set(1.0).at[0, 28, 28, 1].set(1.0)
  >>> boxes = jnp.array([[[0.0, 0.0, 8.0, 8.0], [0.0, 0.0, 8.0, 8.0]]])
  >>> box_labels, labels = jnp.array([[0, 1]]), jnp.array([[1, 1]])
  >>> hits, totals = pointing_game(heat, boxes, box_labels, labels, tolerance=4)
  >>> print(hits, totals, pointing_game_accuracy(hits, totals)[1])  # per class, mean over classes
  [1 0] [1 1] 0.5
  >>> pred, target = jnp.array([0, 1, 1]), jnp.array([0, 1, 0])
  >>> iou, miou = mean_iou(confusion_matrix(pred, target, num_classes=2))
  >>> print(iou, miou)
  [0.5 0.5] 0.5
"""

from __future__ import annotations

import functools
import numbers

import jax
import jax.numpy as jnp
import numpy as np
from scipy import ndimage

from wsl_jax._arrays import is_concrete as _concrete
from wsl_jax.localization import normalize_heatmaps

__all__ = [
    "IOU_THRESHOLDS",
    "cam_thresholds",
    "confusion_matrix",
    "maxboxacc",
    "maxboxacc_hits",
    "mean_iou",
    "pointing_game",
    "pointing_game_accuracy",
    "pointwise_localization",
    "pointwise_localization_hits",
    "pxap",
    "pxap_histograms",
]


def _is_int(x) -> bool:
    return isinstance(x, numbers.Integral) and not isinstance(x, bool)


# --------------------------------------------------------------------------------------------------
# Pointing game
# --------------------------------------------------------------------------------------------------
def _argmax_centres(heatmaps: jax.Array) -> tuple[jax.Array, jax.Array]:
    """``(B, H, W, C)`` → y and x centres ``(B, C)`` of each plane's first arg-max pixel."""
    batch, height, width, num_classes = heatmaps.shape
    flat = jnp.argmax(heatmaps.reshape(batch, height * width, num_classes), axis=1)
    return (flat // width).astype(jnp.float32) + 0.5, (flat % width).astype(jnp.float32) + 0.5


def _check_boxes(heatmaps, boxes, box_labels, box_valid):
    """Shape and value checks shared by the box metrics; returns the arrays, ``box_valid`` filled."""
    heatmaps = jnp.asarray(heatmaps)
    if heatmaps.ndim != 4:
        raise ValueError(f"`heatmaps` must be 4-D (B, H, W, C), got shape {heatmaps.shape}.")
    batch, height, width, num_classes = heatmaps.shape
    if height == 0 or width == 0:
        raise ValueError(
            f"`heatmaps` has empty images (zero height or width): shape {heatmaps.shape}."
        )
    boxes = jnp.asarray(boxes)
    if boxes.ndim != 3 or boxes.shape[0] != batch or boxes.shape[-1] != 4:
        raise ValueError(
            f"`boxes` must have shape (B, K, 4) = ({batch}, K, 4) [ymin, xmin, ymax, xmax], "
            f"got {boxes.shape}."
        )
    num_boxes = boxes.shape[1]
    box_labels = jnp.asarray(box_labels)
    if box_labels.shape != (batch, num_boxes):
        raise ValueError(
            f"`box_labels` must have shape (B, K) = {(batch, num_boxes)}, got {box_labels.shape}."
        )
    if not jnp.issubdtype(box_labels.dtype, jnp.integer):
        raise ValueError(f"`box_labels` must hold integer class ids, got dtype {box_labels.dtype}.")
    if box_valid is None:
        box_valid = box_labels >= 0
    else:
        box_valid = jnp.asarray(box_valid)
        if box_valid.shape != (batch, num_boxes):
            raise ValueError(
                f"`box_valid` must have shape (B, K) = {(batch, num_boxes)}, got {box_valid.shape}."
            )
        box_valid = box_valid.astype(bool)
    if _concrete(box_labels, box_valid):
        bad = np.asarray(box_valid) & (
            (np.asarray(box_labels) < 0) | (np.asarray(box_labels) >= num_classes)
        )
        if bad.any():
            raise ValueError(
                f"`box_labels` of valid boxes must be class ids in [0, {num_classes}), got "
                f"{np.unique(np.asarray(box_labels)[bad])[:10]}."
            )
    return heatmaps, boxes, box_labels, box_valid


def _check_labels(labels, heatmaps):
    labels = jnp.asarray(labels)
    batch, _, _, num_classes = heatmaps.shape
    if labels.shape != (batch, num_classes):
        raise ValueError(
            f"`labels` must have shape (B, C) = {(batch, num_classes)}, got {labels.shape}."
        )
    return labels.astype(bool)


def _peaks_near_boxes(heatmaps, boxes, box_labels, box_valid, tolerance):
    """``(has_box, near)``, both ``(B, C)``: the image has a valid box of class ``c``; the arg-max
    pixel centre of map ``c`` lies within ``tolerance`` of one of them."""
    if (_is_int(tolerance) or isinstance(tolerance, float)) and not tolerance >= 0:
        raise ValueError(f"`tolerance` must be >= 0 pixels, got {tolerance!r}.")
    num_classes = heatmaps.shape[-1]
    py, px = _argmax_centres(heatmaps)  # (B, C)
    boxes = boxes.astype(jnp.float32)
    ymin, xmin, ymax, xmax = (boxes[:, None, :, i] for i in range(4))  # (B, 1, K)
    dy = jnp.maximum(jnp.maximum(ymin - py[..., None], py[..., None] - ymax), 0.0)
    dx = jnp.maximum(jnp.maximum(xmin - px[..., None], px[..., None] - xmax), 0.0)
    tol = jnp.asarray(tolerance, jnp.float32)
    close = dy * dy + dx * dx <= tol * tol  # (B, C, K)
    of_class = box_valid[:, None, :] & (
        box_labels[:, None, :] == jnp.arange(num_classes)[None, :, None]
    )
    return jnp.any(of_class, axis=-1), jnp.any(of_class & close, axis=-1)


def pointing_game(heatmaps, boxes, box_labels, labels, *, box_valid=None, tolerance=15):
    """Pointing-game hits and totals per class (see the module docstring for the protocol).

    Args:
      heatmaps: ``(B, H, W, C)`` heat maps at image resolution.
      boxes: ``(B, K, 4)`` absolute pixel boxes ``[ymin, xmin, ymax, xmax]`` (padded to ``K`` per
        image).
      box_labels: ``(B, K)`` integer class id of each box, in ``[0, C)`` for valid boxes.
      labels: ``(B, C)`` multi-hot ground truth: the classes to point at.
      box_valid: ``(B, K)`` boolean mask of real (non-padding) boxes; default ``box_labels >= 0``,
        so padding with class id ``-1`` needs no mask.
      tolerance: distance in pixels (default 15, as in Zhang et al.); may be traced.

    Returns:
      ``(hits, totals)``: two ``(C,)`` int32 arrays, the number of hits and of scored (image, class)
      pairs per class.

    Example:
      >>> h = jnp.zeros((1, 40, 40, 2)).at[0, 5, 5, 0].set(1.).at[0, 30, 30, 1].set(1.)
      >>> boxes = jnp.array([[[0., 0., 10., 10.], [0., 0., 10., 10.]]])
      >>> pointing_game(h, boxes, jnp.array([[0, 1]]), jnp.array([[1, 1]]), tolerance=15)
      (Array([1, 0], dtype=int32), Array([1, 1], dtype=int32))
    """
    heatmaps, boxes, box_labels, box_valid = _check_boxes(heatmaps, boxes, box_labels, box_valid)
    labels = _check_labels(labels, heatmaps)
    has_box, near = _peaks_near_boxes(heatmaps, boxes, box_labels, box_valid, tolerance)
    scored = labels & has_box  # (B, C)
    hit = scored & near
    return jnp.sum(hit, axis=0, dtype=jnp.int32), jnp.sum(scored, axis=0, dtype=jnp.int32)


def pointing_game_accuracy(hits, totals):
    """Pointing-game accuracies from (summed) per-class ``hits`` and ``totals``.

    Args:
      hits: ``(C,)`` hit counts, e.g. from :func:`pointing_game` summed over batches.
      totals: ``(C,)`` scored (image, class) pair counts.

    Returns:
      ``(per_class, mean, overall)``: ``(C,)`` float32 ``hits / totals`` (NaN where
      ``totals == 0``), their mean over the classes with ``totals > 0`` (the usual figure), and
      ``sum(hits) / sum(totals)``. Both scalars are NaN when nothing was scored.

    Example:
      >>> hits, totals = jnp.array([1, 3, 0]), jnp.array([2, 3, 0])
      >>> pointing_game_accuracy(hits, totals)
      (Array([0.5, 1. , nan], dtype=float32), Array(0.75, dtype=float32), Array(0.8, dtype=float32))
    """
    hits = jnp.asarray(hits)
    totals = jnp.asarray(totals)
    if hits.ndim != 1 or totals.shape != hits.shape:
        raise ValueError(
            f"`hits` and `totals` must both have shape (C,), got {hits.shape} and {totals.shape}."
        )
    hits = hits.astype(jnp.float32)
    totals = totals.astype(jnp.float32)
    scored = totals > 0
    per_class = jnp.where(scored, hits / jnp.where(scored, totals, 1.0), jnp.nan)
    n_scored = jnp.sum(scored)
    mean = jnp.where(
        n_scored > 0, jnp.sum(jnp.where(scored, per_class, 0.0)) / jnp.maximum(n_scored, 1), jnp.nan
    )
    all_totals = jnp.sum(totals)
    overall = jnp.where(all_totals > 0, jnp.sum(hits) / jnp.maximum(all_totals, 1.0), jnp.nan)
    return per_class, mean, overall


# --------------------------------------------------------------------------------------------------
# Confusion matrix and mean IoU
# --------------------------------------------------------------------------------------------------
def confusion_matrix(pred, target, *, num_classes: int, ignore_index=255) -> jax.Array:
    """Pixel confusion matrix ``confusion[target, pred]``, void pixels dropped.

    Args:
      pred: integer labels of any shape, e.g. ``(B, H, W)`` from
        :func:`~wsl_jax.localization.segmentation_from_heatmaps` (``num_classes = C + 1`` there).
      target: integer ground truth of the same shape; ``ignore_index`` marks void pixels.
      num_classes: number of labels (background included), static.
      ignore_index: target value to drop (static int), or ``None``.

    Returns:
      ``(num_classes, num_classes)`` int32 counts, rows indexed by target and columns by prediction.

    Example:
      >>> confusion_matrix(jnp.array([0, 1, 1, 2, 0]), jnp.array([0, 1, 2, 255, 1]), num_classes=3)
      Array([[1, 0, 0],
             [1, 1, 0],
             [0, 1, 0]], dtype=int32)
    """
    if not _is_int(num_classes) or num_classes < 1:
        raise ValueError(f"`num_classes` must be a positive int, got {num_classes!r}.")
    if ignore_index is not None and not _is_int(ignore_index):
        raise ValueError(f"`ignore_index` must be an int or None, got {ignore_index!r}.")
    pred = jnp.asarray(pred)
    target = jnp.asarray(target)
    if pred.shape != target.shape:
        raise ValueError(
            f"`pred` and `target` must have the same shape, got {pred.shape} and {target.shape}."
        )
    for name, x in (("pred", pred), ("target", target)):
        if not jnp.issubdtype(x.dtype, jnp.integer):
            raise ValueError(f"`{name}` must hold integer labels, got dtype {x.dtype}.")
        if x.size == 0:
            raise ValueError(f"`{name}` is empty (zero pixels): shape {x.shape}.")
    keep = jnp.ones(target.shape, bool) if ignore_index is None else target != ignore_index
    if _concrete(pred, target):
        k, p, t = np.asarray(keep), np.asarray(pred), np.asarray(target)
        for name, x in (("target", t[k]), ("pred", p[k])):
            bad = (x < 0) | (x >= num_classes)
            if bad.any():
                raise ValueError(
                    f"`{name}` has labels outside [0, {num_classes}) (num_classes={num_classes}"
                    f"{'' if ignore_index is None else f', ignore_index={ignore_index}'}): "
                    f"{np.unique(x[bad])[:10]}."
                )
    pred = pred.astype(jnp.int32).ravel()
    target = target.astype(jnp.int32).ravel()
    keep = (
        keep.ravel() & (pred >= 0) & (pred < num_classes) & (target >= 0) & (target < num_classes)
    )
    size = num_classes * num_classes
    index = jnp.where(keep, target * num_classes + pred, size)  # ``size`` is out of range: dropped
    counts = jnp.zeros((size,), jnp.int32).at[index].add(1, mode="drop")
    return counts.reshape(num_classes, num_classes)


def mean_iou(confusion):
    """Per-class IoU and their mean from a confusion matrix.

    Args:
      confusion: ``(N, N)`` counts (rows: target, columns: prediction), e.g.
        :func:`confusion_matrix` summed over a data set. Accumulate in NumPy ``int64`` on large data
        sets: ``int32`` counts wrap past ``2**31`` pixels; NumPy inputs are read as floats, so
        ``int64`` totals are safe here.

    Returns:
      ``(iou, miou)``: ``(N,)`` float32 per-class IoU, NaN for a class absent from both target and
      prediction, and the mean over the other classes (NaN if there are none).

    Example:
      >>> c = jnp.array([[3, 1, 0], [0, 2, 0], [0, 0, 0]])
      >>> mean_iou(c)
      (Array([0.75    , 0.666667,      nan], dtype=float32), Array(0.708333, dtype=float32))
    """
    if not isinstance(confusion, jax.Array):
        # Through float64 NumPy: int64 counts past 2**31 (a large data set) would wrap in int32.
        confusion = np.asarray(confusion, np.float64).astype(np.float32)
    confusion = jnp.asarray(confusion)
    if confusion.ndim != 2 or confusion.shape[0] != confusion.shape[1] or confusion.shape[0] == 0:
        raise ValueError(
            f"`confusion` must be a square (N, N) matrix, got shape {confusion.shape}."
        )
    c = confusion.astype(jnp.float32)
    tp = jnp.diagonal(c)
    union = jnp.sum(c, axis=0) + jnp.sum(c, axis=1) - tp
    present = union > 0
    iou = jnp.where(present, tp / jnp.where(present, union, 1.0), jnp.nan)
    n = jnp.sum(present)
    miou = jnp.where(n > 0, jnp.sum(jnp.where(present, iou, 0.0)) / jnp.maximum(n, 1), jnp.nan)
    return iou, miou


# --------------------------------------------------------------------------------------------------
# Pointwise localization (Oquab et al., CVPR 2015): a ranking metric
# --------------------------------------------------------------------------------------------------
def pointwise_localization_hits(heatmaps, boxes, box_labels, *, box_valid=None, tolerance=18.0):
    """Per (image, class): does the peak of the class map lie near an object of that class?

    The first half of the pointwise localization protocol (see :func:`pointwise_localization`).
    Unlike :func:`pointing_game`, *every* (image, class) pair is a detection: ``hits`` is False
    where the image holds no object of the class (a false positive once ranked).

    Args:
      heatmaps: ``(B, H, W, C)`` heat maps at image resolution.
      boxes: ``(B, K, 4)`` absolute pixel boxes ``[ymin, xmin, ymax, xmax]``.
      box_labels: ``(B, K)`` integer class id of each box.
      box_valid: ``(B, K)`` boolean mask of real boxes; default ``box_labels >= 0``.
      tolerance: distance in pixels (Oquab et al.: 18 pixels at their input scale); may be traced.

    Returns:
      ``(hits, objects)``: two ``(B, C)`` bool arrays; ``objects`` marks the images holding a valid
      box of the class (the ground truths to retrieve), ``hits`` the pairs whose arg-max pixel
      centre is within ``tolerance`` of one of those boxes.

    Example:
      >>> h = jnp.zeros((2, 40, 40, 1)).at[0, 5, 5, 0].set(1.).at[1, 30, 30, 0].set(1.)
      >>> boxes = jnp.array([[[0., 0., 10., 10.]], [[0., 0., 10., 10.]]])
      >>> pointwise_localization_hits(h, boxes, jnp.array([[0], [0]]), tolerance=18)
      (Array([[ True], [False]], dtype=bool), Array([[ True], [ True]], dtype=bool))
    """
    heatmaps, boxes, box_labels, box_valid = _check_boxes(heatmaps, boxes, box_labels, box_valid)
    objects, near = _peaks_near_boxes(heatmaps, boxes, box_labels, box_valid, tolerance)
    return near, objects


def pointwise_localization(scores, hits, objects, *, mode: str = "allpoint", where=None):
    """Pointwise localization AP per class and their mean (Oquab et al., CVPR 2015).

    Per class ``c``, all images are ranked by the class score ``scores[:, c]``; an image is a true
    positive if its class-``c`` peak is a hit (:func:`pointwise_localization_hits`), otherwise a
    false positive, *including every image without the class*. Recall counts the images holding
    an object of class ``c`` (``objects``), so an object whose peak misses is never retrieved. AP
    follows :func:`~wsl_jax.metrics.average_precision` (``mode``, tie groups, ``where``); the mean
    is over the classes with at least one object.

    Args:
      scores: ``(N, C)`` class scores of the whole evaluation set.
      hits: ``(N, C)`` bool hits.
      objects: ``(N, C)`` bool: the image holds an object of the class.
      mode: an AP mode of :data:`~wsl_jax.metrics.AP_MODES`; default ``"allpoint"`` (the VOC 2012
        devkit's, the data set of the protocol).
      where: optional ``(N, C)`` or ``(N,)`` bool mask of the pairs that count.

    Returns:
      ``(ap, mean)``: ``(C,)`` AP per class (NaN for a class without an object) and their mean.

    Example (one class: hit at the top score, the second object missed, an empty image between):
      >>> scores = jnp.array([[0.9], [0.8], [0.7]])
      >>> hits, objects = jnp.array([[True], [False], [False]]), jnp.array([[True], [False], [True]])
      >>> pointwise_localization(scores, hits, objects, mode="noninterp")  # (1/1) / 2 objects
      (Array([0.5], dtype=float32), Array(0.5, dtype=float32))
    """
    from wsl_jax.metrics import _ap_columns, _prepare_ap  # Shared AP machinery.

    hits, objects = jnp.asarray(hits), jnp.asarray(objects)
    scores = jnp.asarray(scores)
    if scores.ndim != 2:
        raise ValueError(f"`scores` must have shape (N, C), got {scores.shape}.")
    for name, x in (("hits", hits), ("objects", objects)):
        if x.shape != scores.shape:
            raise ValueError(
                f"`{name}` must have the shape of `scores` {scores.shape}, got {x.shape}."
            )
    hits, objects = hits.astype(bool), objects.astype(bool)
    if _concrete(hits, objects) and np.any(np.asarray(hits) & ~np.asarray(objects)):
        raise ValueError("`hits` must be False where `objects` is False (no object, no hit).")
    scores, hits_int, where = _prepare_ap(scores, hits.astype(jnp.int32), where, mode)
    num_positives = jnp.sum(objects & where, axis=0).astype(jnp.float32)
    ap = _ap_columns(scores, hits_int, where, mode, num_positives)
    return ap, jnp.nanmean(ap)


# --------------------------------------------------------------------------------------------------
# WSOL metrics (Choe et al., CVPR 2020): MaxBoxAccV2 and PxAP
# --------------------------------------------------------------------------------------------------
IOU_THRESHOLDS = (30, 50, 70)


def cam_thresholds(cam_curve_interval: float = 0.01) -> np.ndarray:
    """The score-map threshold sweep ``np.arange(0, 1, cam_curve_interval)`` (float64).

    Example:
      >>> cam_thresholds(0.25)
      array([0.  , 0.25, 0.5 , 0.75])
    """
    if not isinstance(cam_curve_interval, (float, int)) or not 0 < cam_curve_interval <= 1:
        raise ValueError(f"`cam_curve_interval` must be in (0, 1], got {cam_curve_interval!r}.")
    return np.arange(0, 1, cam_curve_interval)


def _contour_boxes(foreground: np.ndarray) -> np.ndarray:
    """Bounding boxes ``[x0, y0, x1, y1]`` of every contour OpenCV's ``findContours(RETR_TREE)``
    finds in a binary image, in the reference's convention (``x1 = x + w``, clipped to ``W - 1``).

    Suzuki-Abe border following gives one outer border per 8-connected foreground component (its
    bounding box is the component's) and one hole border per 4-connected background component
    that does not reach the frame (the foreground pixels 4-adjacent to the hole: its bounding box
    is the hole's grown by one pixel). So connected components give the same boxes as contours,
    without OpenCV; the tests check this against ``cv2.findContours``.
    """
    height, width = foreground.shape
    found = []
    labelled, _ = ndimage.label(foreground, structure=np.ones((3, 3), bool))
    for rows, cols in ndimage.find_objects(labelled):
        found.append((cols.start, rows.start, cols.stop, rows.stop))
    background = np.ones((height + 2, width + 2), bool)  # The frame is background.
    background[1:-1, 1:-1] = ~foreground
    labelled, _ = ndimage.label(background)  # 4-connected
    outside = labelled[0, 0]
    for index, (rows, cols) in enumerate(ndimage.find_objects(labelled), start=1):
        if index != outside:  # A hole, [start, stop) in padded coordinates: grown by one pixel.
            found.append((cols.start - 2, rows.start - 2, cols.stop, rows.stop))
    if not found:  # The reference scores a map without foreground with the box [0, 0, 0, 0].
        return np.zeros((1, 4), np.int64)
    boxes = np.asarray(found, np.int64)
    boxes[:, 2] = np.minimum(boxes[:, 2], width - 1)
    boxes[:, 3] = np.minimum(boxes[:, 3], height - 1)
    return boxes


def _iou_hits(pred: np.ndarray, owner: np.ndarray, gt: np.ndarray, iou_thresholds, size: int):
    """``(len(iou_thresholds), size)``: whether the best IoU (reference +1 convention) between the
    predicted boxes of each sweep step (``owner``: the step of each box) and any ground-truth box
    reaches each threshold (in percent); decided exactly in integers."""
    lo = np.maximum(pred[:, None, :2], gt[None, :, :2])
    hi = np.minimum(pred[:, None, 2:], gt[None, :, 2:])
    inter = np.prod(np.maximum(hi - lo + 1, 0), axis=-1)
    area_p = np.prod(pred[:, 2:] - pred[:, :2] + 1, axis=-1)
    area_g = np.prod(gt[:, 2:] - gt[:, :2] + 1, axis=-1)
    union = area_p[:, None] + area_g[None, :] - inter
    ok = union > 0  # Degenerate boxes score IoU 0, as in the reference.
    out = np.zeros((len(iou_thresholds), size), bool)
    for i, delta in enumerate(iou_thresholds):
        right = np.any(ok & (100 * inter >= delta * union), axis=1)
        np.logical_or.at(out[i], owner, right)
    return out


def _check_iou_thresholds(iou_thresholds):
    values = tuple(iou_thresholds)
    if not values or not all(_is_int(v) and 0 <= v <= 100 for v in values):
        raise ValueError(
            f"`iou_thresholds` must be percentages (ints in [0, 100]), got {iou_thresholds!r}."
        )
    return values


def maxboxacc_hits(
    heatmaps,
    boxes,
    box_labels,
    labels,
    *,
    box_valid=None,
    cam_curve_interval: float = 0.01,
    iou_thresholds=IOU_THRESHOLDS,
):
    """Per (image, class) and score-map threshold: is an estimated box right? (MaxBoxAccV2 inputs).

    The box estimation of Choe et al.'s reference evaluation code (``clovaai/wsolevaluation``,
    ``multi_contour_eval=True``), for each present class ``c`` with a box (GT-known):

    * the class map is min-max normalised (a no-op on :func:`~wsl_jax.localization.
      class_maps_to_heatmaps` output) and quantised to 8 bits, ``floor(255 · map)``;
    * for each threshold ``τ`` of :func:`cam_thresholds`, the foreground is the pixels above
      ``int(τ · max)`` (``max`` of the quantised map), and every contour of it (OpenCV
      ``RETR_TREE``: outer borders and hole borders) gives a box ``[x, y, x + w, y + h]`` clipped
      to ``[W - 1, H - 1]``; no foreground gives the box ``[0, 0, 0, 0]``;
    * ground-truth boxes ``[ymin, xmin, ymax, xmax]`` (continuous pixels) become
      ``[floor(xmin), floor(ymin), floor(xmax), floor(ymax)]``, as the reference's ``int``
      resizing does, and IoU counts inclusive pixels (``x1 - x0 + 1`` wide);
    * the pair is right at ``(δ, τ)`` when the best IoU over all estimated boxes and all boxes of
      class ``c`` is ``>= δ / 100``.

    Host-side NumPy/SciPy (contours are not jittable); the boxes come from connected components
    (:mod:`scipy.ndimage`), equal to OpenCV's contour boxes (checked in the tests).

    Args:
      heatmaps: ``(B, H, W, C)`` class maps at image resolution.
      boxes: ``(B, K, 4)`` absolute pixel boxes ``[ymin, xmin, ymax, xmax]``.
      box_labels: ``(B, K)`` integer class id of each box.
      labels: ``(B, C)`` multi-hot ground truth: the classes to localise.
      box_valid: ``(B, K)`` boolean mask of real boxes; default ``box_labels >= 0``.
      cam_curve_interval: step of the threshold sweep (reference default 0.01).
      iou_thresholds: IoU thresholds in percent (default ``(30, 50, 70)``).

    Returns:
      ``(hits, scored)``: ``(B, C, len(iou_thresholds), T)`` bool and ``(B, C)`` bool (present
      classes with at least one valid box). Sum ``hits[scored]`` over a data set for
      :func:`maxboxacc`.

    Example (a 6×6 map with a 3×3 blob at rows and columns 1-3: box ``[1, 1, 4, 4]``, 16 pixels
    with the ``+1``; the object ``[0, 0, 3, 3]`` also covers 16, 9 of them shared):
      >>> h = np.zeros((1, 6, 6, 1)); h[0, 1:4, 1:4, 0] = 1.0
      >>> hits, scored = maxboxacc_hits(h, [[[0., 0., 3., 3.]]], [[0]], [[1]],
      ...                               cam_curve_interval=0.5, iou_thresholds=(30, 50))
      >>> hits[0, 0], scored  # IoU 9/23 at both score-map thresholds
      (array([[ True,  True],
             [False, False]]), array([[ True]]))
    """
    iou_thresholds = _check_iou_thresholds(iou_thresholds)
    taus = cam_thresholds(cam_curve_interval)
    heatmaps, boxes, box_labels, box_valid = _check_boxes(heatmaps, boxes, box_labels, box_valid)
    labels = _check_labels(labels, heatmaps)
    maps = np.asarray(normalize_heatmaps(heatmaps), np.float64)
    boxes = np.floor(np.asarray(boxes, np.float64)).astype(np.int64)[..., [1, 0, 3, 2]]
    box_labels, box_valid, labels = (np.asarray(x) for x in (box_labels, box_valid, labels))
    batch, _, _, num_classes = maps.shape
    hits = np.zeros((batch, num_classes, len(iou_thresholds), len(taus)), bool)
    scored = np.zeros((batch, num_classes), bool)
    for b in range(batch):
        for c in np.nonzero(labels[b])[0]:
            gt = boxes[b][box_valid[b] & (box_labels[b] == c)]
            if not len(gt):
                continue
            scored[b, c] = True
            quantised = (maps[b, :, :, c] * 255).astype(np.uint8)
            peak = int(quantised.max())
            # Levels with the same foreground (no pixel value in between) share their boxes.
            above = np.cumsum(np.bincount(quantised.ravel(), minlength=256)[::-1])[::-1]
            levels = [int(tau * peak) for tau in taus]
            step_of, owners, found = {}, [], []
            for level in levels:
                key = int(above[level + 1]) if level < 255 else 0  # pixels above the level
                if key not in step_of:
                    step_of[key] = len(step_of)
                    boxes_here = _contour_boxes(quantised > level)
                    found.append(boxes_here)
                    owners.append(np.full(len(boxes_here), step_of[key]))
            right = _iou_hits(
                np.concatenate(found), np.concatenate(owners), gt, iou_thresholds, len(step_of)
            )
            keys = [int(above[level + 1]) if level < 255 else 0 for level in levels]
            hits[b, c] = right[:, [step_of[k] for k in keys]]
    return hits, scored


def maxboxacc(
    correct,
    total,
    *,
    cam_curve_interval: float = 0.01,
    iou_thresholds=IOU_THRESHOLDS,
    at_threshold=None,
):
    """MaxBoxAcc per IoU threshold, MaxBoxAccV2 (their mean) and the best score-map thresholds.

    With ``at_threshold`` (a score-map threshold chosen elsewhere, on validation), also the box
    accuracy at that threshold: GT-known localization accuracy (``["at_threshold"][50]``), or top-1
    localization when ``correct`` only counts the pairs whose top-1 class is right.

    Args:
      correct: ``(len(iou_thresholds), T)`` counts of right (image, class) pairs per IoU and
        score-map threshold: ``hits[scored].sum(0)`` of :func:`maxboxacc_hits`, summed over a data
        set.
      total: number of scored pairs (``scored.sum()``).
      cam_curve_interval, iou_thresholds: those of :func:`maxboxacc_hits`.
      at_threshold: optional threshold of the sweep (the nearest sweep value is used).

    Returns:
      A dict: ``"MaxBoxAccV2"`` (mean over the IoU thresholds of the best accuracy over the sweep),
      ``"MaxBoxAcc"`` ``{δ: best accuracy}``, ``"best_threshold"`` ``{δ: τ}`` (the first best
      threshold) and, with ``at_threshold``, ``"at_threshold"`` ``{δ: accuracy}``. Accuracies are
      fractions (the reference prints percentages); NaN if ``total == 0``.

    Example:
      >>> correct = np.array([[2, 3, 1], [1, 2, 2], [0, 1, 0]])  # IoU 30/50/70 × 3 thresholds
      >>> out = maxboxacc(correct, 4, cam_curve_interval=0.4, at_threshold=0.8)  # τ: 0, 0.4, 0.8
      >>> out["MaxBoxAccV2"], out["MaxBoxAcc"][50], out["best_threshold"][50]
      (0.5, 0.5, 0.4)
      >>> out["at_threshold"]
      {30: 0.25, 50: 0.5, 70: 0.0}
    """
    iou_thresholds = _check_iou_thresholds(iou_thresholds)
    taus = cam_thresholds(cam_curve_interval)
    correct = np.asarray(correct, np.float64)
    if correct.shape != (len(iou_thresholds), len(taus)):
        raise ValueError(
            f"`correct` must have shape (len(iou_thresholds), T) = "
            f"{(len(iou_thresholds), len(taus))}, got {correct.shape}."
        )
    if at_threshold is not None and not 0 <= at_threshold < 1:
        raise ValueError(f"`at_threshold` must be a threshold in [0, 1), got {at_threshold!r}.")
    if total == 0:
        correct = np.full_like(correct, np.nan)
        total = 1
    accuracy = correct / float(total)
    best = np.argmax(accuracy, axis=1)
    out = {
        "MaxBoxAccV2": float(np.mean(accuracy.max(axis=1))),
        "MaxBoxAcc": {d: float(accuracy[i].max()) for i, d in enumerate(iou_thresholds)},
        "best_threshold": {
            d: float(round(taus[best[i]], 10)) if np.isfinite(accuracy[i]).all() else float("nan")
            for i, d in enumerate(iou_thresholds)
        },
    }
    if at_threshold is not None:
        t = int(np.argmin(np.abs(taus - at_threshold)))
        out["at_threshold"] = {d: float(accuracy[i, t]) for i, d in enumerate(iou_thresholds)}
    return out


def _pxap_edges(cam_curve_interval: float) -> np.ndarray:
    """The reference's histogram edges ``[τ_0, ..., τ_{T-1}, 1, 2, 3]`` as float32 values ``e``
    such that, for every float32 ``v``, ``v >= e`` exactly when ``v >= `` the float64 edge."""
    edges = np.append(cam_thresholds(cam_curve_interval), [1.0, 2.0, 3.0])
    single = edges.astype(np.float32)
    below = single.astype(np.float64) < edges
    single[below] = np.nextafter(single[below], np.float32(np.inf))
    return single


@functools.partial(jax.jit, static_argnames=("cam_curve_interval", "ignore_index"))
def _pxap_histograms(heatmaps, masks, labels, cam_curve_interval, ignore_index):
    edges = jnp.asarray(_pxap_edges(cam_curve_interval))
    maps = normalize_heatmaps(heatmaps)
    num_classes = maps.shape[-1]
    bins = jnp.searchsorted(edges, maps, side="right") - 1  # (B, H, W, C) bin of each value
    target = masks[..., None]
    ids = jnp.arange(1, num_classes + 1)
    present = labels[:, None, None, :]
    positive = present & (target == ids)
    negative = present & (target != ids)
    if ignore_index is not None:
        negative = negative & (target != ignore_index)
    size = edges.shape[0] - 1
    bins = bins.ravel()

    def histogram(weight):
        return jnp.zeros((size,), jnp.int32).at[bins].add(weight.ravel().astype(jnp.int32))

    return histogram(positive), histogram(negative)


def pxap_histograms(heatmaps, masks, labels, *, cam_curve_interval: float = 0.01, ignore_index=255):
    """Score histograms of the ground-truth positive and negative pixels (PxAP inputs).

    Choe et al.'s reference (``MaskEvaluator``): each class map is min-max normalised and its
    values are binned on ``[τ_0, τ_1), ..., [τ_{T-1}, 1), [1, 2), [2, 3]`` (the sweep of
    :func:`cam_thresholds`), separately for the pixels of the class (positives) and the others
    (negatives). Here, per present class ``c`` of each image: positives are the pixels with
    ``masks == c + 1`` (segmentation labels: ``0`` background, ``c + 1`` class ``c``), negatives
    the other pixels except ``ignore_index`` (VOC's void border). Jittable.

    Args:
      heatmaps: ``(B, H, W, C)`` class maps at image resolution.
      masks: ``(B, H, W)`` integer segmentation labels.
      labels: ``(B, C)`` multi-hot ground truth: the classes scored in each image.
      cam_curve_interval: step of the threshold sweep (static; reference default 0.01).
      ignore_index: label of ignored pixels (static int) or ``None``.

    Returns:
      ``(positive, negative)``: two ``(T + 2,)`` int32 histograms; sum them over a data set (in
      int64 on large ones) for :func:`pxap`.

    Example:
      >>> h = jnp.array([[0.0, 0.3], [0.9, 1.0]]).reshape(1, 2, 2, 1)
      >>> pxap_histograms(h, jnp.array([[[0, 0], [1, 255]]]), jnp.array([[1]]),
      ...                 cam_curve_interval=0.5)
      (Array([0, 1, 0, 0], dtype=int32), Array([2, 0, 0, 0], dtype=int32))
    """
    cam_thresholds(cam_curve_interval)  # Validates the interval.
    heatmaps = jnp.asarray(heatmaps)
    if heatmaps.ndim != 4 or heatmaps.shape[1] == 0 or heatmaps.shape[2] == 0:
        raise ValueError(f"`heatmaps` must be 4-D (B, H, W, C) with pixels, got {heatmaps.shape}.")
    masks = jnp.asarray(masks)
    if masks.shape != heatmaps.shape[:3]:
        raise ValueError(
            f"`masks` must have shape (B, H, W) = {heatmaps.shape[:3]}, got {masks.shape}."
        )
    if not jnp.issubdtype(masks.dtype, jnp.integer):
        raise ValueError(f"`masks` must hold integer labels, got dtype {masks.dtype}.")
    if ignore_index is not None and not _is_int(ignore_index):
        raise ValueError(f"`ignore_index` must be an int or None, got {ignore_index!r}.")
    labels = _check_labels(labels, heatmaps)
    return _pxap_histograms(heatmaps, masks, labels, float(cam_curve_interval), ignore_index)


def pxap(positive, negative) -> float:
    """PxAP: the area under the pixel precision-recall curve of Choe et al.'s reference.

    From the histograms of :func:`pxap_histograms` (ascending bins), cumulated from the top:
    ``TP_i``, ``FP_i`` at the ``i``-th threshold from the top, ``P_i = TP_i / (TP_i + FP_i)``,
    ``R_i = TP_i / #positives``, and ``PxAP = sum_{i >= 1} P_i (R_i - R_{i-1})`` over the
    thresholds with a prediction. A fraction (the reference prints percentages). Host-side, in
    float64 (pixel counts of a data set exceed float32's exact integers).

    Args:
      positive: ``(T + 2,)`` histogram of the positive pixels' scores.
      negative: ``(T + 2,)`` histogram of the negative pixels' scores.

    Returns:
      A float; NaN without any positive pixel or without any pixel at all.

    Example (half the positive pixels in the top bin, alone; the rest tied with all negatives):
      >>> pxap(np.array([0, 2, 2, 0]), np.array([0, 4, 0, 0]))  # 1·0.5 + (4/8)·0.5
      0.75
    """
    positive = np.asarray(positive, np.float64)
    negative = np.asarray(negative, np.float64)
    if positive.ndim != 1 or negative.shape != positive.shape or positive.size < 2:
        raise ValueError(
            "`positive` and `negative` must be histograms of the same shape (T + 2,), got "
            f"{positive.shape} and {negative.shape}."
        )
    tp = np.cumsum(positive[::-1])
    fp = np.cumsum(negative[::-1])
    if tp[-1] <= 0:
        return float("nan")
    predicted = tp + fp
    precision = np.divide(tp, predicted, out=np.zeros_like(tp), where=predicted > 0)
    recall = tp / tp[-1]
    return float(np.sum((precision[1:] * np.diff(recall))[predicted[1:] > 0]))
