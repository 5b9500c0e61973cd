"""Input validation shared by the zero-shot modules (SPEC B).

Every check raises ``ValueError`` with a message naming the offending argument. Checks that
need values (NaN, overlapping splits, class ids) run only on concrete arrays: under ``jit`` the
arrays are tracers and the checks are skipped, so that the pure functions stay jittable.

>>> import jax, jax.numpy as jnp
>>> from wsl_jax.zsl.checks import check_finite
>>> x = jnp.array([1.0, jnp.nan])
>>> jax.jit(lambda x: check_finite("x", x) or x)(x)  # a tracer: skipped
Array([ 1., nan], dtype=float32)
>>> check_finite("x", x)
Traceback (most recent call last):
...
ValueError: `x` contains NaN or inf values (1 of 2 entries).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

__all__ = ["check_attributes", "check_finite", "check_splits", "is_concrete"]


def is_concrete(*xs) -> bool:
    """True when none of ``xs`` is a JAX tracer (i.e. values can be inspected).

    >>> import jax, jax.numpy as jnp
    >>> from wsl_jax.zsl.checks import is_concrete
    >>> seen = []
    >>> _ = jax.jit(lambda x: seen.append(is_concrete(x)) or x)(jnp.ones(2))
    >>> is_concrete(jnp.ones(2)), seen
    (True, [False])
    """
    return not any(isinstance(x, jax.core.Tracer) for x in xs)


def check_finite(name: str, x) -> None:
    """Raises ``ValueError`` if concrete floating ``x`` holds a NaN or an infinity.

    >>> import jax.numpy as jnp
    >>> from wsl_jax.zsl.checks import check_finite
    >>> check_finite("features", jnp.ones((2, 3)))
    >>> check_finite("features", jnp.array([1.0, jnp.nan]))
    Traceback (most recent call last):
    ...
    ValueError: `features` contains NaN or inf values (1 of 2 entries).
    """
    if x is None or not is_concrete(x):
        return
    x = jnp.asarray(x)
    if jnp.issubdtype(x.dtype, jnp.floating):
        bad = int(np.sum(~np.isfinite(np.asarray(x))))
        if bad:
            raise ValueError(f"`{name}` contains NaN or inf values ({bad} of {x.size} entries).")


def check_attributes(
    attributes,
    *,
    num_classes: int | None = None,
    attribute_dim: int | None = None,
    name: str = "attributes",
) -> None:
    """Checks a ``(C, p)`` class-attribute matrix (one row per class).

    Args:
      attributes: the matrix. The xlsa17 ``att`` array is ``(p, C)``: pass ``att.T``.
      num_classes: expected ``C`` (e.g. the number of columns of a score matrix).
      attribute_dim: expected ``p`` (e.g. the output size of the image map).
      name: argument name used in messages.

    >>> import jax.numpy as jnp
    >>> from wsl_jax.zsl.checks import check_attributes
    >>> check_attributes(jnp.ones((5, 3)), num_classes=5, attribute_dim=3)
    >>> check_attributes(jnp.ones((5, 3)), num_classes=4)
    Traceback (most recent call last):
    ...
    ValueError: `attributes` has 5 rows (classes) but 4 classes are expected; ...
    """
    shape = jnp.shape(attributes)
    if len(shape) != 2:
        raise ValueError(f"`{name}` must have shape (C, p) (one row per class), got {shape}.")
    if num_classes is not None and shape[0] != num_classes:
        raise ValueError(
            f"`{name}` has {shape[0]} rows (classes) but {num_classes} classes are expected; "
            f"attributes are (C, p) with one row per class (transpose xlsa17 `att`, which is "
            f"p x C)."
        )
    if attribute_dim is not None and shape[1] != attribute_dim:
        raise ValueError(
            f"`{name}` has {shape[1]} columns (attributes) but the model predicts "
            f"{attribute_dim}-dimensional attribute vectors."
        )
    check_finite(name, attributes)


def check_splits(seen, unseen, *, train_labels=None, num_classes: int | None = None) -> None:
    """Checks that seen and unseen class-id sets are disjoint (and training uses seen only).

    Args:
      seen: 1-D integer ids of the seen (training) classes.
      unseen: 1-D integer ids of the unseen (test-only) classes.
      train_labels: optional class ids of the training examples; none may be unseen.
      num_classes: optional total number of classes; ids must lie in ``[0, num_classes)``.

    Raises:
      ValueError: on overlap, duplicates, out-of-range ids or unseen training labels.

    >>> from wsl_jax.zsl.checks import check_splits
    >>> check_splits([0, 1, 2], [3, 4], train_labels=[0, 2, 2])
    >>> check_splits([0, 1, 2], [2, 3])
    Traceback (most recent call last):
    ...
    ValueError: Classes [2] are both seen and unseen: an unseen class must not appear in training.
    """
    seen_np, unseen_np = (np.asarray(s).reshape(-1) for s in (seen, unseen))
    for name, ids in (("seen", seen_np), ("unseen", unseen_np)):
        if ids.size and not np.issubdtype(ids.dtype, np.integer):
            raise ValueError(f"`{name}` must hold integer class ids, got dtype {ids.dtype}.")
        if len(np.unique(ids)) != ids.size:
            raise ValueError(f"`{name}` contains duplicate class ids.")
        if num_classes is not None and ids.size and (ids.min() < 0 or ids.max() >= num_classes):
            raise ValueError(f"`{name}` ids must lie in [0, {num_classes}).")
    both = np.intersect1d(seen_np, unseen_np)
    if both.size:
        raise ValueError(
            f"Classes {both.tolist()} are both seen and unseen: an unseen class "
            f"must not appear in training."
        )
    if train_labels is not None and is_concrete(train_labels):
        leaked = np.intersect1d(np.asarray(train_labels).reshape(-1), unseen_np)
        if leaked.size:
            raise ValueError(f"The training split contains unseen classes {leaked.tolist()}.")
