"""Structured average-precision ranking loss (SVM-MAP, Yue et al. 2007) — SPEC A4.

Per class, over a batch: scores ``s`` and binary labels ``y`` split the kept examples into
positives ``P`` and negatives ``N``. A ranking is encoded by ``R_ij = +1`` if positive ``i`` is
ranked above negative ``j`` and ``-1`` otherwise, with joint score

    S(R) = 1/(|P||N|) · Σ_{i∈P, j∈N} R_ij (s_i − s_j),

and the loss is ``max_R [Δ_AP(R) + S(R)] − S(R*)``, ``Δ_AP = 1 − AP(R)``, where ``R*`` puts
every positive above every negative and ``AP(R)`` is the mean over positives of the precision at
the positive's rank (a ranking is a total order: no ties). Training with it needs the
loss-augmented inference ``R̂ = argmax_R [Δ_AP(R) + S(R)]``.

Conventions:

* **Ranking representation.** :func:`ap_loss_augmented_ranking` returns, for every example, the
  number of *opposite-label* examples ranked above it in ``R̂`` (an ``int32`` array shaped like
  ``scores``; 0 for dropped entries). In ``R̂`` positives keep their order by decreasing score
  and so do negatives (ties: lower index first); with ``pos_rank``/``neg_rank`` the 0-based
  rank in that order, ``R̂_ij = +1`` iff ``pos_rank(i) < counts[j]`` iff
  ``neg_rank(j) >= counts[i]``. This is ``O(N)`` memory instead of the ``O(N²)`` matrix.
* **Inference.** Writing ``c_j`` for the number of positives above the ``j``-th negative (1-based,
  by decreasing score), the objective separates into ``Σ_j f_j(c_j)``; moving negative ``j`` below
  positive ``m`` changes ``f_j`` by ``2(s⁺_m − s⁻_j)/(|P||N|) − m/(|P|(m+j−1)(m+j))``. These
  increments grow strictly with ``j``, so every per-negative maximiser is monotone in ``j`` and
  the independent per-negative choice is exact (Yue et al.). Instead of scanning all
  ``|P|+1`` positions for every negative (``O(|P||N|)``), the monotonicity is used
  divide-and-conquer style: the middle negative is solved over the full range, which bounds the
  search range of the negatives on each side, and so on. Each level's ranges sum to at most
  ``|P| + 2^level`` positions, evaluated as one flat vector with a segmented cumulative sum, so the
  whole inference is ``O(N log N)`` work with static shapes (``jit``-friendly). Ties in the
  objective go to the position closer to ``R*`` (more positives above the negative).
* **Masks.** ``where=False`` drops an entry (neither positive nor negative; its label is not
  checked). A class with no kept positive or no kept negative has loss 0, gradient 0 and all
  counts 0.
* **Gradient.** ``R̂`` is held constant (``stop_gradient``): the gradient is the subgradient
  ``∂S(R̂)/∂s − ∂S(R*)/∂s``, i.e. ``−2 counts_i/(|P||N|)`` for a positive and
  ``2(|P| − counts_j)/(|P||N|)`` for a negative.
* **Precision.** Computation runs in float32 (float64 when given float64 under ``jax_enable_x64``).
  Positions whose objectives differ by float32 rounding only may be resolved differently from an
  exact computation; the loss value is then the same up to rounding. The loss is clamped at 0
  against rounding (its exact value is always ``>= 0`` since ``R*`` is a candidate).
* **NaN.** A NaN among a class's kept scores gives that class a NaN loss (as every loss of the
  package: NaN propagates, so that training stops on it; the metrics refuse NaN with an error).

Example (two positives, three negatives; the negative scored 1.5 sits between the positives):
  >>> import jax, jax.numpy as jnp
  >>> s, y = jnp.array([2.0, 0.0, 1.5, -1.0, 0.5]), jnp.array([1, 1, 0, 0, 0])
  >>> print(ap_loss_augmented_ranking(s, y))  # opposite-label examples above each one in R̂
  [1 2 0 2 1]
  >>> float(ap_ranking_loss(s, y)), float(ap_ranking_loss(s + 3 * y, y))
  (1.0, 0.0)
  >>> print(jax.grad(ap_ranking_loss)(s, y).round(4))
  [-0.3333 -0.6667  0.6667  0.      0.3333]
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from wsl_jax._arrays import is_concrete as _concrete

__all__ = ["ap_loss_augmented_ranking", "ap_ranking_loss"]


def _validate(scores, labels, where):
    """Checks shapes (always) and label values (concrete inputs only).

    Returns float scores and (N, C)-or-(N,) bool ``pos`` and ``keep`` arrays, so that the jitted
    core is compiled once per scores shape and dtype.
    """
    scores, labels = jnp.asarray(scores), jnp.asarray(labels)
    if scores.ndim not in (1, 2):
        raise ValueError(f"`scores` must be 1-D (N,) or 2-D (N, C), got shape {scores.shape}.")
    if labels.shape != scores.shape:
        raise ValueError(
            f"`labels` must have the shape of `scores` {scores.shape}, got {labels.shape}."
        )
    if where is None:
        keep = np.ones(scores.shape, bool)
    else:
        keep = jnp.asarray(where)
        if keep.shape == scores.shape[:1] and scores.ndim == 2:
            keep = jnp.broadcast_to(keep[:, None], scores.shape)
        elif keep.shape != scores.shape:
            allowed = f"{scores.shape}" + (f" or {scores.shape[:1]}" if scores.ndim == 2 else "")
            raise ValueError(f"`where` must have shape {allowed}, got {keep.shape}.")
        keep = keep.astype(bool)
    if _concrete(labels, keep) and labels.size:
        lab = np.asarray(labels)
        bad = ~((lab == 0) | (lab == 1)) & np.asarray(keep)
        if bad.any():
            raise ValueError(
                f"`labels` must be binary (0/1 or bool), got value {lab[bad].ravel()[0]!r}."
            )
    if not jnp.issubdtype(scores.dtype, jnp.floating) or jnp.finfo(scores.dtype).bits < 32:
        scores = scores.astype(jnp.float32)
    return scores, labels != 0, keep


def _segmented_cumsum(values, seg, starts, num_segments):
    """Inclusive cumulative sum of ``values`` restarting at each segment start.

    ``seg`` (non-decreasing) gives each entry's segment, ``starts`` the first index of each
    segment (where ``values`` must be 0). One global ``cumsum`` (cheap to compile, unlike a
    segmented ``associative_scan``), with the previous segment's total subtracted at each start
    so that the running sum stays at the scale of a single segment.
    """
    totals = jax.ops.segment_sum(values, seg, num_segments=num_segments)
    reset = jnp.zeros_like(values).at[starts[1:]].add(-totals[: num_segments - 1], mode="drop")
    run = jnp.cumsum(values + reset)
    return run - run[starts[seg]]


def _inference_1d(s, pos, keep):
    """Loss-augmented inference for one class. Returns (counts, AP(R̂), |P|, |N|)."""
    n = s.shape[0]
    dtype = s.dtype
    idx = jnp.arange(n, dtype=jnp.int32)
    s = jnp.where(s == 0, jnp.zeros((), dtype), s)  # -0.0 sorts like 0.0
    is_pos = pos & keep
    is_neg = (~pos) & keep
    n_pos = is_pos.sum().astype(jnp.int32)
    n_neg = is_neg.sum().astype(jnp.int32)
    # One stable sort: positives, then negatives, then dropped entries; each by decreasing
    # score, ties by lower index.
    group = jnp.where(is_pos, 0, jnp.where(is_neg, 1, 2)).astype(jnp.int32)
    _, s_sorted, order = lax.sort((group, -s, idx), num_keys=2, is_stable=True)
    s_sorted = -s_sorted
    sp = s_sorted  # positive i (1-based) at i-1
    sn = s_sorted[jnp.minimum(idx + n_pos, n - 1)]  # negative j (1-based) at j-1
    scale = 2.0 / jnp.maximum(n_neg, 1).astype(dtype)

    # Divide and conquer over the negatives' 1-based ranks j = 1 .. 2^L - 1, a complete binary
    # tree in in-order: opt[j] = number of positives above negative j; opt[0] = 0 and
    # opt[2^L] = |P| are sentinels. Level l solves the 2^l nodes j = h(2m+1), h = 2^(L-1-l),
    # each over [opt[j-h], opt[j+h]] (already known). Rows j > |N| (padding) get an
    # increasing objective and sit at |P|, which keeps all rows monotone.
    # The levels run in a fori_loop with static sizes (M = 2^(L-1) segment slots, flat
    # length n + M), so compile time does not grow with the number of levels.
    # Rows up to n - 1 suffice: with |N| = n there is no positive and everything is 0.
    levels = max(1, int(np.ceil(np.log2(n))))
    top = 2**levels
    m_slots = 2 ** (levels - 1)
    size = n + m_slots  # >= |P| + 2^l, the total range length
    m = jnp.arange(m_slots, dtype=jnp.int32)
    t = jnp.arange(size, dtype=jnp.int32)
    zero = jnp.zeros((), dtype)

    def level_step(level, opt):
        half = jnp.left_shift(1, levels - 1 - level).astype(jnp.int32)
        active = m < jnp.left_shift(1, level)
        nodes = jnp.where(active, half * (2 * m + 1), 0)
        left = opt[jnp.where(active, nodes - half, top)]
        right = opt[jnp.where(active, nodes + half, top)]
        total = n_pos + jnp.left_shift(1, level)
        starts = jnp.where(active, left + m, total)  # ranges telescope: right_m = left_m+1
        seg = jnp.cumsum(jnp.zeros(size, jnp.int32).at[starts[1:]].add(1, mode="drop"))
        seg = jnp.minimum(seg, m_slots - 1)
        in_range = t < total
        first = t == starts[seg]
        c = left[seg] + (t - starts[seg])  # candidate number of positives above
        j = nodes[seg]
        cm = jnp.maximum(c, 1)
        cf = cm.astype(dtype)
        jf = j.astype(dtype)
        inc = scale * (sp[jnp.clip(cm - 1, 0, n - 1)] - sn[jnp.clip(j - 1, 0, n - 1)]) - cf / (
            cf + jf - 1
        ) / (cf + jf)
        row_ok = j <= n_neg
        inc = jnp.where(row_ok & ~first & in_range, inc, zero)
        val = _segmented_cumsum(inc, seg, starts, m_slots)
        # Padding rows: an increasing objective, so they sit at their range's right end.
        val = jnp.where(row_ok, val, c.astype(dtype))
        val = jnp.where(in_range, val, -jnp.inf)
        seg_id = jnp.where(in_range, seg, m_slots)
        best_val = jax.ops.segment_max(val, seg_id, num_segments=m_slots + 1)
        cand = jnp.where(val == best_val[seg_id], c, -1)
        best = jax.ops.segment_max(cand, seg_id, num_segments=m_slots + 1)[:m_slots]
        best = jnp.clip(best, left, right)  # NaN scores: stay structurally sane
        return opt.at[jnp.where(active, nodes, top + 1)].set(best, mode="drop")

    opt = jnp.zeros(top + 1, jnp.int32).at[top].set(n_pos)
    opt = lax.fori_loop(0, levels, level_step, opt)

    ranks = jnp.arange(1, n + 1, dtype=jnp.int32)
    c_rows = opt[1 : n + 1]  # per negative rank j = 1..n
    row_ok = ranks <= n_neg
    # Negatives above the i-th positive: #{valid rows with c < i} (c is monotone in the row).
    hist = jnp.zeros(n + 2, jnp.int32).at[jnp.where(row_ok, c_rows, n + 1)].add(1)
    n_above = jnp.cumsum(hist)[:n]  # index i-1 -> #{c <= i-1}
    pos_ok = ranks <= n_pos
    # Back to input order: sorted slot i-1 is positive i, slot |P| + j - 1 is negative j.
    per_slot = jnp.where(pos_ok, n_above, 0) + jnp.where(
        (ranks > n_pos) & (ranks <= n_pos + n_neg), c_rows[jnp.clip(idx - n_pos, 0, n - 1)], 0
    )
    counts = jnp.zeros(n, jnp.int32).at[order].set(per_slot)
    rf = ranks.astype(dtype)
    prec = jnp.where(pos_ok, rf / (rf + n_above.astype(dtype)), jnp.zeros((), dtype))
    ap = prec.sum() / jnp.maximum(n_pos, 1).astype(dtype)
    return counts, ap, n_pos, n_neg


_inference = jax.vmap(_inference_1d, in_axes=1, out_axes=0)


@jax.jit
def _impl(scores, pos, keep):
    """Returns (loss, counts); one compiled program serves both public functions."""
    if scores.shape[0] == 0:  # no example: nothing to rank
        return jnp.zeros(scores.shape[1:], scores.dtype), jnp.zeros(scores.shape, jnp.int32)
    s, pos, keep = (x.reshape(x.shape[0], -1) for x in (scores, pos, keep))
    counts_i, ap, n_pos, n_neg = _inference(lax.stop_gradient(s), pos, keep)
    counts_i = counts_i.T
    counts = counts_i.astype(s.dtype)
    p = n_pos.astype(s.dtype)
    q = n_neg.astype(s.dtype)
    # loss = Δ_AP(R̂) + S(R̂) − S(R*) = 1 − AP + 2/(|P||N|) [Σ_j (|P| − c_j) s_j − Σ_i c_i s_i]
    weights = jnp.where(keep & ~pos, p[None, :] - counts, jnp.where(keep & pos, -counts, 0))
    weights = lax.stop_gradient(weights)
    defined = (n_pos > 0) & (n_neg > 0)
    denom = jnp.maximum(p, 1) * jnp.maximum(q, 1)
    swap = 2.0 * jnp.sum(weights * jnp.where(keep, s, 0), axis=0) / denom
    loss = (1.0 - ap) + swap
    loss = jnp.where(defined & (loss > 0), loss, jnp.zeros((), s.dtype))
    # NaN policy (README "Faults"): a NaN among a class's kept scores makes its loss NaN, so the
    # training loop's divergence guard sees it; the inference above only stays well-formed.
    loss = jnp.where(jnp.any(jnp.isnan(s) & keep, axis=0), jnp.nan, loss)
    return loss.reshape(scores.shape[1:]), counts_i.reshape(scores.shape)


def ap_loss_augmented_ranking(scores, labels, *, where=None) -> jax.Array:
    """Loss-augmented inference ``argmax_R [Δ_AP(R) + S(R)]`` of SVM-MAP (exact, greedy).

    Args:
      scores: ``(N,)`` scores, or ``(N, C)`` for ``C`` independent classes (ranked over ``N``).
      labels: binary labels (0/1 or bool) of the same shape.
      where: optional mask, shape of ``scores`` (or ``(N,)`` for 2-D scores); False drops an entry.

    Returns:
      ``int32`` array shaped like ``scores``: for a positive, the number of negatives ranked above
      it in ``R̂``; for a negative, the number of positives above it; 0 for dropped entries (see
      the module docstring for rebuilding ``R̂_ij``). Not differentiable (integer).

    >>> import jax.numpy as jnp
    >>> s = jnp.array([2.0, 0.0, 1.5, -1.0, 0.5])
    >>> y = jnp.array([1, 1, 0, 0, 0])
    >>> ap_loss_augmented_ranking(s, y)
    Array([1, 2, 0, 2, 1], dtype=int32)

    Here ``R̂`` ranks 1.5 (neg), 2.0 (pos), 0.5 (neg), 0.0 (pos), −1.0 (neg).
    """
    return _impl(*_validate(scores, labels, where))[1]


def ap_ranking_loss(scores, labels, *, where=None) -> jax.Array:
    """Structured AP ranking loss ``max_R [Δ_AP(R) + S(R)] − S(R*)`` per class (SPEC A4).

    Equals ``1 − AP(R̂) + 2/(|P||N|) Σ_{(i,j) swapped in R̂} (s_j − s_i)`` with ``R̂`` from
    :func:`ap_loss_augmented_ranking`; ``>= 0``, and 0 when all positives score well above all
    negatives. Differentiable (subgradient with ``R̂`` held fixed).

    Args:
      scores: ``(N,)`` or ``(N, C)`` scores (e.g. pooled class scores of a batch).
      labels: binary labels of the same shape.
      where: optional mask, shape of ``scores`` (or ``(N,)`` for 2-D scores); False drops an entry.

    Returns:
      A scalar for 1-D scores, ``(C,)`` for 2-D scores (0 for a class without a kept positive or
      without a kept negative). float32 (float64 for float64 input under x64).

    >>> import jax, jax.numpy as jnp
    >>> s = jnp.array([2.0, 0.0, 1.5, -1.0, 0.5])
    >>> y = jnp.array([1, 1, 0, 0, 0])
    >>> print(f"{ap_ranking_loss(s, y):.4f}")
    1.0000
    >>> print(jax.grad(ap_ranking_loss)(s, y).round(4))
    [-0.3333 -0.6667  0.6667  0.      0.3333]
    >>> print(ap_ranking_loss(jnp.stack([s, -s], 1), jnp.stack([y, y], 1)).round(4))
    [1.   2.55]
    """
    return _impl(*_validate(scores, labels, where))[0]
