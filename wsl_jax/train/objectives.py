"""Training objectives chosen by name in a config: ``(scores (B, C), labels (B, C), valid (B,)) → scalar``.

Example (every objective prefers scores that rank each example's classes right; invalid rows,
the padding of the last evaluation batch, do not count):
  >>> import jax.numpy as jnp
  >>> labels, valid = jnp.eye(2), jnp.array([True, True])
  >>> right = jnp.array([[3.0, -3.0], [-3.0, 3.0]])
  >>> all(make_objective(name)(right, labels, valid) < make_objective(name)(-right, labels, valid)
  ...     for name in OBJECTIVES)
  True
  >>> hinge = make_objective("multilabel_hinge")
  >>> float(hinge(-right, labels, valid)), float(hinge(-right, labels, jnp.array([True, False])))
  (4.0, 4.0)
  >>> make_objective("l2")
  Traceback (most recent call last):
  ...
  ValueError: unknown objective 'l2'; valid names: multilabel_soft_margin, multilabel_hinge, ap_ranking, softmax_cross_entropy, multiclass_hinge.
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp

from wsl_jax import losses, ranking

OBJECTIVES = (
    "multilabel_soft_margin",
    "multilabel_hinge",
    "ap_ranking",
    "softmax_cross_entropy",
    "multiclass_hinge",
)


def make_objective(name: str) -> Callable[[jax.Array, jax.Array, jax.Array], jax.Array]:
    """The batch loss of objective ``name``, averaged over the valid examples.

    ``"ap_ranking"`` is the structured AP loss of each class over the batch, averaged over classes.
    The multi-class objectives (``"softmax_cross_entropy"``, ``"multiclass_hinge"``) read the class
    of each example as the arg-max of its one-hot ``labels`` row (single-label data: MIT67, …).

    Example:
      >>> import jax.numpy as jnp
      >>> loss = make_objective("multilabel_soft_margin")
      >>> float(loss(jnp.zeros((2, 3)), jnp.ones((2, 3)), jnp.array([True, True])))  # log 2
      0.693...
      >>> ce = make_objective("softmax_cross_entropy")
      >>> float(ce(jnp.zeros((2, 4)), jnp.eye(4)[:2], jnp.array([True, True])))  # log 4
      1.386...
    """
    if name not in OBJECTIVES:
        raise ValueError(f"unknown objective {name!r}; valid names: {', '.join(OBJECTIVES)}.")

    def per_example_mean(per_example, valid):
        weight = valid.astype(jnp.float32)
        return jnp.sum(per_example * weight) / jnp.maximum(jnp.sum(weight), 1.0)

    if name == "multilabel_soft_margin":
        return lambda s, y, v: per_example_mean(losses.multilabel_soft_margin(s, y), v)
    if name == "multilabel_hinge":
        return lambda s, y, v: per_example_mean(losses.multilabel_hinge(s, y), v)
    if name == "softmax_cross_entropy":
        return lambda s, y, v: per_example_mean(losses.softmax_cross_entropy(s, y.argmax(-1)), v)
    if name == "multiclass_hinge":
        return lambda s, y, v: per_example_mean(losses.multiclass_hinge(s, y.argmax(-1)), v)
    return lambda s, y, v: jnp.mean(ranking.ap_ranking_loss(s, y, where=v))
