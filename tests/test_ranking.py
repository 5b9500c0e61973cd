"""Tests for the structured AP ranking loss (SPEC A4): brute force over all rankings on tiny
problems, an independent float64 per-negative reference on larger ones, gradients, masks,
transformations and input validation."""
import functools
import itertools

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from wsl_jax.ranking import ap_loss_augmented_ranking, ap_ranking_loss

# ---------------------------------------------------------------------------------------------
# Independent reference implementations (NumPy, float64, from the definitions)
# ---------------------------------------------------------------------------------------------

@functools.cache
def _all_orders(n):
    """All permutations of n items (row k: items from top to bottom) and the items' ranks."""
    orders = np.array(list(itertools.permutations(range(n))), dtype=np.int64).reshape(-1, n)
    return orders, np.argsort(orders, axis=1)


def _objective_of_orders(s, y, orders, ranks):
    """Δ_AP + S for each full ranking (row of ``orders``), straight from the definitions."""
    s = np.asarray(s, np.float64)
    y = np.asarray(y).astype(bool)
    n = s.size
    pos, neg = np.flatnonzero(y), np.flatnonzero(~y)
    y_ranked = y[orders]                                         # (K, n), top to bottom
    precision_at = np.cumsum(y_ranked, axis=1) / np.arange(1, n + 1)
    ap = (precision_at * y_ranked).sum(axis=1) / pos.size        # mean precision at positives
    r = np.where(ranks[:, pos][:, :, None] < ranks[:, neg][:, None, :], 1.0, -1.0)
    joint = (r * (s[pos][:, None] - s[neg][None, :])).sum(axis=(1, 2)) / (pos.size * neg.size)
    return 1.0 - ap + joint


def _brute_force(s, y):
    """(max_R Δ_AP + S, loss) by enumerating every total order of the n examples."""
    s = np.asarray(s, np.float64)
    y = np.asarray(y).astype(bool)
    orders, ranks = _all_orders(s.size)
    best = _objective_of_orders(s, y, orders, ranks).max()
    return best, best - (s[y].mean() - s[~y].mean())


def _order_from_counts(s, y, counts):
    """Rebuilds the total order encoded by ``counts`` (module docstring convention)."""
    s = np.asarray(s, np.float64)
    y = np.asarray(y).astype(bool)
    idx = np.arange(s.size)
    pos = idx[y][np.lexsort((idx[y], -s[y]))]
    neg = idx[~y][np.lexsort((idx[~y], -s[~y]))]
    c_neg = counts[neg]
    assert np.all(np.diff(c_neg) >= 0), "negatives must keep their score order"
    assert np.all((0 <= c_neg) & (c_neg <= pos.size))
    # positive i (0-based) gets key 2i+1; a negative below c positives gets key 2c.
    keys = np.concatenate([2 * np.arange(pos.size) + 1, 2 * c_neg])
    items = np.concatenate([pos, neg])
    order = items[np.argsort(keys, kind="stable")]
    ranks = np.argsort(order)
    # the positives' counts must be the number of negatives above them in that order
    for i in pos:
        assert counts[i] == np.sum(ranks[neg] < ranks[i])
    return order, ranks


def _reference_greedy(s, y):
    """Per-negative greedy of Yue et al. in float64: a Python loop over the negatives (by
    decreasing score), each scanning all |P| + 1 positions. Returns counts (library convention,
    objective ties to the larger count)."""
    s = np.asarray(s, np.float64)
    y = np.asarray(y).astype(bool)
    idx = np.arange(s.size)
    pos = idx[y][np.lexsort((idx[y], -s[y]))]
    neg = idx[~y][np.lexsort((idx[~y], -s[~y]))]
    n_pos, n_neg = pos.size, neg.size
    counts = np.zeros(s.size, np.int64)
    if n_pos == 0 or n_neg == 0:
        return counts
    m = np.arange(1, n_pos + 1)
    for j, jj in enumerate(neg, start=1):
        # |P| x objective of putting negative j below the first c positives, c = 0..|P|:
        # Σ_{m<=c} [2 (s⁺_m − s⁻_j)/|N| − m / ((m+j−1)(m+j))]   (AP gain of passing positive m)
        steps = 2.0 * (s[pos] - s[jj]) / n_neg - m / ((m + j - 1.0) * (m + j))
        values = np.concatenate([[0.0], np.cumsum(steps)])
        counts[jj] = np.flatnonzero(values == values.max())[-1]
    for i_rank, i in enumerate(pos, start=1):
        counts[i] = np.sum(counts[neg] < i_rank)
    return counts


def _objective_of_counts(s, y, counts):
    order, ranks = _order_from_counts(s, y, counts)
    return _objective_of_orders(s, y, order[None], ranks[None])[0]


# ---------------------------------------------------------------------------------------------
# Exactness
# ---------------------------------------------------------------------------------------------

def _brute_force_cases(rng, n):
    """Every labeling of n examples, each with three score draws (small and large continuous
    scales, and heavily tied values): scores and labels of shape (n, 3 * 2^n)."""
    labelings = np.array(list(itertools.product([0, 1], repeat=n)), dtype=np.int32).T
    k = labelings.shape[1]
    scores = np.concatenate([0.3 * rng.normal(size=(n, k)), 3.0 * rng.normal(size=(n, k)),
                             rng.integers(-1, 2, size=(n, k)).astype(np.float64)], axis=1)
    return scores.astype(np.float32), np.tile(labelings, 3)


def _check_against_brute_force(s, y, loss, counts=None):
    if y.sum() in (0, y.size):
        assert loss == 0.0
        if counts is not None:
            assert np.all(counts == 0)
        return
    best, bf_loss = _brute_force(s, y)
    tol = 1e-5 * (1.0 + np.abs(s).max())
    np.testing.assert_allclose(loss, max(bf_loss, 0.0), atol=tol, err_msg=f"s={s}, y={y}")
    assert loss >= 0.0
    if counts is not None:       # the returned ranking attains the max over all n! rankings
        np.testing.assert_allclose(_objective_of_counts(s, y, counts), best, atol=tol,
                                   err_msg=f"s={s}, y={y}, counts={counts}")


def test_brute_force_every_labeling_up_to_7():
    """Every labeling of n = 1..7 examples (three score draws each) against all n! rankings.

    All problems go in one (7, C) call: a problem with n < 7 is padded with dropped entries
    (``where=False``) at random positions, so one compilation covers every case.
    """
    rng = np.random.default_rng(0)
    width = 7
    blocks = []
    for n in range(1, width + 1):
        s, y = _brute_force_cases(rng, n)
        for c in range(s.shape[1]):
            slots = np.sort(rng.choice(width, n, replace=False))
            s_pad = rng.normal(size=width).astype(np.float32) * 100      # junk where dropped
            y_pad = rng.integers(0, 2, width)
            keep = np.zeros(width, bool)
            s_pad[slots], y_pad[slots], keep[slots] = s[:, c], y[:, c], True
            blocks.append((s_pad, y_pad, keep))
    scores, labels, keep = (np.stack(x, axis=1) for x in zip(*blocks))
    loss = np.asarray(ap_ranking_loss(scores, labels, where=keep))
    counts = np.asarray(ap_loss_augmented_ranking(scores, labels, where=keep))
    chex.assert_shape(loss, (len(blocks),))
    chex.assert_shape(counts, (width, len(blocks)))
    assert np.all(counts[~keep] == 0)
    for c in range(len(blocks)):
        k = keep[:, c]
        _check_against_brute_force(scores[k, c], labels[k, c], loss[c], counts[k, c])


@pytest.mark.parametrize("n", [1, 2, 3, 4, 5])
def test_brute_force_unmasked_small_n(n):
    """Same without masks at each small static n (the search tree depth depends on n)."""
    s, y = _brute_force_cases(np.random.default_rng(10 + n), n)
    loss = np.asarray(ap_ranking_loss(s, y))
    for c in range(s.shape[1]):
        _check_against_brute_force(s[:, c], y[:, c], loss[c])


def test_brute_force_catches_a_wrong_ranking():
    """The brute-force check can fail: the ground-truth ranking is not the argmax here."""
    s = np.array([0.1, 0.0, 0.05, -0.2, -0.3], np.float32)
    y = np.array([1, 0, 1, 0, 0])
    best, _ = _brute_force(s, y)
    truth = np.array([0, 2, 0, 2, 2])         # all positives above all negatives
    assert _objective_of_counts(s, y, truth) < best - 1e-3
    got = np.asarray(ap_loss_augmented_ranking(s, y))
    np.testing.assert_allclose(_objective_of_counts(s, y, got), best, atol=1e-6)


@pytest.mark.parametrize("n,pos_frac,ties", [(150, 0.3, False), (150, 0.1, False),
                                             (150, 0.5, True), (150, 0.9, False),
                                             (3001, 0.9, True), (3001, 0.1, False)])
def test_matches_float64_per_negative_reference(n, pos_frac, ties):
    """Same ranking as an independent float64 per-negative loop (objective equal up to float32
    rounding where near-ties could be resolved differently). n = 3001 with 90 % positives leaves
    most rows of the search tree as padding, with large running sums."""
    rng = np.random.default_rng(int(10 * pos_frac))
    y = (rng.random(n) < pos_frac).astype(np.int32)
    y[:2] = [0, 1]
    s = rng.normal(size=n) + y
    if ties:
        s = np.round(s * 4) / 4                # many equal scores
    s = s.astype(np.float32)
    ref = _reference_greedy(s, y)
    got = np.asarray(ap_loss_augmented_ranking(s, y))
    obj_ref, obj_got = _objective_of_counts(s, y, ref), _objective_of_counts(s, y, got)
    np.testing.assert_allclose(obj_got, obj_ref, rtol=0, atol=1e-6)
    assert np.mean(got == ref) >= 0.99
    if n < 1000:
        np.testing.assert_array_equal(got, ref)
    s_star = s[y == 1].astype(np.float64).mean() - s[y == 0].astype(np.float64).mean()
    np.testing.assert_allclose(ap_ranking_loss(s, y), obj_ref - s_star, atol=1e-5)


def test_equal_scores_put_every_negative_on_top():
    s = np.zeros(5, np.float32)
    y = np.array([1, 0, 1, 0, 0])
    counts = np.asarray(ap_loss_augmented_ranking(s, y))
    np.testing.assert_array_equal(counts, [3, 0, 3, 0, 0])
    i = np.arange(1, 3)
    np.testing.assert_allclose(ap_ranking_loss(s, y), 1.0 - np.mean(i / (i + 3)), rtol=1e-6)


def test_separated_scores_give_zero():
    s = jnp.array([5.0, 4.0, 3.0, -3.0, -4.0])
    y = jnp.array([1, 1, 1, 0, 0])
    assert float(ap_ranking_loss(s, y)) == 0.0
    np.testing.assert_array_equal(ap_loss_augmented_ranking(s, y), [0, 0, 0, 3, 3])
    np.testing.assert_array_equal(jax.grad(ap_ranking_loss)(s, y), np.zeros(5))


# Most remaining tests use N = 20 examples and C = 3 classes so that they share compilations.
N, C = 20, 3


def _random_problem(seed, shape=(N, C), pos_frac=0.4):
    rng = np.random.default_rng(seed)
    s = rng.normal(size=shape).astype(np.float32)
    y = (rng.random(shape) < pos_frac).astype(np.int32)
    y[0], y[1] = 1, 0
    return s, y


def test_loss_nonnegative_random():
    rng = np.random.default_rng(0)
    for scale in [1e-3, 0.1, 1.0, 10.0, 1e3]:
        for _ in range(4):
            s = (scale * rng.normal(size=(N, C))).astype(np.float32)
            s[:, 0] = np.round(s[:, 0] / scale) * scale          # ties
            y = (rng.random((N, C)) < rng.random(C)).astype(np.int32)
            loss = np.asarray(ap_ranking_loss(s, y))
            assert np.all(np.isfinite(loss)) and np.all(loss >= 0.0)


# ---------------------------------------------------------------------------------------------
# Gradient
# ---------------------------------------------------------------------------------------------

def test_gradient_matches_finite_differences_and_closed_form():
    s, y = _random_problem(1)
    f = lambda x: jnp.sum(ap_ranking_loss(x, y))
    grad = np.asarray(jax.grad(f)(s))
    counts = np.asarray(ap_loss_augmented_ranking(s, y))
    eps, checked = 1e-2, 0
    for i in range(N):
        for k in range(C):
            e = np.zeros_like(s)
            e[i, k] = eps
            # stay on one linear piece: the argmax must not change within ±eps
            if not (np.array_equal(ap_loss_augmented_ranking(s + e, y), counts)
                    and np.array_equal(ap_loss_augmented_ranking(s - e, y), counts)):
                continue
            fd = (float(f(s + e)) - float(f(s - e))) / (2 * eps)
            np.testing.assert_allclose(grad[i, k], fd, atol=2e-4)
            checked += 1
    assert checked >= N * C // 2
    # closed form: -2 counts/(|P||N|) for positives, 2(|P| - counts)/(|P||N|) for negatives
    p, q = y.sum(0), (1 - y).sum(0)
    expected = np.where(y == 1, -2.0 * counts, 2.0 * (p - counts)) / (p * q)
    np.testing.assert_allclose(grad, expected, rtol=1e-6)


def test_gradient_is_subgradient_of_joint_score():
    """grad = ∂S(R̂)/∂s − ∂S(R*)/∂s with R̂ held fixed."""
    s, y = _random_problem(2, shape=(N,))
    counts = np.asarray(ap_loss_augmented_ranking(s, y))
    _, ranks = _order_from_counts(s, y, counts)
    pos, neg = np.flatnonzero(y), np.flatnonzero(1 - y)
    r = np.where(ranks[pos][:, None] < ranks[neg][None, :], 1.0, -1.0)
    assert np.any(r < 0)                            # R̂ differs from R*
    d_hat = np.zeros(N)
    d_hat[pos] = r.sum(1) / r.size
    d_hat[neg] = -r.sum(0) / r.size
    d_star = np.where(y == 1, 1.0 / pos.size, -1.0 / neg.size)
    np.testing.assert_allclose(jax.grad(ap_ranking_loss)(s, y), d_hat - d_star, atol=1e-6)


# ---------------------------------------------------------------------------------------------
# Transformations, masks, degenerate classes
# ---------------------------------------------------------------------------------------------

def test_jit_and_vmap_agree():
    rng = np.random.default_rng(3)
    s = rng.normal(size=(4, N, C)).astype(np.float32)             # (batch, N, C)
    y = (rng.random((4, N, C)) < 0.3).astype(np.int32)
    w = rng.random((4, N, C)) < 0.8
    loss_fn = lambda a, b, c: ap_ranking_loss(a, b, where=c)
    rank_fn = lambda a, b, c: ap_loss_augmented_ranking(a, b, where=c)
    per_class = np.stack([loss_fn(s[b], y[b], w[b]) for b in range(4)])
    per_column = np.stack([[loss_fn(s[b, :, k], y[b, :, k], w[b, :, k]) for k in range(C)]
                           for b in range(4)])
    np.testing.assert_allclose(per_class, per_column, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(jax.jit(loss_fn)(s[0], y[0], w[0]), per_class[0], rtol=1e-6)
    np.testing.assert_allclose(jax.vmap(loss_fn)(s, y, w), per_class, rtol=1e-6, atol=1e-7)
    counts = np.stack([rank_fn(s[b], y[b], w[b]) for b in range(4)])
    np.testing.assert_array_equal(jax.jit(jax.vmap(rank_fn))(s, y, w), counts)
    np.testing.assert_array_equal(rank_fn(s[0, :, 1], y[0, :, 1], w[0, :, 1]), counts[0, :, 1])
    g = jax.grad(lambda a: loss_fn(a, y[0], w[0]).sum())
    np.testing.assert_allclose(jax.jit(g)(s[0]), g(s[0]), rtol=1e-6, atol=1e-7)


def _keep_mask(rng, n, kept):
    keep = np.zeros(n, bool)
    keep[rng.choice(n, kept, replace=False)] = True
    return keep


@pytest.mark.parametrize("two_d", [False, True])
def test_where_equals_dropping(two_d):
    rng = np.random.default_rng(4)
    s, y = _random_problem(4)
    keep = _keep_mask(rng, N, 12)
    y_garbage = np.where(keep[:, None], y, 7)                     # dropped labels are ignored
    if not two_d:
        s, y, y_garbage = s[:, 0], y[:, 0], y_garbage[:, 0]
    loss_fn = lambda a, b, w=None: ap_ranking_loss(a, b, where=w).sum()
    loss = ap_ranking_loss(s, y_garbage, where=keep)              # (N,) mask for all classes
    counts = np.asarray(ap_loss_augmented_ranking(s, y_garbage, where=keep))
    grad = np.asarray(jax.grad(loss_fn)(s, y_garbage, keep))
    loss_d = ap_ranking_loss(s[keep], y[keep])
    counts_d = np.asarray(ap_loss_augmented_ranking(s[keep], y[keep]))
    grad_d = jax.grad(loss_fn)(s[keep], y[keep])
    assert float(np.min(loss_d)) > 0.0
    np.testing.assert_allclose(loss, loss_d, rtol=1e-6)
    np.testing.assert_array_equal(counts[keep], counts_d)
    np.testing.assert_array_equal(counts[~keep], 0)
    np.testing.assert_allclose(grad[keep], grad_d, rtol=1e-6)
    np.testing.assert_array_equal(grad[~keep], 0.0)


def test_per_class_mask_equals_dropping():
    rng = np.random.default_rng(5)
    s, y = _random_problem(5, pos_frac=0.5)
    w = np.stack([_keep_mask(rng, N, 12) for _ in range(C)], axis=1)
    loss = ap_ranking_loss(s, y, where=w)
    for k in range(C):
        np.testing.assert_allclose(loss[k], ap_ranking_loss(s[w[:, k], k], y[w[:, k], k]),
                                   rtol=1e-6)


@pytest.mark.parametrize("labels,where", [
    ([0, 0, 0, 0], None),
    ([1, 1, 1, 1], None),
    ([1, 0, 1, 0], [True, False, True, False]),    # only positives kept
    ([1, 0, 1, 0], [False, True, False, True]),    # only negatives kept
    ([1, 0, 1, 0], [False] * 4),
])
def test_no_positive_or_no_negative(labels, where):
    s = jnp.asarray(np.random.default_rng(6).normal(size=N), jnp.float32)
    y = jnp.array(labels * (N // 4))
    w = None if where is None else jnp.array(where * (N // 4))
    loss = ap_ranking_loss(s, y, where=w)
    grad = jax.grad(ap_ranking_loss)(s, y, where=w)
    chex.assert_shape(loss, ())
    assert float(loss) == 0.0
    chex.assert_trees_all_equal(grad, jnp.zeros(N))
    np.testing.assert_array_equal(ap_loss_augmented_ranking(s, y, where=w), np.zeros(N))
    chex.assert_trees_all_equal(jax.jit(jax.grad(ap_ranking_loss))(s, y, where=w), jnp.zeros(N))


def test_degenerate_classes_next_to_normal_one():
    s, y = _random_problem(7)
    y[:, 0] = 0                                      # no positive
    y[:, 2] = 1                                      # no negative
    loss = np.asarray(ap_ranking_loss(s, y))
    grad = np.asarray(jax.grad(lambda a: ap_ranking_loss(a, y).sum())(s))
    np.testing.assert_array_equal(loss[[0, 2]], 0.0)
    assert float(loss[1]) > 0.0
    np.testing.assert_array_equal(grad[:, [0, 2]], 0.0)
    np.testing.assert_allclose(loss[1], ap_ranking_loss(s[:, 1], y[:, 1]), rtol=1e-6)


def test_single_example_and_label_dtypes():
    assert float(ap_ranking_loss(jnp.array([1.0]), jnp.array([1]))) == 0.0
    chex.assert_trees_all_equal(ap_ranking_loss(jnp.zeros((0, 2)), jnp.zeros((0, 2))),
                                jnp.zeros(2))
    s, y = _random_problem(8, shape=(N,))
    ref = ap_ranking_loss(s, y)
    for labels in [y.astype(bool), y.astype(np.float32), y.astype(np.uint8)]:
        np.testing.assert_allclose(ap_ranking_loss(s, labels), ref, rtol=1e-7)
    low = ap_ranking_loss(jnp.asarray(s, jnp.bfloat16), y)
    assert low.dtype == jnp.float32
    np.testing.assert_allclose(
        low, ap_ranking_loss(np.asarray(jnp.asarray(s, jnp.bfloat16), np.float32), y),
        rtol=1e-6)


# ---------------------------------------------------------------------------------------------
# Input validation
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("fn", [ap_ranking_loss, ap_loss_augmented_ranking])
def test_bad_inputs_raise(fn):
    s = jnp.zeros((4, 2))
    with pytest.raises(ValueError, match="labels"):
        fn(s, jnp.zeros((4,)))
    with pytest.raises(ValueError, match="labels"):
        fn(s[:, 0], jnp.zeros((3,)))
    with pytest.raises(ValueError, match="labels"):
        fn(s, jnp.array([[0, 1], [2, 0], [0, 0], [1, 1]]))
    with pytest.raises(ValueError, match="labels"):
        fn(s[:, 0], jnp.array([0.0, 0.5, 1.0, 1.0]))
    with pytest.raises(ValueError, match="labels"):
        fn(s[:, 0], jnp.array([-1, 1, 1, -1]))
    with pytest.raises(ValueError, match="where"):
        fn(s, jnp.zeros((4, 2)), where=jnp.ones((2,), bool))
    with pytest.raises(ValueError, match="where"):
        fn(s[:, 0], jnp.zeros((4,)), where=jnp.ones((4, 1), bool))
    with pytest.raises(ValueError, match="scores"):
        fn(jnp.zeros((2, 2, 2)), jnp.zeros((2, 2, 2)))
    with pytest.raises(ValueError, match="scores"):
        fn(jnp.zeros(()), jnp.zeros(()))


def test_value_checks_skipped_under_jit():
    s = jnp.array([0.2, -0.1, 0.4, 0.0, 1.0])
    out = jax.jit(ap_ranking_loss)(s, jnp.array([2, 0, 1, 0, 0]))   # traced labels: no check
    chex.assert_tree_all_finite(out)


def test_objective_ties_go_to_the_ground_truth_order():
    """One positive 0.25 above one negative: keeping or swapping them both give Δ_AP + S = 0.25
    (exactly, in float32); the documented tie-break keeps the ground-truth order."""
    s = jnp.array([0.25, 0.0, 0.0, 0.0, 0.0])
    y = jnp.array([1, 0, 0, 0, 0])
    w = jnp.array([True, True, False, False, False])
    np.testing.assert_array_equal(ap_loss_augmented_ranking(s, y, where=w), [0, 1, 0, 0, 0])
    assert float(ap_ranking_loss(s, y, where=w)) == 0.0
