"""Localization metrics: pointing game, segmentation confusion matrix, mean IoU (SPEC §A5–A6).

All functions are pure and jittable (``num_classes`` and ``ignore_index`` are static). Shape checks
raise a :class:`ValueError` naming the argument; value checks (class ids in range) run only on
concrete inputs. Under ``jit`` they are skipped: out-of-range ids are then dropped from the counts.

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

import numbers

import jax
import jax.numpy as jnp
import numpy as np
from wsl_jax._arrays import is_concrete as _concrete

__all__ = ["confusion_matrix", "mean_iou", "pointing_game", "pointing_game_accuracy"]


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
    labels = jnp.asarray(labels)
    if labels.shape != (batch, num_classes):
        raise ValueError(
            f"`labels` must have shape (B, C) = {(batch, num_classes)}, got {labels.shape}."
        )
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
    if (_is_int(tolerance) or isinstance(tolerance, float)) and not tolerance >= 0:
        raise ValueError(f"`tolerance` must be >= 0 pixels, got {tolerance!r}.")

    py, px = _argmax_centres(heatmaps)  # (B, C)
    boxes = boxes.astype(jnp.float32)
    ymin, xmin, ymax, xmax = (boxes[:, None, :, i] for i in range(4))  # (B, 1, K)
    dy = jnp.maximum(jnp.maximum(ymin - py[..., None], py[..., None] - ymax), 0.0)
    dx = jnp.maximum(jnp.maximum(xmin - px[..., None], px[..., None] - xmax), 0.0)
    tol = jnp.asarray(tolerance, jnp.float32)
    near = dy * dy + dx * dx <= tol * tol  # (B, C, K)
    of_class = box_valid[:, None, :] & (
        box_labels[:, None, :] == jnp.arange(num_classes)[None, :, None]
    )
    scored = labels.astype(bool) & jnp.any(of_class, axis=-1)  # (B, C)
    hit = scored & jnp.any(of_class & near, axis=-1)
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
