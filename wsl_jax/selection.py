"""Exact top-k / bottom-k region selection without sorting, for :func:`wsl_jax.max_min_pool`.

XLA's CPU sort and top-k are slow, and pooling only needs *which* regions are selected, not their
order. Both algorithms here work on a ``(pre, n, post)`` view (regions on the middle axis, so NHWC class
maps keep channels minor and every reduction vectorises across channels) and return boolean masks.

1. :func:`threshold_masks` (fast path) looks, per row, for a value ``m`` with exactly ``k`` valid
   scores ``≥ m``; the mask is then ``score ≥ m``. Counting passes move a bracket around the k-th
   score (Newton steps on a normal fitted to the row, then Illinois regula falsi); snapping passes
   move the nearer end of the bracket onto the next score (one min-reduction each); a final count
   verifies every row. The top and bottom selections share every pass. Rows whose k-th and
   (k+1)-th scores are tied have no such ``m`` and are reported unresolved.
2. :func:`exact_masks` (always exact) bisects the int32 keys that order floats, snapped after every
   step to the nearest keys present in the row (at most ``min(32, distinct values)`` passes), then
   breaks ties by lowest region index with a cumulative sum.

``selection_masks`` runs 1 and falls back to 2, started from 1's brackets, only when some row is
unresolved (``lax.cond``, so the fallback costs nothing otherwise). Ties: among equal scores the
lowest region index is selected first, for the top and bottom sets alike; ``-0.0`` equals ``+0.0``.

Example (the top 2 and the bottom 1 of five regions; the tie at 3 needs no tie-break here):
  >>> import jax.numpy as jnp
  >>> rows = jnp.array([[3.0, 1.0, 3.0, 0.0, 2.0]])[..., None]  # (pre=1, n=5, post=1)
  >>> top, bottom = selection_masks(rows, None, [jnp.array([[2]]), jnp.array([[1]])], [True, False])
  >>> top[0, :, 0].tolist(), bottom[0, :, 0].tolist()
  ([True, False, True, False, False], [False, False, False, True, False])
"""

from __future__ import annotations

from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax
from jax.scipy.special import ndtri

_INT_MAX = np.iinfo(np.int32).max
_INT_MIN = np.iinfo(np.int32).min
_COUNT_PASSES = 6  # Counting passes before snapping.
_SNAP_PASSES = 16  # Snapping passes before the exact fallback.

__all__ = ["exact_masks", "selection_masks", "threshold_masks"]


def _count(mask: jax.Array, axis: int) -> jax.Array:
    """Number of True entries along ``axis`` as int32.

    Accumulates in uint8 when the axis is short enough (exact up to 255 regions): XLA's CPU
    reductions are about twice as fast on bytes as on int32.
    """
    dtype = jnp.uint8 if mask.shape[axis] <= 255 else jnp.int32
    return jnp.sum(mask, axis=axis, dtype=dtype).astype(jnp.int32)


def selection_masks(
    rows: jax.Array, valid: jax.Array | None, ks: Sequence, descending: Sequence[bool]
):
    """Masks of the ``ks[i]`` largest (``descending[i]``) or smallest scores on axis 1 of ``rows``.

    Args:
      rows: float32 scores of shape ``(pre, n, post)``.
      valid: optional boolean mask of the same shape (invalid regions are never selected).
      ks: per selection, an int32 array of shape ``(pre, post)`` with ``0 ≤ k ≤`` valid count.
      descending: per selection, True for the top ``k`` and False for the bottom ``k``.

    Returns:
      A list of boolean masks shaped like ``rows``, each with exactly ``k`` True entries per row.

    Example:
      >>> import jax.numpy as jnp
      >>> rows = jnp.array([[1.0, 2.0, 2.0, 0.0]])[..., None]  # a tie at the k-th score
      >>> [m[0, :, 0].tolist() for m in selection_masks(rows, None, [jnp.array([[1]])], [True])]
      [[False, True, False, False]]
    """
    masks, done, brackets = threshold_masks(rows, valid, ks, descending)
    return lax.cond(
        jnp.all(done),
        lambda: masks,
        lambda: exact_masks(rows, valid, ks, descending, brackets=(*brackets, done)),
    )


# --------------------------------------------------------------------------------------------------
# Fast path: a count-guided threshold search in value space
# --------------------------------------------------------------------------------------------------
def _row_moments(rows, valid):
    """Mean and standard deviation of each row's valid scores, in one fused pass."""
    x = rows if valid is None else jnp.where(valid, rows, 0.0)
    count = rows.shape[1] if valid is None else jnp.maximum(jnp.sum(valid, axis=1), 1)
    sums = jnp.sum(jnp.stack([x, x * x]), axis=2)
    mean = sums[0] / count
    var = jnp.maximum(sums[1] / count - mean * mean, 0.0)
    std = jnp.sqrt(var)
    return mean, jnp.where(std > 0, std, 1.0)


# Fields of the fast path's search state, one float32 array of shape (len(_FIELDS), S, pre, post),
# so that every update is a single fusion: quantile u, count c and value m at each bracket end
# (count(≥ m_lo) = c_lo > k > c_hi = count(≥ m_hi)), the Illinois-scaled count gaps, the side of
# the last move (+1 lo, −1 hi), the threshold found and whether it is found.
_FIELDS = (
    "u_lo",
    "c_lo",
    "g_lo",
    "m_lo",
    "u_hi",
    "c_hi",
    "g_hi",
    "m_hi",
    "last",
    "threshold",
    "done",
)
_F = {name: i for i, name in enumerate(_FIELDS)}


def threshold_masks(rows, valid, ks, descending):
    """Fast path: masks, per-selection ``done`` flags ``(S, pre, post)`` and the search brackets.

    Where ``done`` is False the mask is not the selection; the brackets ``(lo, hi)`` (values of
    ``±rows``, oriented so that larger is selected first) satisfy ``count(≥ lo) ≥ k > count(≥ hi)``
    and let :func:`exact_masks` start from there.

    Three phases: counting passes that move a bracket around the k-th value (Newton steps on a
    normal model of the row, then Illinois regula falsi); snapping passes that move the nearer end
    of the bracket onto the next score, one score per pass, assuming no ties; and one verifying
    count, which catches ties.

    Example:
      >>> import jax.numpy as jnp
      >>> rows = jnp.array([[5.0, 1.0, 4.0, 2.0]])[..., None]
      >>> masks, done, (lo, hi) = threshold_masks(rows, None, [jnp.array([[2]])], [True])
      >>> masks[0][0, :, 0].tolist(), done.tolist()
      ([True, False, True, False], [[[True]]])
      >>> tied = jnp.array([[1.0, 2.0, 2.0, 0.0]])[..., None]  # no threshold keeps exactly one
      >>> threshold_masks(tied, None, [jnp.array([[1]])], [True])[1].tolist()
      [[[False]]]
    """
    signs = jnp.asarray([1.0 if d else -1.0 for d in descending], jnp.float32)[:, None, None, None]
    oriented = signs * rows[None]  # Bottom-k of z is top-k of -z.
    k = jnp.stack([jnp.asarray(kk, jnp.float32) for kk in ks])  # (S, pre, post)
    n_valid = rows.shape[1] if valid is None else jnp.sum(valid, axis=1).astype(jnp.float32)
    n_valid = jnp.broadcast_to(n_valid, k.shape)
    mean, std = _row_moments(rows, valid)
    mean = signs[:, :, 0] * mean[None]
    std = jnp.broadcast_to(std[None], k.shape)
    target = k + 0.5

    def count_at(m):
        # The barrier keeps XLA from fusing the per-row threshold (an ndtri) into the reduction,
        # which would recompute it for every region.
        m = lax.optimization_barrier(m)
        above = oriented >= m[:, :, None, :]
        if valid is not None:
            above = above & valid[None]
        return _count(above, axis=2).astype(jnp.float32)

    # Rows selecting all or none of their valid regions are done before any pass.
    all_selected = k >= n_valid
    none_selected = k <= 0
    fields = dict(
        u_lo=jnp.zeros_like(k),
        c_lo=n_valid,
        g_lo=n_valid - target,
        m_lo=jnp.full_like(k, -jnp.inf),
        u_hi=jnp.ones_like(k),
        c_hi=jnp.zeros_like(k),
        g_hi=target + 0 * k,
        m_hi=jnp.full_like(k, jnp.inf),
        last=jnp.zeros_like(k),
        threshold=jnp.where(none_selected, jnp.inf, -jnp.inf),
        done=(all_selected | none_selected).astype(jnp.float32),
    )
    state = jnp.stack([fields[name] for name in _FIELDS])

    def unfinished(limit):
        return lambda carry: jnp.any(carry[0][_F["done"]] == 0) & (carry[1] < limit)

    def count_step(carry):
        state, passes = carry
        f = {name: state[i] for name, i in _F.items()}
        # While one end of the bracket is still at ±infinity, step from the last point by the count
        # error over the model's slope (n per unit of quantile); afterwards, Illinois regula falsi.
        bracketed = (f["u_lo"] > 0) & (f["u_hi"] < 1)
        frac = jnp.clip(f["g_lo"] / (f["g_lo"] + f["g_hi"]), 0.02, 0.98)
        u_falsi = f["u_lo"] + frac * (f["u_hi"] - f["u_lo"])
        u_last = jnp.where(f["last"] > 0, f["u_lo"], f["u_hi"])
        g_last = jnp.where(f["last"] > 0, f["g_lo"], -f["g_hi"])
        u_newton = jnp.clip(
            u_last + g_last / n_valid, 0.5 * (f["u_lo"] + u_last), 0.5 * (f["u_hi"] + u_last)
        )
        u = jnp.where(bracketed | (f["last"] == 0), u_falsi, u_newton)
        m = mean + std * ndtri(u)
        c = count_at(m)
        ok = (f["done"] == 0) & (m > f["m_lo"]) & (m < f["m_hi"])
        hit, move_lo, move_hi = ok & (c == k), ok & (c > k), ok & (c < k)
        new = dict(
            u_lo=jnp.where(move_lo, u, f["u_lo"]),
            c_lo=jnp.where(move_lo, c, f["c_lo"]),
            # Illinois: an end kept while the other moved twice in a row has its gap halved.
            g_lo=jnp.where(
                move_lo,
                c - target,
                jnp.where(move_hi & (f["last"] < 0), 0.5 * f["g_lo"], f["g_lo"]),
            ),
            m_lo=jnp.where(move_lo, m, f["m_lo"]),
            u_hi=jnp.where(move_hi, u, f["u_hi"]),
            c_hi=jnp.where(move_hi, c, f["c_hi"]),
            g_hi=jnp.where(
                move_hi,
                target - c,
                jnp.where(move_lo & (f["last"] > 0), 0.5 * f["g_hi"], f["g_hi"]),
            ),
            m_hi=jnp.where(move_hi, m, f["m_hi"]),
            last=jnp.where(move_lo, 1.0, jnp.where(move_hi, -1.0, f["last"])),
            threshold=jnp.where(hit, m, f["threshold"]),
            done=jnp.where(hit, 1.0, f["done"]),
        )
        return jnp.stack([new[name] for name in _FIELDS]), passes + 1

    def snap_step(carry):
        state, passes = carry
        f = {name: state[i] for name, i in _F.items()}
        from_lo = (f["c_lo"] - k) <= (k - f["c_hi"])
        # One min-reduction: the smallest score ≥ m_lo, or minus the largest score < m_hi.
        from_lo_b, m_lo, m_hi = (
            lax.optimization_barrier(v)[:, :, None, :] for v in (from_lo, f["m_lo"], f["m_hi"])
        )
        in_bracket = jnp.where(from_lo_b, oriented >= m_lo, oriented < m_hi)
        if valid is not None:
            in_bracket = in_bracket & valid[None]
        candidate = jnp.where(in_bracket, jnp.where(from_lo_b, oriented, -oriented), jnp.inf)
        v = jnp.min(candidate, axis=2)
        active = f["done"] == 0
        # Without ties, count(> e_lo) = c_lo − 1 and count(≥ e_hi) = c_hi + 1; the final count checks it.
        next_lo = jnp.nextafter(v, jnp.inf)
        c_lo = jnp.where(active & from_lo, f["c_lo"] - 1, f["c_lo"])
        c_hi = jnp.where(active & ~from_lo, f["c_hi"] + 1, f["c_hi"])
        m_lo_new = jnp.where(active & from_lo, next_lo, f["m_lo"])
        m_hi_new = jnp.where(active & ~from_lo, -v, f["m_hi"])
        hit_lo, hit_hi = active & from_lo & (c_lo == k), active & ~from_lo & (c_hi == k)
        new = dict(
            f,
            c_lo=c_lo,
            c_hi=c_hi,
            m_lo=m_lo_new,
            m_hi=m_hi_new,
            threshold=jnp.where(hit_lo, m_lo_new, jnp.where(hit_hi, m_hi_new, f["threshold"])),
            done=jnp.where(hit_lo | hit_hi, 1.0, f["done"]),
        )
        return jnp.stack([new[name] for name in _FIELDS]), passes + 1

    counted, _ = lax.while_loop(unfinished(_COUNT_PASSES), count_step, (state, jnp.int32(0)))
    state, _ = lax.while_loop(unfinished(_SNAP_PASSES), snap_step, (counted, jnp.int32(0)))
    threshold = state[_F["threshold"]]
    selected = oriented >= threshold[:, :, None, :]
    if valid is not None:
        selected = selected & valid[None]
    selected = selected & ~none_selected[:, :, None, :]
    done = (state[_F["done"]] > 0) & (_count(selected, axis=2) == k.astype(jnp.int32))
    masks = [selected[i] for i in range(len(ks))]
    # Brackets for the exact path from the counting phase, whose counts are measured (the snapping
    # phase assumed no ties); rows already verified start at their threshold.
    return masks, done, (jnp.where(done, threshold, counted[_F["m_lo"]]), counted[_F["m_hi"]])


# --------------------------------------------------------------------------------------------------
# Exact path: snapped bisection over the int32 keys, then tie-breaking by index
# --------------------------------------------------------------------------------------------------
def ordered_keys(x32: jax.Array) -> jax.Array:
    """Maps float32 values to int32 keys whose signed order is the float order (−0.0 → +0.0)."""
    x32 = jnp.where(x32 == 0, jnp.float32(0), x32)
    bits = lax.bitcast_convert_type(x32, jnp.int32)
    return bits ^ ((bits >> 31) & jnp.int32(_INT_MAX))


def _ceil_mid(lo, hi):
    """``ceil((lo + hi) / 2)`` for int32 without overflow."""
    return (lo | hi) - ((lo ^ hi) >> 1)


def _masked_min(a, m):
    return jnp.min(jnp.where(m, a, _INT_MAX), axis=1)


def _masked_max(a, m):
    return jnp.max(jnp.where(m, a, _INT_MIN), axis=1)


def _kth_key(a, valid, k, start=None):
    """The k-th largest key per row of ``a`` (``(pre, n, post)`` int32), by snapped bisection.

    Invariant: ``count(a ≥ lo) ≥ k`` and ``count(a > hi) < k`` with ``lo``, ``hi`` keys present in the
    row; each pass moves one end to the nearest present key past the midpoint, so the loop ends when
    ``lo == hi``, after at most ``min(32, distinct values)`` passes. Rows with ``k = 0`` start done.
    """
    everything = jnp.ones(a.shape, bool) if valid is None else valid
    active = k > 0
    lo, hi = _masked_min(a, everything), _masked_max(a, everything)
    if start is not None:
        # Snap a known bracket of oriented values (see threshold_masks) to keys present in the row.
        # Float comparisons skip NaN, whose keys sort beyond ±inf: rows with NaN keep the full range.
        values, m_lo, m_hi, done = start
        has_nan = jnp.any(jnp.isnan(values) & everything, axis=1)
        snapped_lo = _masked_min(a, everything & (values >= m_lo[:, None, :]))
        snapped_hi = jnp.where(
            done, snapped_lo, _masked_max(a, everything & (values < m_hi[:, None, :]))
        )
        # An infinite end was never measured (±inf scores may sit there): keep the full range.
        use_lo = ~has_nan & (jnp.isfinite(m_lo) | done)
        use_hi = ~has_nan & (jnp.isfinite(m_hi) | done)
        lo, hi = jnp.where(use_lo, snapped_lo, lo), jnp.where(use_hi, snapped_hi, hi)
    lo, hi = jnp.where(active, lo, 0), jnp.where(active, hi, 0)

    def step(state):
        lo, hi = state
        mid = _ceil_mid(lo, hi)[:, None, :]
        above = (a >= mid) & everything
        count = jnp.sum(above, axis=1, dtype=jnp.int32)
        next_lo = _masked_min(a, above)
        next_hi = _masked_max(a, everything & ~above)
        go_up = count >= k
        done = lo == hi
        return jnp.where(done | ~go_up, lo, next_lo), jnp.where(done | go_up, hi, next_hi)

    lo, _ = lax.while_loop(lambda s: jnp.any(s[0] != s[1]), step, (lo, hi))
    return lo


def _first_k_at_threshold(a, valid, t, k):
    """Mask of keys above ``t`` plus the lowest-index keys equal to ``t``, k in all."""
    t = t[:, None, :]
    strictly, tied = a > t, a == t
    if valid is not None:
        strictly, tied = strictly & valid, tied & valid
    need = k - jnp.sum(strictly, axis=1, dtype=jnp.int32)
    rank = jnp.cumsum(tied, axis=1, dtype=jnp.int32) - 1
    return strictly | (tied & (rank < need[:, None, :]))


def exact_masks(rows, valid, ks, descending, brackets=None):
    """Always-exact selection masks (see the module docstring); same contract as ``selection_masks``.

    ``brackets``, optional, is ``(lo, hi, done)`` from :func:`threshold_masks`, which narrows the search.

    Example (ties go to the lowest valid index):
      >>> import jax.numpy as jnp
      >>> rows = jnp.array([[1.0, 2.0, 2.0, 0.0]])[..., None]
      >>> exact_masks(rows, None, [jnp.array([[1]])], [True])[0][0, :, 0].tolist()
      [False, True, False, False]
      >>> valid = jnp.array([[True, False, True, True]])[..., None]
      >>> exact_masks(rows, valid, [jnp.array([[1]])], [True])[0][0, :, 0].tolist()
      [False, False, True, False]
      >>> exact_masks(rows, valid, [jnp.array([[0]])], [True])[0][0, :, 0].tolist()  # k = 0: none
      [False, False, False, False]
    """
    keys = ordered_keys(rows)
    masks = []
    for i, (k, is_desc) in enumerate(zip(ks, descending)):
        a = keys if is_desc else ~keys  # Bitwise complement reverses the order without overflow.
        k = jnp.asarray(k, jnp.int32)
        start = None
        if brackets is not None:
            start = (rows if is_desc else -rows, brackets[0][i], brackets[1][i], brackets[2][i])
        mask = _first_k_at_threshold(a, valid, _kth_key(a, valid, k, start), k)
        masks.append(mask & (k > 0)[:, None, :])  # k = 0 selects nothing (as threshold_masks).
    return masks


def argmax_mask(rows, valid, descending: bool) -> jax.Array:
    """The ``k = 1`` selection: the first index of each row's max (or min) score, one pass."""
    keys = ordered_keys(rows)
    a = keys if descending else ~keys
    if valid is not None:
        a = jnp.where(valid, a, _INT_MIN)
    idx = jnp.argmax(a, axis=1)
    mask = jnp.arange(rows.shape[1])[None, :, None] == idx[:, None, :]
    return mask if valid is None else mask & valid
