"""Classification objectives on pooled class scores (SPEC A4), in the style of optax.

Pure functions returning one loss per example (reduce with ``jnp.mean``); hyper-parameters are
keyword-only; ``where`` masks say which classes count. Scores are computed in at least
float32. Value checks (label ranges, ``margin >= 0``) run only on concrete inputs; under ``jit``
they are skipped. The structured AP ranking loss lives in :mod:`wsl_jax.ranking`.

Example (two images, three classes):
  >>> import jax, jax.numpy as jnp
  >>> scores = jnp.array([[2.0, -1.0, 0.5], [-0.5, 1.5, 0.0]])
  >>> labels = jnp.array([[1, 0, 1], [0, 1, 0]])
  >>> print(*(f"{v:.4f}" for v in multilabel_soft_margin(scores, labels)))
  0.3048 0.4562
  >>> print(*(f"{v:.4f}" for v in softmax_cross_entropy(scores, jnp.array([0, 1]))))
  0.2413 0.3064
  >>> print(jax.grad(lambda s: multiclass_hinge(s, jnp.array([2, 1])).sum())(scores))
  [[ 1.  0. -1.]
   [ 0.  0.  0.]]
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax

from wsl_jax._arrays import at_least_float32 as _float
from wsl_jax._arrays import check_class_ids
from wsl_jax._arrays import is_concrete as _concrete

__all__ = [
    "multiclass_hinge",
    "multilabel_hinge",
    "multilabel_soft_margin",
    "softmax_cross_entropy",
]


def _check_margin(margin):
    if _concrete(margin) and not np.all(np.asarray(margin) >= 0):
        raise ValueError(f"`margin` must be >= 0, got {margin!r}.")


def _class_ids(scores, labels):
    """Validates integer ``labels`` of shape ``scores.shape[:-1]`` in ``[0, C)``."""
    scores, labels = _float(scores), jnp.asarray(labels)
    if scores.ndim < 1:
        raise ValueError(f"`scores` must have a class axis (..., C), got {scores.shape}.")
    if labels.shape != scores.shape[:-1]:
        raise ValueError(
            f"`labels` must have shape {scores.shape[:-1]} (class ids for "
            f"`scores` {scores.shape}), got {labels.shape}."
        )
    if not jnp.issubdtype(labels.dtype, jnp.integer):
        raise ValueError(f"`labels` must hold integer class ids, got dtype {labels.dtype}.")
    num_classes = scores.shape[-1]
    check_class_ids(labels, num_classes)
    return scores, labels


def _multilabel(scores, labels, where, allowed):
    """Validates ``(…, C)`` binary (or soft, ``allowed="unit"``) labels and the class mask."""
    scores, labels = _float(scores), jnp.asarray(labels)
    if labels.shape != scores.shape:
        raise ValueError(
            f"`labels` must have the shape of `scores` {scores.shape}, got {labels.shape}."
        )
    if _concrete(labels):
        values = np.asarray(labels, dtype=np.float64)
        ok = np.isin(values, (0, 1)) if allowed == "binary" else (values >= 0) & (values <= 1)
        if not ok.all():
            what = "binary (0/1)" if allowed == "binary" else "in [0, 1]"
            raise ValueError(f"`labels` must be {what}, got values {np.unique(values)[:10]}.")
    if where is not None:
        where = jnp.asarray(where)
        try:
            where = jnp.broadcast_to(where, scores.shape).astype(bool)
        except ValueError:
            raise ValueError(
                f"`where` must broadcast to `scores` {scores.shape}, got {where.shape}."
            ) from None
    return scores, labels.astype(scores.dtype), where


def _mean_over_classes(values, where):
    if where is None:
        return jnp.mean(values, axis=-1)
    total = jnp.sum(jnp.where(where, values, 0.0), axis=-1)
    return total / jnp.maximum(jnp.sum(where, axis=-1), 1)


def softmax_cross_entropy(scores, labels) -> jax.Array:
    """Softmax cross-entropy with integer class ids, one value per example.

    Args:
      scores: ``(..., C)`` class scores (e.g. pooled WELDON/WILDCAT scores).
      labels: ``(...)`` integer class ids in ``[0, C)``.

    >>> import jax.numpy as jnp
    >>> from wsl_jax.losses import softmax_cross_entropy
    >>> scores = jnp.array([[0.0, 0.0], [2.0, 0.0]])
    >>> softmax_cross_entropy(scores, jnp.array([0, 0]))  # [log 2, log(1 + e^-2)]
    Array([0.6931..., 0.1269...], dtype=float32)
    """
    scores, labels = _class_ids(scores, labels)
    return optax.softmax_cross_entropy_with_integer_labels(scores, labels)


def multiclass_hinge(scores, labels, *, margin: float = 1.0) -> jax.Array:
    """Structured hinge of the latent-SSVM view: ``max_y [Δ(y*, y) + s_y] − s_{y*}``.

    ``Δ(y*, y) = margin·[y ≠ y*]``; the loss is zero once the true class beats every other
    class by ``margin``. Piecewise linear: its gradient is a subgradient.

    Args:
      scores: ``(..., C)`` class scores.
      labels: ``(...)`` integer class ids ``y*`` in ``[0, C)``.
      margin: ``Δ`` for a wrong class, ``>= 0``.

    >>> import jax.numpy as jnp
    >>> from wsl_jax.losses import multiclass_hinge
    >>> scores = jnp.array([[3.0, 1.0, 0.0], [0.5, 1.0, 0.0]])
    >>> multiclass_hinge(scores, jnp.array([0, 0]))
    Array([0. , 1.5], dtype=float32)
    """
    _check_margin(margin)
    scores, labels = _class_ids(scores, labels)
    true = jnp.take_along_axis(scores, labels[..., None], axis=-1)[..., 0]
    wrong = jnp.arange(scores.shape[-1]) != labels[..., None]
    augmented = scores + jnp.where(wrong, jnp.asarray(margin, scores.dtype), 0.0)
    return jnp.max(augmented, axis=-1) - true


def multilabel_soft_margin(scores, labels, *, where=None) -> jax.Array:
    """Mean over classes of the logistic loss (torch's ``MultiLabelSoftMarginLoss``, per example).

    ``−mean_c [y_c log σ(s_c) + (1 − y_c) log σ(−s_c)]``; the WILDCAT training loss.

    Args:
      scores: ``(..., C)`` class scores (logits).
      labels: same shape, in ``{0, 1}`` (soft targets in ``[0, 1]`` are accepted).
      where: optional bool mask broadcastable to ``scores``: the classes that count. The mean
        runs over those; an example with none gets 0.

    >>> import jax.numpy as jnp
    >>> from wsl_jax.losses import multilabel_soft_margin
    >>> scores = jnp.array([[0.0, 2.0]])
    >>> multilabel_soft_margin(scores, jnp.array([[1, 0]]))  # (log 2 + log(1 + e^2)) / 2
    Array([1.41...], dtype=float32)
    """
    scores, labels, where = _multilabel(scores, labels, where, allowed="unit")
    return _mean_over_classes(optax.sigmoid_binary_cross_entropy(scores, labels), where)


def multilabel_hinge(scores, labels, *, margin: float = 1.0, where=None) -> jax.Array:
    """Mean over classes of the binary hinge ``max(0, margin − y±·s)``, ``y± = 2y − 1``.

    Args:
      scores: ``(..., C)`` class scores.
      labels: same shape, in ``{0, 1}``.
      margin: hinge margin, ``>= 0``.
      where: optional bool mask broadcastable to ``scores``: the classes that count. The mean
        runs over those; an example with none gets 0.

    >>> import jax.numpy as jnp
    >>> from wsl_jax.losses import multilabel_hinge
    >>> scores = jnp.array([[2.0, 0.5, -3.0]])
    >>> multilabel_hinge(scores, jnp.array([[1, 1, 0]]))  # (0 + 0.5 + 0) / 3
    Array([0.1667], dtype=float32)
    """
    _check_margin(margin)
    scores, labels, where = _multilabel(scores, labels, where, allowed="binary")
    signed = 2.0 * labels - 1.0
    return _mean_over_classes(jax.nn.relu(margin - signed * scores), where)
