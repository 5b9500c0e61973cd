"""ESZSL: "An embarrassingly simple approach to zero-shot learning" (Romera-Paredes & Torr 2015).

Paper conventions: ``X`` is ``d × N`` (features in columns), ``Y`` is ``N × z`` (one column per
training class, entries in ``{−1, 1}`` in the paper, ``{0, 1}`` also used), ``S`` is ``a × z``
(class attribute signatures in columns). With the regulariser
``γ‖VS‖² + λ‖XᵀV‖² + γλ‖V‖²`` the minimiser of ``‖XᵀVS − Y‖² + …`` has the closed form

    V = (X Xᵀ + γ I)⁻¹ X Y Sᵀ (S Sᵀ + λ I)⁻¹          (d × a)

and a test image ``x`` is assigned to ``argmax_c xᵀ V s_c`` over the candidate (unseen)
signatures ``s_c``.

This module takes the library's row-major conventions and maps them: ``features`` ``(N, d)`` is
``Xᵀ``, ``attributes`` ``(z, a)`` (one row per class; transpose xlsa17 ``att``) is ``Sᵀ``, and
``labels`` are integer class ids ``(N,)`` into the rows of ``attributes`` (turned into ``Y``) or
``Y`` itself ``(N, z)``. Both inverses are applied as symmetric positive-definite solves.
Computations run in at least float32 (float64 inputs stay float64 with ``jax_enable_x64``).

Target coding: the paper's ``{−1, 1}`` (``coding="pm1"``, the default) equals ``2·onehot − 1``,
which adds a rank-one term ``−(X 1)(S 1)ᵀ`` to ``X Y Sᵀ`` and so biases the score of class ``c``
by a multiple of ``s̄ᵀ s_c``. It works with non-negative attributes and light regularisation, but
on zero-mean synthetic attributes (or with large ``γ``, ``λ``) ``coding="01"`` is much more robust
(about 40 % vs 100 % unseen accuracy in ``tests/zsl/test_eszsl.py``'s linear problem).

Fitted on three seen classes, it recognises two unseen ones from their attributes:

>>> import jax.numpy as jnp
>>> from wsl_jax.zsl import eszsl_fit, eszsl_scores
>>> att = jnp.array([[1., 0, 0], [0, 1, 0], [0, 0, 1], [1, 1, 0], [0, 1, 1]])  # 3 seen, 2 unseen
>>> x = att @ jnp.array([[1., 2], [0, 1], [3, 0]])  # one image per class
>>> v = eszsl_fit(x[:3], jnp.array([0, 1, 2]), att[:3], gamma=0.1, lam=0.1)
>>> eszsl_scores(v, x[3:], att[3:]).argmax(-1)  # each unseen image → its own unseen class
Array([0, 1], dtype=int32)
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from jax.scipy.linalg import solve

from wsl_jax._arrays import at_least_float32 as _float
from wsl_jax.zsl.checks import check_attributes, check_finite, is_concrete

__all__ = ["eszsl_fit", "eszsl_scores", "label_matrix"]


def label_matrix(labels, num_classes: int, *, coding: str = "pm1") -> jax.Array:
    """``Y`` ``(N, z)`` from class ids: ``coding="pm1"`` gives ``{−1, 1}``, ``"01"`` one-hot.

    >>> import jax.numpy as jnp
    >>> from wsl_jax.zsl import label_matrix
    >>> label_matrix(jnp.array([1, 0]), 3)
    Array([[-1.,  1., -1.],
           [ 1., -1., -1.]], dtype=float32)
    """
    if coding not in ("pm1", "01"):
        raise ValueError(f"`coding` must be 'pm1' or '01', got {coding!r}.")
    labels = jnp.asarray(labels)
    if is_concrete(labels) and labels.size:
        lo, hi = int(np.asarray(labels).min()), int(np.asarray(labels).max())
        if lo < 0 or hi >= num_classes:
            raise ValueError(
                f"`labels` must be class ids in [0, {num_classes}) (one per row of "
                f"`attributes`), got values in [{lo}, {hi}]."
            )
    onehot = jax.nn.one_hot(labels, num_classes, dtype=jnp.float32)
    return 2.0 * onehot - 1.0 if coding == "pm1" else onehot


def eszsl_fit(
    features, labels, attributes, *, gamma: float, lam: float, coding: str = "pm1"
) -> jax.Array:
    """Closed-form ESZSL ``V = (X Xᵀ + γI)⁻¹ X Y Sᵀ (S Sᵀ + λI)⁻¹``: ``(d, a)``.

    Args:
      features: ``(N, d)`` training features (``Xᵀ``).
      labels: ``(N,)`` class ids into the rows of ``attributes``, or ``Y`` ``(N, z)``.
      attributes: ``(z, a)`` attributes of the training classes (``Sᵀ``).
      gamma: ``γ > 0``, the feature-space ridge.
      lam: ``λ > 0``, the attribute-space ridge.
      coding: ``Y`` coding for integer labels, ``"pm1"`` (paper) or ``"01"``.

    >>> import jax.numpy as jnp
    >>> from wsl_jax.zsl import eszsl_fit, eszsl_scores
    >>> x = jnp.array([[1., 0.], [0., 1.]])
    >>> att = jnp.array([[1., 0.], [0., 1.]])
    >>> v = eszsl_fit(x, jnp.array([0, 1]), att, gamma=1.0, lam=1.0)
    >>> v.round(4)  # X = S = I, Y = [[1, -1], [-1, 1]]: V = Y / 4
    Array([[ 0.25, -0.25],
           [-0.25,  0.25]], dtype=float32)
    >>> eszsl_scores(v, x, att).argmax(-1)
    Array([0, 1], dtype=int32)
    """
    features, attributes = _float(features), _float(attributes)
    if features.ndim != 2:
        raise ValueError(f"`features` must be (N, d), got shape {features.shape}.")
    if not (gamma > 0 and lam > 0):
        raise ValueError(f"`gamma` and `lam` must be positive, got {gamma} and {lam}.")
    check_finite("features", features)
    labels = jnp.asarray(labels)
    if labels.ndim == 1:
        check_attributes(attributes)
        y = label_matrix(labels, attributes.shape[0], coding=coding).astype(features.dtype)
    elif labels.ndim == 2:
        y = labels.astype(features.dtype)
        check_attributes(attributes, num_classes=y.shape[1])
    else:
        raise ValueError(
            f"`labels` must be (N,) class ids or an (N, z) matrix, got shape {labels.shape}."
        )
    if y.shape[0] != features.shape[0]:
        raise ValueError(f"`labels` has {y.shape[0]} rows but `features` has {features.shape[0]}.")
    d, a = features.shape[1], attributes.shape[1]
    hi = jax.lax.Precision.HIGHEST
    xxt = jnp.matmul(features.T, features, precision=hi) + gamma * jnp.eye(d, dtype=y.dtype)
    sst = jnp.matmul(attributes.T, attributes, precision=hi) + lam * jnp.eye(a, dtype=y.dtype)
    attributes = attributes.astype(y.dtype)
    features = features.astype(y.dtype)
    xyst = jnp.matmul(jnp.matmul(features.T, y, precision=hi), attributes, precision=hi)
    left = solve(xxt, xyst, assume_a="pos")  # (XXᵀ + γI)⁻¹ X Y Sᵀ
    return solve(sst, left.T, assume_a="pos").T  # … (SSᵀ + λI)⁻¹, SSᵀ + λI symmetric


def eszsl_scores(V, features, attributes) -> jax.Array:
    """Compatibility scores ``xᵀ V s_c``: ``(N, C)`` for ``features`` ``(N, d)``, ``attributes``
    ``(C, a)`` (typically the unseen classes, or all classes for GZSL).

    >>> import jax.numpy as jnp
    >>> from wsl_jax.zsl import eszsl_scores
    >>> eszsl_scores(jnp.eye(2), jnp.array([[1., 2.]]), jnp.array([[1., 0.], [0., 1.], [1., 1.]]))
    Array([[1., 2., 3.]], dtype=float32)
    """
    V, features, attributes = (jnp.asarray(t) for t in (V, features, attributes))
    if V.ndim != 2 or features.ndim != 2 or features.shape[1] != V.shape[0]:
        raise ValueError(
            f"`features` (N, d) must match `V` (d, a); got {features.shape} and {V.shape}."
        )
    check_attributes(attributes, attribute_dim=V.shape[1])
    check_finite("features", features)
    return features @ V @ attributes.T
