"""Evaluation metrics: average precision (three variants), mAP and accuracies.

All functions are pure and jittable (``mode`` and ``num_classes`` are static). Value checks
(NaN scores, non-binary labels, out-of-range class ids) run only on concrete inputs; under
``jit`` they are skipped, and invalid values give meaningless results instead of an error.

Average precision conventions (SPEC A6):

* Tied scores form one threshold: precision and recall are evaluated at the *distinct* score
  values, as :func:`sklearn.metrics.average_precision_score` does, so the result never depends
  on the order of tied examples.
* ``"noninterp"``: ``AP = sum_k (R_k - R_{k-1}) P_k`` over thresholds, i.e. the mean over
  positives of the precision at the positive's threshold. Equals sklearn; without ties, also
  the official WILDCAT PyTorch meter (which ranks tied scores in sort order).
* ``"voc07"``: VOC 2007 11-point interpolation, ``mean_{t} max_{R >= t} P`` (0 when no
  threshold reaches recall ``t``), with the thresholds ``t = np.arange(0., 1.1, 0.1)`` and the
  float64 recall ``TP / |P|`` of the devkit's Python port (``voc_ap(rec, prec,
  use_07_metric=True)`` in py-faster-rcnn's ``voc_eval.py``), which everybody compares against.
  That ``arange`` puts 0.3, 0.6 and 0.7 one ulp *above* the tenths, so a recall of exactly 3/10,
  6/10 or 7/10 does not reach them. Decided exactly in integers: ``10·TP > k·|P|``, or
  ``10·TP == k·|P|`` for ``k`` not in {3, 6, 7}.
* ``"voc07_exact"``: the same with the exact tenths (``10·TP >= k·|P|``), the textbook
  definition; it differs from ``"voc07"`` only when recall lands exactly on 0.3, 0.6 or 0.7.
* ``"allpoint"``: VOC 2010+; area under the monotone envelope ``max_{R' >= R} P(R')`` of the
  precision-recall curve.
* ``where`` drops entries (e.g. VOC "difficult" objects at evaluation); a dropped entry counts
  neither as positive nor as negative.
* Scores are compared in at least float32 (float64 only with ``jax_enable_x64``): casting
  float64 scores can create ties that sklearn, working in float64, does not see.
* A class without any (kept) positive has undefined AP: the result is NaN for that class, and
  :func:`mean_average_precision` averages over the classes with at least one positive.

Example (scores and multi-hot labels of four images, two classes):
  >>> import jax.numpy as jnp
  >>> scores = jnp.array([[0.9, 0.1], [0.8, 0.7], [0.3, 0.6], [0.1, 0.2]])
  >>> labels = jnp.array([[1, 0], [0, 1], [1, 1], [0, 0]])
  >>> print(average_precision(scores, labels).round(4))  # per class, = sklearn
  [0.8333 1.    ]
  >>> print(mean_average_precision(scores, labels, mode="voc07").round(4))
  0.9242
  >>> print(top1_accuracy(scores, jnp.array([0, 1, 1, 0])))
  0.5
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from wsl_jax._arrays import at_least_float32 as _float
from wsl_jax._arrays import check_class_ids
from wsl_jax._arrays import is_concrete as _concrete

AP_MODES = ("noninterp", "voc07", "allpoint", "voc07_exact")

# The devkit's recall thresholds ``np.arange(0., 1.1, 0.1)`` (float64). A float64 recall equal to
# the rational k/10 is ``np.float64(k) / 10``; whether it reaches the k-th threshold is fixed per k.
_VOC07_THRESHOLDS = np.arange(0.0, 1.1, 0.1)
_VOC07_TENTH_REACHES = tuple(bool(k / 10 >= t) for k, t in enumerate(_VOC07_THRESHOLDS))

__all__ = [
    "AP_MODES",
    "average_precision",
    "classification_metrics",
    "mean_average_precision",
    "per_class_mean_accuracy",
    "top1_accuracy",
]


def _check_no_nan(name, x, where):
    """Raises if a kept entry of concrete ``x`` is NaN (``where``: bool mask broadcast to x)."""
    if _concrete(x, where) and jnp.issubdtype(x.dtype, jnp.floating):
        if np.any(np.isnan(np.asarray(x)) & np.asarray(where)):
            raise ValueError(f"`{name}` contains NaN.")


def _prepare_ap(scores, labels, where, mode):
    if mode not in AP_MODES:
        raise ValueError(f"`mode` must be one of {AP_MODES}, got {mode!r}.")
    scores, labels = jnp.asarray(scores), jnp.asarray(labels)
    if scores.ndim not in (1, 2):
        raise ValueError(f"`scores` must have shape (N,) or (N, C), got {scores.shape}.")
    if labels.shape != scores.shape:
        raise ValueError(
            f"`labels` must have the shape of `scores` {scores.shape}, got {labels.shape}."
        )
    if where is None:
        where = jnp.ones(scores.shape, bool)
    else:
        where = jnp.asarray(where)
        if where.shape not in (scores.shape, scores.shape[:1]):
            raise ValueError(
                f"`where` must have shape {scores.shape} or {scores.shape[:1]}, got {where.shape}."
            )
        where = jnp.broadcast_to(
            where.reshape(where.shape + (1,) * (scores.ndim - where.ndim)), scores.shape
        ).astype(bool)
    _check_no_nan("scores", scores, where)
    if _concrete(labels):
        values = np.asarray(labels)
        if not np.isin(values, (0, 1)).all():
            raise ValueError(f"`labels` must be binary (0/1), got values {np.unique(values)[:10]}.")
    return scores, labels, where


@functools.partial(jax.jit, static_argnames="mode")
def _ap_columns(scores, labels, where, mode, num_positives=None):
    """Per-column AP of ``(N, C)`` arrays; see the module docstring.

    ``num_positives`` (``(C,)``, optional) replaces the recall denominator ``|P|`` (the number of
    kept positives) by a larger count: ground truths that no entry retrieves (a detection-style
    AP, e.g. pointwise localization). ``None``: ``|P|``.
    """
    scores = _float(scores)
    weight = where.astype(scores.dtype)
    pos = labels.astype(scores.dtype) * weight
    # Ascending sort of -score = descending score. Dropped entries have zero weight, so they
    # never move the counts; sending them last also keeps their (possibly NaN) scores out.
    key = jnp.where(weight > 0, -scores, jnp.inf)
    key, pos, weight = lax.sort((key, pos, weight), dimension=0, num_keys=1)
    tp, fp = jnp.cumsum(pos, axis=0), jnp.cumsum(weight - pos, axis=0)
    last = jnp.ones((1,) + key.shape[1:], bool)
    is_end = jnp.concatenate([key[1:] != key[:-1], last], axis=0)  # last of its tie group
    # Counts at the end of each entry's tie group (counts grow, so the next end is the minimum).
    tp = lax.cummin(jnp.where(is_end, tp, jnp.inf), axis=0, reverse=True)
    fp = lax.cummin(jnp.where(is_end, fp, jnp.inf), axis=0, reverse=True)
    n_pos = jnp.sum(pos, axis=0)
    if num_positives is not None:
        n_pos = jnp.asarray(num_positives, n_pos.dtype)
    precision = jnp.where(tp + fp > 0, tp / jnp.maximum(tp + fp, 1), 0.0)
    safe_n_pos = jnp.maximum(n_pos, 1)
    if mode == "noninterp":
        ap = jnp.sum(pos * precision, axis=0) / safe_n_pos
    elif mode == "allpoint":
        envelope = lax.cummax(precision, axis=0, reverse=True)
        ap = jnp.sum(pos * envelope, axis=0) / safe_n_pos
    else:  # voc07, voc07_exact: counts are whole numbers, so the comparisons below are exact.
        shape = (11,) + (1,) * tp.ndim
        k = jnp.arange(11, dtype=tp.dtype).reshape(shape)
        tenth = _VOC07_TENTH_REACHES if mode == "voc07" else (True,) * 11
        tenth = jnp.asarray(tenth).reshape(shape)
        reached = (10 * tp > k * n_pos) | ((10 * tp == k * n_pos) & tenth)
        ap = jnp.mean(jnp.max(jnp.where(reached, precision, 0.0), axis=1), axis=0)
    return jnp.where(n_pos > 0, ap, jnp.nan)


def average_precision(scores, labels, *, mode: str = "noninterp", where=None) -> jax.Array:
    """Average precision per class.

    Args:
      scores: ``(N, C)`` scores (higher means more likely positive), or ``(N,)``.
      labels: binary labels of the same shape (0/1 or bool).
      mode: ``"noninterp"`` (sklearn), ``"voc07"`` (11-point, the devkit's thresholds),
        ``"allpoint"`` (VOC 2010+) or ``"voc07_exact"`` (11-point, exact tenths).
      where: optional bool mask, ``(N, C)`` or ``(N,)``; False entries are ignored.

    Returns:
      ``(C,)`` AP per class (a scalar for 1-D input); NaN for a class with no kept positive.

    >>> import jax.numpy as jnp
    >>> from wsl_jax.metrics import average_precision
    >>> scores = jnp.array([0.9, 0.8, 0.7, 0.6])
    >>> labels = jnp.array([1, 0, 1, 0])
    >>> print(f"{average_precision(scores, labels):.4f}")  # (1/1 + 2/3) / 2
    0.8333
    >>> print(f"{average_precision(scores, labels, where=jnp.array([1, 0, 1, 1], bool)):.4f}")
    1.0000
    """
    scores, labels, where = _prepare_ap(scores, labels, where, mode)
    if scores.ndim == 1:
        return _ap_columns(scores[:, None], labels[:, None], where[:, None], mode)[0]
    return _ap_columns(scores, labels, where, mode)


def mean_average_precision(scores, labels, *, mode: str = "noninterp", where=None) -> jax.Array:
    """Mean over classes of :func:`average_precision`, skipping classes without a positive.

    NaN only if no class has a positive.

    >>> import jax.numpy as jnp
    >>> from wsl_jax.metrics import mean_average_precision
    >>> scores = jnp.array([[0.9, 0.1, 0.3], [0.2, 0.8, 0.4]])
    >>> labels = jnp.array([[1, 0, 0], [0, 0, 0]])  # classes 1 and 2 have no positive
    >>> print(f"{mean_average_precision(scores, labels):.4f}")
    1.0000
    """
    return jnp.nanmean(average_precision(scores, labels, mode=mode, where=where))


def _prepare_accuracy(logits, labels, where, num_classes):
    logits, labels = jnp.asarray(logits), jnp.asarray(labels)
    if logits.ndim != 2:
        raise ValueError(f"`logits` must have shape (N, C), got {logits.shape}.")
    if labels.shape != logits.shape[:1]:
        raise ValueError(
            f"`labels` must have shape {logits.shape[:1]} (class ids), got {labels.shape}."
        )
    if not jnp.issubdtype(labels.dtype, jnp.integer):
        raise ValueError(f"`labels` must hold integer class ids, got dtype {labels.dtype}.")
    check_class_ids(labels, num_classes)
    if where is None:
        weight = jnp.ones(labels.shape, jnp.float32)
    else:
        where = jnp.asarray(where)
        if where.shape != labels.shape:
            raise ValueError(f"`where` must have shape {labels.shape}, got {where.shape}.")
        weight = where.astype(jnp.float32)
    _check_no_nan("logits", logits, weight[:, None] > 0)
    correct = (jnp.argmax(logits, axis=-1) == labels).astype(jnp.float32)
    return labels, correct, weight


def top1_accuracy(logits, labels, *, where=None) -> jax.Array:
    """Fraction of examples whose arg-max class (lowest index on ties) is the label.

    Args:
      logits: ``(N, C)`` scores.
      labels: ``(N,)`` integer class ids in ``[0, C)``.
      where: optional ``(N,)`` bool mask of the examples that count.

    Returns:
      A scalar; NaN if no example counts.

    >>> import jax.numpy as jnp
    >>> from wsl_jax.metrics import top1_accuracy
    >>> logits = jnp.array([[2.0, 1.0], [0.0, 3.0], [1.0, 0.0]])
    >>> print(f"{top1_accuracy(logits, jnp.array([0, 1, 1])):.4f}")
    0.6667
    """
    logits = jnp.asarray(logits)
    num_classes = logits.shape[-1] if logits.ndim else 0
    _, correct, weight = _prepare_accuracy(logits, labels, where, num_classes)
    return jnp.sum(correct * weight) / jnp.sum(weight)


def per_class_mean_accuracy(logits, labels, *, num_classes: int, where=None) -> jax.Array:
    """Mean over the classes present in ``labels`` of the per-class top-1 accuracy.

    The ZSL metric (SPEC B3); equals ``sklearn.metrics.balanced_accuracy_score``.

    Args:
      logits: ``(N, C)`` scores.
      labels: ``(N,)`` integer class ids in ``[0, num_classes)``.
      num_classes: static number of classes (usually ``C``).
      where: optional ``(N,)`` bool mask of the examples that count.

    Returns:
      A scalar; NaN if no example counts.

    >>> import jax.numpy as jnp
    >>> from wsl_jax.metrics import per_class_mean_accuracy
    >>> logits = jnp.array([[2.0, 1.0], [3.0, 0.0], [1.0, 0.0]])
    >>> labels = jnp.array([0, 0, 1])  # class 0: 2/2, class 1: 0/1
    >>> print(f"{per_class_mean_accuracy(logits, labels, num_classes=2):.4f}")
    0.5000
    """
    if (
        isinstance(num_classes, bool)
        or not isinstance(num_classes, (int, np.integer))
        or num_classes <= 0
    ):
        raise ValueError(f"`num_classes` must be a positive int, got {num_classes!r}.")
    labels, correct, weight = _prepare_accuracy(logits, labels, where, int(num_classes))
    count = jax.ops.segment_sum(weight, labels, num_segments=num_classes)
    hits = jax.ops.segment_sum(correct * weight, labels, num_segments=num_classes)
    present = count > 0
    per_class = jnp.where(present, hits / jnp.maximum(count, 1), 0.0)
    return jnp.sum(per_class) / jnp.sum(present)


def classification_metrics(scores, labels, *, where=None) -> dict:
    """Per-class AP and mAP (non-interpolated) of host arrays, as plain floats; on single-label data
    also top-1 and per-class mean accuracy (what the training loop and ``evaluate.py`` report).

    ``labels`` is the ``(N, C)`` multi-hot truth; ``where`` (``(N, C)`` bool) leaves pairs out of the
    AP (VOC's difficult objects). Single-label means every row has exactly one positive (MIT67, …).

    >>> import numpy as np
    >>> scores = np.array([[2.0, 0.1], [0.3, 1.0], [0.9, 0.2]])
    >>> labels = np.array([[1, 0], [0, 1], [0, 1]], bool)
    >>> out = classification_metrics(scores, labels)
    >>> out["AP"], out["top1"], out["mean_class_accuracy"]
    ([1.0, 1.0], 0.66..., 0.75)
    """
    labels = np.asarray(labels, bool)
    ap = np.asarray(average_precision(scores, labels, where=where))
    result = {"mAP": float(np.nanmean(ap)), "AP": [float(a) for a in ap]}
    if np.all(labels.sum(axis=1) == 1):
        classes = labels.argmax(axis=1)
        result["top1"] = float(top1_accuracy(scores, classes))
        result["mean_class_accuracy"] = float(
            per_class_mean_accuracy(scores, classes, num_classes=labels.shape[1])
        )
    return result
