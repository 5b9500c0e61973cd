"""Region pooling: max+min (WELDON/WILDCAT) pooling, its k rules, class-wise mean and LSE pooling.

All functions are pure and work under ``jit``, ``vmap`` and ``grad``. See SPEC §A1–A2.

Two conventions are offered by :func:`max_min_pool`:

* ``"paper"`` (default): ``s = mean(top k⁺) + λ · mean(bottom k⁻)``. A float ``k`` is a fraction in
  ``(0, 1]`` of the ``n`` regions, resolved to ``max(1, floor(k·n + ½))`` (round half up); an int is a
  count; counts above ``n`` are clamped to ``n``.
* ``"wildcat"``: the official ``wildcat.pytorch`` outputs, ``s = ½ · (mean(top k⁺) + λ · mean(bottom k⁻))``
  when ``k⁻ > 0`` and ``s = mean(top k⁺)`` when ``k⁻ = 0``; a float ``k < 1`` resolves to Python's
  ``round(k·n)`` (round half to even, no minimum of one), any other ``k`` to ``int(k)``, clamped to ``n``.
  A ``k⁺`` that resolves to zero regions is an error here (the official code returns NaN).

With a ``where=`` mask, a float fraction is resolved per row against that row's number of valid regions
(see :func:`max_min_pool`); an int count is clamped to it.

Ties are broken deterministically: among equal scores the lowest region index is selected first, for
the top and for the bottom set alike (``-0.0`` and ``+0.0`` count as equal). The gradient is the exact
subgradient of the selection: ``1/k⁺`` on each selected top region plus ``λ/k⁻`` on each selected bottom
region, both where the sets overlap.

Example (one image, one class, six regions):
  >>> import jax, jax.numpy as jnp
  >>> maps = jnp.array([[[3.0], [-1.0], [2.0], [0.0], [-2.0], [1.0]]])  # (B=1, n=6, C=1)
  >>> print(max_min_pool(maps, k_max=2, k_min=2, lam=0.5, axis=1))  # (3 + 2)/2 + 0.5·(-2 - 1)/2
  [[1.75]]
  >>> print(max_min_pool(maps, k_max=2, k_min=2, lam=0.5, axis=1, convention="wildcat"))  # half
  [[0.875]]
  >>> pool = lambda m: max_min_pool(m, k_max=2, k_min=2, lam=0.5, axis=1).sum()
  >>> print(jax.grad(pool)(maps)[0, :, 0])
  [0.5  0.25 0.5  0.   0.25 0.  ]
  >>> resolve_k(0.2, 64)  # a float k is a fraction of the regions
  13
"""

from __future__ import annotations

import functools
import numbers
from collections.abc import Sequence
from typing import Union

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from wsl_jax import selection

Axis = Union[int, Sequence[int]]

CONVENTIONS = ("paper", "wildcat")

__all__ = ["CONVENTIONS", "class_wise_mean", "lse_pool", "max_min_pool", "resolve_k"]


# --------------------------------------------------------------------------------------------------
# Static argument checking
# --------------------------------------------------------------------------------------------------
def _check_convention(convention: str) -> None:
    if convention not in CONVENTIONS:
        raise ValueError(f"convention must be one of {CONVENTIONS}, got {convention!r}.")


def resolve_k(
    k, n: int, *, convention: str = "paper", name: str = "k", allow_zero: bool = False
) -> int:
    """Resolves a region count ``k`` (an int count or a float fraction) for ``n`` regions.

    Args:
      k: an ``int`` count (clamped to ``n``) or, in the paper convention, a ``float`` fraction in
        ``(0, 1]`` resolved to ``max(1, floor(k·n + 0.5))``. See the module docstring for the
        ``"wildcat"`` rule.
      n: the number of regions, ``n ≥ 1``.
      convention: ``"paper"`` or ``"wildcat"``.
      name: the argument name used in error messages.
      allow_zero: whether ``k = 0`` (no region, e.g. no negative evidence) is allowed.

    Returns:
      The resolved count, a Python ``int`` in ``[0, n]`` (``[1, n]`` unless ``allow_zero``).

    Example:
      >>> resolve_k(0.2, 196), resolve_k(3, 196), resolve_k(500, 196), resolve_k(0.001, 196)
      (39, 3, 196, 1)
      >>> resolve_k(0.2, 196, convention="wildcat"), resolve_k(2.0, 196, convention="wildcat")
      (39, 2)
    """
    _check_convention(convention)
    if isinstance(n, bool) or not isinstance(n, numbers.Integral):
        raise TypeError(f"n must be an int number of regions, got {n!r}.")
    n = int(n)
    if n < 1:
        raise ValueError(f"the region axis is empty (n = {n}); cannot pool over zero regions.")
    if isinstance(k, bool) or not isinstance(k, numbers.Real):
        raise TypeError(f"{name} must be an int count or a float fraction in (0, 1], got {k!r}.")
    if isinstance(k, float) or isinstance(k, np.floating):
        if not np.isfinite(k):
            raise ValueError(f"{name} must be finite, got {k!r}.")
    lowest = 0 if allow_zero else 1

    if convention == "wildcat":
        if k < 0:
            raise ValueError(f"{name} must be >= {lowest}, got {k!r}.")
        if k == 0:
            count = 0
        elif k < 1:
            count = int(round(float(k) * n))  # Python's round: half to even, as wildcat.pytorch.
        else:
            count = min(int(k), n)
        if count < lowest:
            raise ValueError(
                f"{name}={k!r} resolves to 0 of {n} regions under the wildcat rule round({name}·n); "
                f"use a larger fraction (the official code would return NaN here)."
            )
        return count

    if isinstance(k, numbers.Integral):
        k = int(k)
        if k < lowest:
            raise ValueError(f"{name} must be an int >= {lowest} or a float in (0, 1], got {k!r}.")
        return min(k, n)
    k = float(k)
    if k == 0.0 and allow_zero:
        return 0
    if not 0.0 < k <= 1.0:
        raise ValueError(
            f"{name} given as a float is a fraction of the regions and must lie in (0, 1], got {k!r}; "
            f"pass an int for a count."
        )
    return min(n, max(1, int(np.floor(k * n + 0.5))))


def _normalize_axes(axis: Axis, ndim: int) -> tuple[int, ...]:
    axes = (axis,) if isinstance(axis, numbers.Integral) and not isinstance(axis, bool) else axis
    try:
        axes = tuple(axes)
    except TypeError:
        raise TypeError(f"axis must be an int or a tuple of ints, got {axis!r}.") from None
    if not axes:
        raise ValueError("axis must name at least one axis, got an empty tuple.")
    out = []
    for a in axes:
        if isinstance(a, bool) or not isinstance(a, numbers.Integral):
            raise TypeError(f"axis must be an int or a tuple of ints, got {axis!r}.")
        if not -ndim <= a < ndim:
            raise ValueError(f"axis {a} is out of range for scores with {ndim} dimensions.")
        out.append(int(a) % ndim)
    if len(set(out)) != len(out):
        raise ValueError(f"axis contains a repeated axis: {axis!r}.")
    return tuple(sorted(out))


def _check_lam(lam) -> None:
    try:
        value = float(lam)  # Concrete values only; a traced λ is taken as it is.
    except (TypeError, jax.errors.ConcretizationTypeError):
        return
    if not np.isfinite(value) or value < 0:
        raise ValueError(f"lam must be a finite number >= 0, got {lam!r}.")


def _as_float_scores(scores) -> jax.Array:
    try:
        x = jnp.asarray(scores)
    except TypeError as error:
        raise TypeError(f"scores must be a real-valued array: {error}") from None
    if not (jnp.issubdtype(x.dtype, jnp.floating) or jnp.issubdtype(x.dtype, jnp.integer)):
        raise TypeError(f"scores must be a real-valued array, got dtype {x.dtype}.")
    if not jnp.issubdtype(x.dtype, jnp.floating):
        x = x.astype(jnp.float32)
    return x


def _broadcast_where(where, shape) -> jax.Array:
    """Checks that ``where`` is a boolean mask broadcastable to ``shape`` and broadcasts it."""
    where = jnp.asarray(where)
    if where.dtype != jnp.bool_:
        raise TypeError(f"where must be a boolean mask, got dtype {where.dtype}.")
    try:
        return jnp.broadcast_to(where, shape)
    except ValueError:
        raise ValueError(
            f"where has shape {where.shape}, which does not broadcast to the scores' shape {shape}."
        ) from None


def _to_rows(x: jax.Array, axes: tuple[int, ...]) -> tuple[jax.Array, tuple[int, ...]]:
    """Views ``x`` as ``(pre, n, post)`` with the pooled axes merged into the middle axis.

    Returns the view and the output shape (``x.shape`` without the pooled axes). Contiguous pooled
    axes need no transpose, so NHWC maps pooled over ``(1, 2)`` keep channels minor, which lets XLA
    vectorise the per-region reductions across channels.
    """
    out_shape = tuple(s for i, s in enumerate(x.shape) if i not in axes)
    if axes != tuple(range(axes[0], axes[0] + len(axes))):
        x = jnp.moveaxis(x, axes, tuple(range(x.ndim - len(axes), x.ndim)))
        axes = tuple(range(x.ndim - len(axes), x.ndim))
    pre = int(np.prod(x.shape[: axes[0]], dtype=np.int64))
    n = int(np.prod([x.shape[a] for a in axes], dtype=np.int64))
    post = int(np.prod(x.shape[axes[-1] + 1 :], dtype=np.int64))
    return x.reshape(pre, n, post), out_shape


# --------------------------------------------------------------------------------------------------
# Public pooling functions
# --------------------------------------------------------------------------------------------------
def max_min_pool(
    scores, *, k_max, k_min=0, lam=1.0, axis: Axis = -1, where=None, convention: str = "paper"
) -> jax.Array:
    """Max+min region pooling: mean of the top ``k_max`` plus ``lam`` times mean of the bottom ``k_min``.

    ``s = mean_{i∈T} z_i + λ · mean_{i∈B} z_i`` over the regions on ``axis`` (SPEC §A1). Special cases:
    global max pooling ``k_max=1``; global average pooling ``k_max=1.0``; top-k ``k_min=0``; MANTRA
    ``k_max=k_min=1, lam=1``; WELDON ``k_max=k_min=k, lam=1``; WILDCAT ``lam=α`` (usually 0.7).

    Args:
      scores: region scores, float32/bfloat16 (any float or int dtype); accumulation is in float32 and
        the result has the input's float dtype (float32 for integer input).
      k_max: number of top regions ``k⁺ ≥ 1``: an int count, or a float fraction in ``(0, 1]`` of the
        ``n`` regions on ``axis`` or, with ``where``, of each row's ``n_v`` valid regions (see ``where``).
      k_min: number of bottom regions ``k⁻ ≥ 0`` (``0`` drops the negative-evidence term); an int
        count or a float fraction, resolved like ``k_max``.
      lam: weight ``λ ≥ 0`` of the bottom term (a Python float or a scalar array).
      axis: the region axis or axes, e.g. ``(1, 2)`` to pool NHWC class maps into ``(B, C)``.
      where: optional boolean mask broadcastable to ``scores``; ``False`` regions are never selected.
        A float fraction ``k`` is then resolved per row against that row's number ``n_v`` of valid
        regions: ``max(1, floor(k·n_v + ½))`` in the paper convention (``k_min=0.0`` stays 0); in the
        wildcat convention (float ``k < 1``) ``round(k·n_v)``, half to even, at least 1 for ``k_max``
        (the official code would give NaN for a row where it rounds to 0), while a row whose ``k_min``
        rounds to 0 has no bottom term and is not halved, as the official code on that row alone. The
        fraction must still resolve to at least one of the ``n`` padded regions (checked as without
        ``where``). An int count is clamped to ``n_v``: a row with fewer valid regions averages the
        valid ones. A row with no valid region gives 0.
      convention: ``"paper"`` or ``"wildcat"`` (official PyTorch outputs); see the module docstring.

    Returns:
      ``scores`` with the pooled axes removed.
      A NaN score anywhere in a row makes that row's result NaN, and so does an infinite score that
      is not selected (it enters the weighted sum with weight 0, and ``0 · inf`` is NaN); selected
      infinite scores give ±inf. The selection and the gradient stay exact.

    Example:
      >>> import jax.numpy as jnp
      >>> z = jnp.array([[3., -1., 2., 0.]])
      >>> max_min_pool(z, k_max=2, k_min=1, lam=0.5)      # (3 + 2)/2 + 0.5 · (−1)
      Array([2.], dtype=float32)
      >>> maps = jnp.ones((2, 7, 7, 20))                  # NHWC class maps
      >>> max_min_pool(maps, k_max=0.2, k_min=0.2, lam=0.7, axis=(1, 2)).shape
      (2, 20)
      >>> z = jnp.tile(jnp.arange(1.0, 11.0), (2, 1))       # two rows of ten regions
      >>> mask = jnp.arange(10) < jnp.array([[10], [4]])  # 10 and 4 valid regions
      >>> max_min_pool(z, k_max=0.4, where=mask)          # top 4 of 10: 8.5; top 2 of 4: 3.5
      Array([8.5, 3.5], dtype=float32)
    """
    _check_convention(convention)
    x = _as_float_scores(scores)
    axes = _normalize_axes(axis, x.ndim)
    n = int(np.prod([x.shape[a] for a in axes], dtype=np.int64))
    if n == 0:
        raise ValueError(f"the region axis {axis!r} of scores with shape {x.shape} is empty.")
    k_top = resolve_k(k_max, n, convention=convention, name="k_max")
    k_bot = resolve_k(k_min, n, convention=convention, name="k_min", allow_zero=True)
    _check_lam(lam)
    if where is not None:
        where = _broadcast_where(where, x.shape)

    rows, out_shape = _to_rows(x, axes)
    valid = None if where is None else _to_rows(where, axes)[0]
    # With a mask, a float fraction is resolved per row against that row's valid count (static
    # fraction, per-row count computed in the jitted body); without one the static count is exact.
    frac_top = frac_bot = None
    if valid is not None:
        frac_top = _fraction(k_max, convention)
        frac_bot = _fraction(k_min, convention) if k_bot > 0 else None
    pooled = _pool_rows(
        rows,
        valid,
        jnp.asarray(lam, jnp.float32),
        k_top=k_top,
        k_bot=k_bot,
        half=convention == "wildcat" and k_bot > 0,
        frac_top=frac_top,
        frac_bot=frac_bot,
        wildcat=convention == "wildcat",
    )
    return pooled.reshape(out_shape).astype(x.dtype)


def _fraction(k, convention: str):
    """The fraction a (validated) ``k`` stands for, as a Python float, or None for a count."""
    if convention == "wildcat":
        return float(k) if 0 < k < 1 else None
    return None if isinstance(k, numbers.Integral) else float(k)


def _fraction_counts(frac: float, n: int, *, wildcat: bool, at_least_one: bool) -> np.ndarray:
    """Counts the fraction ``frac`` resolves to for ``0, 1, …, n`` valid regions (int32, ``n + 1``).

    Paper: ``max(1, floor(frac·v + ½))``; wildcat: ``round(frac·v)`` (half to even), at least one if
    ``at_least_one``; ``0`` for ``v = 0``. Computed in float64 exactly as :func:`resolve_k` does.
    """
    v = np.arange(n + 1)
    counts = np.round(frac * v) if wildcat else np.floor(frac * v + 0.5)
    if at_least_one or not wildcat:
        counts = np.maximum(counts, 1)
    return np.where(v > 0, np.minimum(counts, v), 0).astype(np.int32)


@functools.partial(
    jax.jit, static_argnames=("k_top", "k_bot", "half", "frac_top", "frac_bot", "wildcat")
)
def _pool_rows(
    rows,
    valid,
    lam,
    *,
    k_top: int,
    k_bot: int,
    half: bool,
    frac_top=None,
    frac_bot=None,
    wildcat: bool = False,
):
    """Pools a ``(pre, n, post)`` view over its middle axis; jitted so eager calls compile once.

    ``frac_top``/``frac_bot`` (only with ``valid``): a float fraction resolved per row against the
    row's valid count instead of the static ``k_top``/``k_bot`` (see :func:`_fraction_counts`).
    """
    rows32 = rows.astype(jnp.float32)
    n = rows.shape[1]
    modes = {"top": k_top, "bot": k_bot}  # Static: 0 none, n all, 1 arg-max, else search.
    if valid is not None:
        n_valid = jnp.sum(valid, axis=1, dtype=jnp.int32)
        k_eff = {}
        for name, k, frac in (("top", k_top, frac_top), ("bot", k_bot, frac_bot)):
            if frac is None:
                k_eff[name] = jnp.minimum(k, n_valid)
                continue
            counts = _fraction_counts(frac, n, wildcat=wildcat, at_least_one=name == "top")
            k_eff[name] = jnp.asarray(counts)[n_valid]
            if np.array_equal(counts, np.arange(n + 1)):
                modes[name] = n  # Every valid region of every row.
            elif np.all(counts[1:] == 1):
                modes[name] = 1  # One region per non-empty row: the arg-max shortcut.
            else:
                modes[name] = -1  # Per-row counts: the threshold search.
        k_top_eff, k_bot_eff = k_eff["top"], k_eff["bot"]
    else:
        k_top_eff, k_bot_eff = k_top, k_bot
    top, bottom = _selection_weights(
        lax.stop_gradient(rows32), valid, modes["top"], modes["bot"], k_top_eff, k_bot_eff, n
    )
    # The selection is piecewise constant: the gradient w.r.t. the scores is exactly the weights
    # (SPEC §A1); λ stays differentiable.
    weights = lax.stop_gradient(top)
    if bottom is not None:
        weights = weights + lam * lax.stop_gradient(bottom)
    pooled = jnp.sum(rows32 * weights, axis=1)
    if half and frac_bot is not None:
        # wildcat: a row whose k⁻ fraction rounds to 0 regions has no bottom term and is not halved.
        return jnp.where(k_bot_eff > 0, 0.5, 1.0) * pooled
    return 0.5 * pooled if half else pooled


def _selection_weights(rows, valid, k_top, k_bot, k_top_eff, k_bot_eff, n):
    """Per-region weights ``[i∈T]/k⁺`` and ``[i∈B]/k⁻`` (float32, zero on masked regions; None if k⁻=0).

    ``k_top``/``k_bot`` are static: ``0`` (none), ``n`` (all valid regions), ``1`` (arg-max) or
    another value (search for the per-row counts ``k_top_eff``/``k_bot_eff``).
    """

    def mean_weights(mask, k_eff):
        if valid is None:
            return mask.astype(jnp.float32) / k_eff
        denom = jnp.maximum(k_eff, 1).astype(jnp.float32)[:, None, :]
        return mask.astype(jnp.float32) / denom

    def all_regions():
        return jnp.ones(rows.shape, bool) if valid is None else valid

    # Static shortcuts: all regions, or a single arg-max, need no threshold search.
    searches, masks = [], {}
    for name, k, is_desc in (("top", k_top, True), ("bot", k_bot, False)):
        if k == 0:
            continue
        if k == n:
            masks[name] = all_regions()
        elif k == 1:
            masks[name] = selection.argmax_mask(rows, valid, is_desc)
        else:
            searches.append((name, k, is_desc))
    if searches:
        k_eff = {"top": k_top_eff, "bot": k_bot_eff}
        ks = [
            jnp.broadcast_to(jnp.asarray(k_eff[name], jnp.int32), rows[:, 0, :].shape)
            for name, _, _ in searches
        ]
        found = selection.selection_masks(rows, valid, ks, [d for _, _, d in searches])
        masks.update(zip([name for name, _, _ in searches], found))

    bottom = mean_weights(masks["bot"], k_bot_eff) if "bot" in masks else None
    return mean_weights(masks["top"], k_top_eff), bottom


def class_wise_mean(maps, num_maps: int) -> jax.Array:
    """Averages the ``num_maps`` modality maps of each class (WILDCAT, class-major grouping).

    Channel ``c·M + m`` of ``maps`` (last axis, ``C·M`` channels) is map ``m`` of class ``c``; the result
    has ``C`` channels. The gradient is ``1/M`` per map (the official ``ClassWisePool`` omits it).

    Example:
      >>> import jax.numpy as jnp
      >>> class_wise_mean(jnp.array([[1., 3., 10., 20.]]), num_maps=2)
      Array([[ 2., 15.]], dtype=float32)
    """
    if isinstance(num_maps, bool) or not isinstance(num_maps, numbers.Integral):
        raise TypeError(f"num_maps must be a positive int, got {num_maps!r}.")
    if num_maps < 1:
        raise ValueError(f"num_maps must be a positive int, got {num_maps!r}.")
    maps = jnp.asarray(maps)
    if maps.ndim < 1:
        raise ValueError("maps must have a channel axis (the last axis).")
    channels = maps.shape[-1]
    if channels % num_maps:
        raise ValueError(
            f"the channel count {channels} of maps is not divisible by num_maps={num_maps}."
        )
    grouped = maps.reshape(*maps.shape[:-1], channels // num_maps, int(num_maps))
    return jnp.mean(grouped.astype(jnp.promote_types(maps.dtype, jnp.float32)), axis=-1).astype(
        maps.dtype if jnp.issubdtype(maps.dtype, jnp.floating) else jnp.float32
    )


def lse_pool(scores, *, r: float = 1.0, axis: Axis = -1, where=None) -> jax.Array:
    """Log-sum-exp pooling ``(1/r) · log mean_i exp(r · z_i)``, a smooth sibling of max pooling.

    ``r → 0`` tends to average pooling and ``r → ∞`` to max pooling. Regions where ``where`` is False
    are left out of the mean; a row with no valid region gives 0.

    Example:
      >>> import jax.numpy as jnp
      >>> float(lse_pool(jnp.array([0., 0.]), r=5.0))
      0.0
      >>> lse_pool(jnp.ones((2, 3, 3, 4)), r=2.0, axis=(1, 2)).shape
      (2, 4)
    """
    x = _as_float_scores(scores)
    try:
        r_value = float(r)
    except TypeError:
        raise TypeError(f"r must be a positive number, got {r!r}.") from None
    if not np.isfinite(r_value) or r_value <= 0:
        raise ValueError(f"r must be a finite number > 0, got {r!r}.")
    axes = _normalize_axes(axis, x.ndim)
    if any(x.shape[a] == 0 for a in axes):
        raise ValueError(f"the region axis {axis!r} of scores with shape {x.shape} is empty.")
    x32 = x.astype(jnp.float32)
    if where is None:
        n = np.prod([x.shape[a] for a in axes])
        out = (jax.nn.logsumexp(r_value * x32, axis=axes) - np.log(n)) / r_value
        return out.astype(x.dtype)
    where = _broadcast_where(where, x.shape)
    n_valid = jnp.sum(where, axis=axes)
    safe = jnp.where(where, r_value * x32, 0.0)
    lse = jax.nn.logsumexp(safe, axis=axes, where=where)
    out = jnp.where(n_valid > 0, (lse - jnp.log(jnp.maximum(n_valid, 1))) / r_value, 0.0)
    return out.astype(x.dtype)
