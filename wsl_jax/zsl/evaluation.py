"""Zero-shot (ZSL) and generalised zero-shot (GZSL) evaluation (SPEC B3).

Score matrices are ``(N, C)`` with one column per class id of the whole data set (seen and
unseen); the candidate classes are given as id arrays. Accuracies are per-class mean top-1
(the mean over the classes present in ``labels`` of their recall), ties going to the candidate
listed first. GZSL follows Xian et al. (GBU): ``s`` is the accuracy on test-seen images and
``u`` on test-unseen images, both predicted over *all* seen + unseen classes, and
``H = 2us / (u + s)`` (0 when ``u + s = 0``). Calibrated stacking (Chao et al. 2016) subtracts
``calibration`` from the seen-class scores before the arg-max; sweeping it over all its values
traces the seen-unseen accuracy curve, whose area is the AUSUC (Chao et al. 2016,
:func:`ausuc`).

>>> import jax.numpy as jnp
>>> from wsl_jax.zsl import gzsl_metrics, zsl_accuracy
>>> s_seen = jnp.array([[2., 0., 1.], [0., 2., 1.]])  # seen classes 0, 1; unseen 2
>>> s_unseen = jnp.array([[2., 0., 1.], [0., 0., 1.]])
>>> float(zsl_accuracy(s_unseen, jnp.array([2, 2]), classes=[2]))  # among unseen classes only
1.0
>>> m = gzsl_metrics(s_seen, jnp.array([0, 1]), s_unseen, jnp.array([2, 2]),
...                  seen_classes=[0, 1], unseen_classes=[2])
>>> float(m["u"]), float(m["s"])  # over all classes: one unseen image goes to seen class 0
(0.5, 1.0)
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

from wsl_jax.zsl.checks import check_finite, check_splits, is_concrete

__all__ = ["ausuc", "choose_calibration", "gzsl_metrics", "seen_unseen_curve", "zsl_accuracy"]


def _ids(name, classes, num_classes):
    classes = np.asarray(classes).reshape(-1)
    if classes.size == 0 or not np.issubdtype(classes.dtype, np.integer):
        raise ValueError(f"`{name}` must be a non-empty 1-D array of integer class ids.")
    if classes.min() < 0 or classes.max() >= num_classes:
        raise ValueError(
            f"`{name}` ids must index the {num_classes} score columns, got values "
            f"in [{classes.min()}, {classes.max()}]."
        )
    if len(np.unique(classes)) != classes.size:
        raise ValueError(f"`{name}` contains duplicate class ids.")
    return classes


def zsl_accuracy(scores, labels, *, classes) -> jax.Array:
    """Per-class mean top-1 accuracy with predictions restricted to ``classes``.

    Args:
      scores: ``(N, C)`` scores, column ``c`` for class id ``c``.
      labels: ``(N,)`` true class ids, each in ``classes``.
      classes: 1-D candidate class ids (e.g. the unseen classes for ZSL); concrete.

    Returns:
      A scalar in ``[0, 1]``.

    >>> import jax.numpy as jnp
    >>> from wsl_jax.zsl import zsl_accuracy
    >>> scores = jnp.array([[9., 1., 0.], [9., 0., 1.], [9., 1., 0.]])  # class 0 is not a candidate
    >>> float(zsl_accuracy(scores, jnp.array([1, 2, 2]), classes=[1, 2]))  # (1/1 + 1/2) / 2
    0.75
    """
    scores, labels = jnp.asarray(scores), jnp.asarray(labels)
    if scores.ndim != 2:
        raise ValueError(f"`scores` must be (N, C), got shape {scores.shape}.")
    if labels.shape != scores.shape[:1]:
        raise ValueError(
            f"`labels` must have shape (N,) = {scores.shape[:1]} to match `scores` {scores.shape}, "
            f"got {labels.shape}."
        )
    classes = _ids("classes", classes, scores.shape[1])
    check_finite("scores", scores)
    if is_concrete(labels) and labels.size:
        outside = np.setdiff1d(np.asarray(labels), classes)
        if outside.size:
            raise ValueError(
                f"`labels` contain classes {outside.tolist()} that are not among the "
                f"candidate `classes`."
            )
    return _mean_class_recall(scores, labels, tuple(int(c) for c in classes))


@functools.partial(jax.jit, static_argnums=2)
def _mean_class_recall(scores, labels, classes: tuple) -> jax.Array:
    """Jitted core of :func:`zsl_accuracy` (one compilation per shape and class set)."""
    # Per-class counts by one-hot comparisons, not segment_sum / gathers, so that scores and
    # labels may be sharded over the batch on an explicit-axes mesh.
    is_class = labels[:, None] == jnp.asarray(classes)[None, :]  # (N, K)
    predicted = jnp.argmax(scores[:, np.asarray(classes)], axis=-1)
    correct = is_class & (predicted[:, None] == jnp.arange(len(classes))[None, :])
    count = jnp.sum(is_class, axis=0)
    hits = jnp.sum(correct, axis=0)
    present = count > 0
    per_class = jnp.where(present, hits / jnp.maximum(count, 1), 0.0)
    return jnp.sum(per_class) / jnp.sum(present)


def gzsl_metrics(
    scores_seen_split,
    labels_seen,
    scores_unseen_split,
    labels_unseen,
    *,
    seen_classes,
    unseen_classes,
    calibration=0.0,
) -> dict:
    """GZSL accuracies ``s`` (test-seen), ``u`` (test-unseen) and harmonic mean ``H``.

    Args:
      scores_seen_split: ``(Ns, C)`` scores of the test-seen images.
      labels_seen: ``(Ns,)`` their labels (seen classes).
      scores_unseen_split: ``(Nu, C)`` scores of the test-unseen images.
      labels_unseen: ``(Nu,)`` their labels (unseen classes).
      seen_classes, unseen_classes: disjoint 1-D class ids (concrete).
      calibration: ``γ`` subtracted from the seen-class scores (calibrated stacking); may be
        traced (e.g. under ``vmap`` over a grid).

    Returns:
      ``{"u": ..., "s": ..., "H": ...}`` scalars.

    >>> import jax.numpy as jnp
    >>> from wsl_jax.zsl import gzsl_metrics
    >>> s_seen = jnp.array([[2., 0., 1.], [0., 2., 1.]])    # seen classes 0, 1; unseen 2
    >>> s_unseen = jnp.array([[2., 0., 1.], [0., 0., 1.]])
    >>> m = gzsl_metrics(s_seen, jnp.array([0, 1]), s_unseen, jnp.array([2, 2]),
    ...                  seen_classes=[0, 1], unseen_classes=[2])
    >>> {k: round(float(v), 4) for k, v in m.items()}
    {'u': 0.5, 's': 1.0, 'H': 0.6667}
    >>> m = gzsl_metrics(s_seen, jnp.array([0, 1]), s_unseen, jnp.array([2, 2]),
    ...                  seen_classes=[0, 1], unseen_classes=[2], calibration=1.5)
    >>> {k: round(float(v), 4) for k, v in m.items()}
    {'u': 1.0, 's': 0.0, 'H': 0.0}
    """
    seen, unseen = _check_gzsl_inputs(
        scores_seen_split,
        labels_seen,
        scores_unseen_split,
        labels_unseen,
        seen_classes,
        unseen_classes,
    )
    out = _gzsl(
        jnp.asarray(scores_seen_split),
        jnp.asarray(labels_seen),
        jnp.asarray(scores_unseen_split),
        jnp.asarray(labels_unseen),
        jnp.asarray(calibration, jnp.float32),
        tuple(int(c) for c in seen),
        tuple(int(c) for c in unseen),
    )
    return {key: out[key] for key in ("u", "s", "H")}  # jit returns dicts with sorted keys.


def _check_gzsl_inputs(
    scores_seen_split, labels_seen, scores_unseen_split, labels_unseen, seen_classes, unseen_classes
):
    """The argument checks of :func:`gzsl_metrics` (shapes, class ids, labels in their class sets);
    returns the seen and unseen class ids."""
    num_classes = jnp.shape(scores_seen_split)[-1]
    if jnp.shape(scores_unseen_split)[-1] != num_classes:
        raise ValueError("Both score matrices must have the same number of class columns.")
    seen = _ids("seen_classes", seen_classes, num_classes)
    unseen = _ids("unseen_classes", unseen_classes, num_classes)
    check_splits(seen, unseen)
    for name, lab, allowed, split, scores in (
        ("labels_seen", labels_seen, seen, "seen_classes", scores_seen_split),
        ("labels_unseen", labels_unseen, unseen, "unseen_classes", scores_unseen_split),
    ):
        if jnp.shape(lab) != jnp.shape(scores)[:1]:
            raise ValueError(
                f"`{name}` must have shape {jnp.shape(scores)[:1]} (one label per row of its "
                f"scores), got {jnp.shape(lab)}."
            )
        if is_concrete(lab) and np.size(lab):
            outside = np.setdiff1d(np.asarray(lab), allowed)
            if outside.size:
                raise ValueError(f"`{name}` contain classes {outside.tolist()} outside `{split}`.")
    return seen, unseen


@functools.partial(jax.jit, static_argnums=(5, 6))
def _gzsl(scores_seen, labels_seen, scores_unseen, labels_unseen, calibration, seen, unseen):
    """Jitted core of :func:`gzsl_metrics`."""
    candidates = (*seen, *unseen)
    offset = jnp.zeros((scores_seen.shape[-1],), jnp.float32).at[np.asarray(seen)].set(calibration)
    s = _mean_class_recall(scores_seen - offset, labels_seen, candidates)
    u = _mean_class_recall(scores_unseen - offset, labels_unseen, candidates)
    h = jnp.where(u + s > 0, 2 * u * s / jnp.where(u + s > 0, u + s, 1.0), 0.0)
    return {"u": u, "s": s, "H": h}


def choose_calibration(
    scores_seen_split,
    labels_seen,
    scores_unseen_split,
    labels_unseen,
    *,
    seen_classes,
    unseen_classes,
    grid=None,
):
    """The calibration ``γ`` of a grid maximising ``H`` on validation data (first on ties).

    Args:
      scores_seen_split, labels_seen, scores_unseen_split, labels_unseen: validation data, as in
        :func:`gzsl_metrics`.
      seen_classes, unseen_classes: disjoint class ids.
      grid: 1-D candidate values of ``γ``; default 201 values evenly spaced in
        ``[−R, R]`` with ``R`` the range (max − min) of all the given scores.

    Returns:
      ``(gamma, metrics)``: a Python float and the :func:`gzsl_metrics` dict at ``gamma``.

    >>> import jax.numpy as jnp
    >>> from wsl_jax.zsl import choose_calibration
    >>> s_seen = jnp.array([[2., 0., 1.], [0., 2., 1.]])
    >>> s_unseen = jnp.array([[1.2, 0., 1.], [0., 0., 1.]])
    >>> gamma, m = choose_calibration(s_seen, jnp.array([0, 1]), s_unseen, jnp.array([2, 2]),
    ...                               seen_classes=[0, 1], unseen_classes=[2],
    ...                               grid=jnp.array([0.0, 0.5, 1.5]))
    >>> gamma, round(float(m["H"]), 4)  # H = 0.6667 without calibration
    (0.5, 1.0)
    """
    if grid is None:
        lo = min(float(jnp.min(scores_seen_split)), float(jnp.min(scores_unseen_split)))
        hi = max(float(jnp.max(scores_seen_split)), float(jnp.max(scores_unseen_split)))
        grid = jnp.linspace(-(hi - lo), hi - lo, 201)
    grid = jnp.asarray(grid, jnp.float32).reshape(-1)
    if grid.size == 0:
        raise ValueError("`grid` must hold at least one calibration value.")
    # Validate once on concrete values, then sweep the grid.
    _check_gzsl_inputs(
        scores_seen_split,
        labels_seen,
        scores_unseen_split,
        labels_unseen,
        seen_classes,
        unseen_classes,
    )
    sweep = jax.vmap(
        lambda g: gzsl_metrics(
            scores_seen_split,
            labels_seen,
            scores_unseen_split,
            labels_unseen,
            seen_classes=seen_classes,
            unseen_classes=unseen_classes,
            calibration=g,
        )["H"]
    )
    best = int(jnp.argmax(sweep(grid)))
    gamma = float(grid[best])
    return gamma, gzsl_metrics(
        scores_seen_split,
        labels_seen,
        scores_unseen_split,
        labels_unseen,
        seen_classes=seen_classes,
        unseen_classes=unseen_classes,
        calibration=gamma,
    )


def seen_unseen_curve(
    scores_seen_split,
    labels_seen,
    scores_unseen_split,
    labels_unseen,
    *,
    seen_classes,
    unseen_classes,
) -> dict:
    """The seen-unseen accuracy curve of calibrated stacking (Chao et al. 2016), exactly.

    With ``γ`` subtracted from the seen-class scores, an image is predicted among the seen
    classes iff its margin ``m = max_seen − max_unseen ≥ γ`` (ties go to the seen classes, as
    in :func:`gzsl_metrics`), and then as its seen arg-max, else as its unseen arg-max. So ``s(γ)``
    and ``u(γ)`` (per-class mean accuracies over all classes) only change at the margins of the
    images: the curve is evaluated at every margin (``u(γ)``, ``s(γ)`` for ``γ`` equal to it) and
    at ``γ = +∞``; the first point (``γ`` at the smallest margin) is ``(0, s_max)`` and the last
    ``(u_max, 0)``, with ``s_max`` / ``u_max`` the seen / unseen accuracies among the seen /
    unseen classes only.

    Args: as :func:`gzsl_metrics` (without ``calibration``).

    Returns:
      ``{"gamma": (K + 1,), "u": (K + 1,), "s": (K + 1,)}`` NumPy arrays, ``γ`` increasing (the
      last one ``inf``), ``u`` non-decreasing and ``s`` non-increasing; ``K = Ns + Nu``.

    >>> import numpy as np
    >>> from wsl_jax.zsl import seen_unseen_curve
    >>> c = seen_unseen_curve(np.array([[2., 1.]]), np.array([0]), np.array([[0., 1.]]),
    ...                       np.array([1]), seen_classes=[0], unseen_classes=[1])
    >>> c["gamma"].tolist(), c["u"].tolist(), c["s"].tolist()  # margins: 1 (seen), -1 (unseen)
    ([-1.0, 1.0, inf], [0.0, 1.0, 1.0], [1.0, 1.0, 0.0])
    """
    x_s, x_u = np.asarray(scores_seen_split), np.asarray(scores_unseen_split)
    y_s, y_u = np.asarray(labels_seen).reshape(-1), np.asarray(labels_unseen).reshape(-1)
    _check_gzsl_inputs(x_s, y_s, x_u, y_u, seen_classes, unseen_classes)  # as gzsl_metrics
    if not (y_s.size and y_u.size):
        raise ValueError("Both the seen and the unseen split need at least one image.")
    if x_s.shape[0] != y_s.size or x_u.shape[0] != y_u.size:
        raise ValueError("Each score matrix needs one row per label.")
    check_finite("scores_seen_split", x_s)
    check_finite("scores_unseen_split", x_u)
    seen = np.asarray(seen_classes).reshape(-1)
    unseen = np.asarray(unseen_classes).reshape(-1)

    def margins_and_weights(x, y, own):
        # Margin of each image, and its weight in the per-class mean when its own-side arg-max
        # is right (0 otherwise).
        margin = x[:, seen].max(axis=1) - x[:, unseen].max(axis=1)
        right = own[np.argmax(x[:, own], axis=1)] == y
        present, inverse, counts = np.unique(y, return_inverse=True, return_counts=True)
        weight = right / (counts[inverse] * len(present))
        return margin.astype(np.float64), weight.astype(np.float64)

    m_s, w_s = margins_and_weights(x_s, y_s, seen)
    m_u, w_u = margins_and_weights(x_u, y_u, unseen)
    gamma = np.concatenate([np.sort(np.concatenate([m_s, m_u])), [np.inf]])
    order_s, order_u = np.argsort(m_s), np.argsort(m_u)
    # s(γ) = Σ w_i [m_i ≥ γ] (seen images), u(γ) = Σ w_j [m_j < γ] (unseen images).
    suffix_s = np.concatenate([np.cumsum(w_s[order_s][::-1])[::-1], [0.0]])
    prefix_u = np.concatenate([[0.0], np.cumsum(w_u[order_u])])
    s = suffix_s[np.searchsorted(m_s[order_s], gamma, side="left")]
    u = prefix_u[np.searchsorted(m_u[order_u], gamma, side="left")]
    return {"gamma": gamma, "u": u, "s": s}


def ausuc(
    scores_seen_split,
    labels_seen,
    scores_unseen_split,
    labels_unseen,
    *,
    seen_classes,
    unseen_classes,
) -> float:
    """Area under the seen-unseen accuracy curve (AUSUC, Chao et al. ECCV 2016).

    The curve of :func:`seen_unseen_curve` (``s`` against ``u`` as the calibration ``γ`` sweeps
    all its values, exactly, not on a grid), integrated by the trapezoid rule over ``u``. In
    ``[0, s_max · u_max]``; 1 for a model that separates seen from unseen images perfectly and
    classifies both right. Args as :func:`gzsl_metrics` (without ``calibration``).

    >>> import numpy as np
    >>> from wsl_jax.zsl import ausuc
    >>> s_seen = np.array([[2., 0., 1.], [0., 2., 1.]])    # seen classes 0, 1; unseen 2
    >>> s_unseen = np.array([[2., 0., 1.], [0., 0., 1.]])
    >>> ausuc(s_seen, np.array([0, 1]), s_unseen, np.array([2, 2]), seen_classes=[0, 1],
    ...       unseen_classes=[2])  # curve (0, 1) → (0.5, 1) → (1, 0)
    0.75
    """
    c = seen_unseen_curve(
        scores_seen_split,
        labels_seen,
        scores_unseen_split,
        labels_unseen,
        seen_classes=seen_classes,
        unseen_classes=unseen_classes,
    )
    u, s = c["u"], c["s"]
    return float(np.sum(np.diff(u) * (s[1:] + s[:-1]) / 2))
