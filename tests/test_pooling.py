"""Tests of wsl_jax.pooling against a NumPy oracle written from SPEC §A1–A2."""

import math

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P
from jax.test_util import check_grads

import wsl_jax
from wsl_jax import selection
from wsl_jax.pooling import CONVENTIONS, class_wise_mean, lse_pool, max_min_pool, resolve_k


# --------------------------------------------------------------------------------------------------
# The oracle: a direct transcription of SPEC §A1 (stable sorts give lowest-index-first ties).
# --------------------------------------------------------------------------------------------------
def oracle_k(k, n, convention="paper"):
    if convention == "wildcat":  # wildcat.pytorch's get_positive_k.
        if k <= 0:
            return 0
        if k < 1:
            return round(k * n)
        return int(min(k, n))
    if isinstance(k, float):
        return min(n, max(1, math.floor(k * n + 0.5)))
    return min(k, n)


def oracle_pool(z, k_top, k_bot, lam, where=None, half=False):
    """Pools the last axis of ``z``; returns the scores and the (sub)gradient of their sum."""
    z = np.asarray(z, np.float64)
    out = np.zeros(z.shape[:-1])
    grad = np.zeros_like(z)
    for idx in np.ndindex(z.shape[:-1]):
        row = z[idx]
        ids = np.arange(row.size) if where is None else np.flatnonzero(where[idx])
        if ids.size == 0:
            continue
        vals = row[ids]
        kt, kb = min(k_top, ids.size), min(k_bot, ids.size)
        top = ids[np.argsort(-vals, kind="stable")[:kt]]
        scale = 0.5 if half else 1.0
        out[idx] = scale * row[top].mean()
        grad[idx][top] += scale / kt
        if kb:
            bot = ids[np.argsort(vals, kind="stable")[:kb]]
            out[idx] += scale * lam * row[bot].mean()
            grad[idx][bot] += scale * lam / kb
    return out, grad


def pool_and_grad(z, **kw):
    fn = lambda x: max_min_pool(x, **kw)
    return fn(z), jax.grad(lambda x: fn(x).sum())(z)


# --------------------------------------------------------------------------------------------------
# Values and gradients against the oracle
# --------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "k_max,k_min,lam",
    [
        (1, 0, 1.0),
        (3, 0, 1.0),
        (3, 3, 1.0),
        (5, 2, 0.7),
        (0.2, 0.2, 0.7),
        (0.5, 0.3, 0.0),
        (12, 12, 1.0),
        (1.0, 1, 0.4),
        (9, 7, 2.0),
    ],
)
@pytest.mark.parametrize("kind", ["normal", "ties"])
def test_matches_oracle(k_max, k_min, lam, kind):
    rng = np.random.default_rng(0)
    if kind == "normal":
        z = rng.normal(size=(6, 12)).astype(np.float32)
    else:  # Few distinct values: ties everywhere, including at the k-th score.
        z = rng.integers(-2, 3, size=(6, 12)).astype(np.float32)
    out, grad = pool_and_grad(jnp.asarray(z), k_max=k_max, k_min=k_min, lam=lam)
    expected, expected_grad = oracle_pool(z, oracle_k(k_max, 12), oracle_k(k_min, 12), lam)
    np.testing.assert_allclose(out, expected, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(grad, expected_grad, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("seed", [0, 1])
def test_matches_oracle_on_class_maps(seed):
    """Realistic NHWC class maps (fast path, many rows); seed 1 has heavy ties (exact fallback)."""
    rng = np.random.default_rng(seed)
    maps = rng.normal(size=(4, 14, 14, 24)).astype(np.float32)
    if seed == 1:
        maps = np.round(maps * 2) / 2
    out, grad = pool_and_grad(jnp.asarray(maps), k_max=0.2, k_min=0.2, lam=0.7, axis=(1, 2))
    flat = maps.transpose(0, 3, 1, 2).reshape(4, 24, 196)
    expected, expected_grad = oracle_pool(flat, 39, 39, 0.7)
    np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(
        grad, expected_grad.reshape(4, 24, 14, 14).transpose(0, 2, 3, 1), atol=1e-7
    )


def test_fast_and_exact_selection_agree():
    rng = np.random.default_rng(3)
    rows = np.concatenate(
        [
            rng.normal(size=(2, 50, 16)),
            rng.integers(0, 4, size=(2, 50, 16)),
            rng.standard_cauchy(size=(2, 50, 16)) * 1e3,
        ],
        axis=0,
    ).astype(np.float32)
    rows = jnp.asarray(rows)
    ks = [jnp.full((6, 16), 7, jnp.int32), jnp.full((6, 16), 11, jnp.int32)]
    fast = selection.selection_masks(rows, None, ks, [True, False])
    exact = selection.exact_masks(rows, None, ks, [True, False])
    for f, e in zip(fast, exact):
        np.testing.assert_array_equal(f, e)
        np.testing.assert_array_equal(np.asarray(f).sum(1), 7 if f is fast[0] else 11)


def test_gradients_check_grads():
    z = jax.random.normal(jax.random.key(0), (3, 4, 4, 5))
    fn = lambda x: max_min_pool(x, k_max=3, k_min=2, lam=0.7, axis=(1, 2))
    check_grads(fn, (z,), order=1, modes=("fwd", "rev"), eps=1e-3)
    check_grads(lambda x: lse_pool(x, r=3.0, axis=(1, 2)), (z,), order=2, eps=1e-2)


def test_overlapping_sets_receive_both_contributions():
    z = jnp.array([4.0, 1.0, 3.0])
    out, grad = pool_and_grad(z, k_max=2, k_min=2, lam=0.5)  # 3.0 is in both sets.
    assert float(out) == pytest.approx((4 + 3) / 2 + 0.5 * (1 + 3) / 2)
    np.testing.assert_allclose(grad, [0.5, 0.25, 0.5 + 0.25])


def test_ties_lowest_index_first():
    z = jnp.array([1.0, 1.0, 1.0, 1.0])
    _, grad = pool_and_grad(z, k_max=2, k_min=1, lam=1.0)
    np.testing.assert_allclose(grad, [1.5, 0.5, 0.0, 0.0])
    # -0.0 and +0.0 are one value: the lower index wins either way round.
    for row in ([-0.0, 0.0, -1.0], [0.0, -0.0, -1.0]):
        _, grad = pool_and_grad(jnp.array(row), k_max=1)
        np.testing.assert_array_equal(grad, [1.0, 0.0, 0.0])


def test_single_region_has_no_nan():
    z = jnp.array([[2.5], [-1.0]])
    out, grad = pool_and_grad(z, k_max=0.2, k_min=0.2, lam=0.7)
    np.testing.assert_allclose(out, [2.5 * 1.7, -1.7])
    np.testing.assert_allclose(grad, [[1.7], [1.7]])


# --------------------------------------------------------------------------------------------------
# Special cases expressed as settings
# --------------------------------------------------------------------------------------------------
def test_special_cases():
    z = jax.random.normal(jax.random.key(1), (4, 5, 5, 3))
    flat = np.asarray(z).transpose(0, 3, 1, 2).reshape(4, 3, 25)
    srt = np.sort(flat, axis=-1)
    pool = lambda **kw: np.asarray(max_min_pool(z, axis=(1, 2), **kw))
    np.testing.assert_allclose(pool(k_max=1), jnp.max(z, axis=(1, 2)), rtol=1e-6)  # GMP
    np.testing.assert_allclose(pool(k_max=1.0), jnp.mean(z, axis=(1, 2)), rtol=1e-5)  # GAP
    np.testing.assert_allclose(pool(k_max=25), jnp.mean(z, axis=(1, 2)), rtol=1e-5)  # GAP as count
    np.testing.assert_allclose(pool(k_max=4), srt[..., -4:].mean(-1), rtol=1e-5)  # top-k
    np.testing.assert_allclose(
        pool(k_max=1, k_min=1, lam=1.0), srt[..., -1] + srt[..., 0], rtol=1e-5
    )  # MANTRA
    np.testing.assert_allclose(
        pool(k_max=3, k_min=3, lam=1.0), srt[..., -3:].mean(-1) + srt[..., :3].mean(-1), rtol=1e-5
    )  # WELDON
    np.testing.assert_allclose(
        pool(k_max=0.2, k_min=0.2, lam=0.7),
        srt[..., -5:].mean(-1) + 0.7 * srt[..., :5].mean(-1),
        rtol=1e-5,
    )  # WILDCAT (paper form)


def test_wildcat_convention_matches_official_algorithm():
    """The official forward: full descending sort, ½(mean top + α mean bottom), its own k rule."""
    rng = np.random.default_rng(5)
    z = rng.normal(size=(3, 2, 7, 5)).astype(np.float32)  # NCHW, as the official code.
    n = 35
    for k_max, k_min, alpha in [
        (0.2, 0.2, 0.7),
        (0.5, 0.1, 0.7),
        (3.0, 2.0, 1.0),
        (0.3, 0, 0.7),
        (0.2, 0.2, 0.0),
    ]:
        kt, kb = oracle_k(k_max, n, "wildcat"), oracle_k(k_min, n, "wildcat")
        srt = -np.sort(-z.reshape(3, 2, n), axis=2)
        expected = srt[:, :, :kt].mean(2)
        if kb > 0:
            expected = (expected + alpha * srt[:, :, n - kb :].mean(2)) / 2
        out = max_min_pool(
            jnp.asarray(z), k_max=k_max, k_min=k_min, lam=alpha, axis=(2, 3), convention="wildcat"
        )
        np.testing.assert_allclose(out, expected, rtol=1e-5, err_msg=f"{k_max=} {k_min=} {alpha=}")


def test_resolve_k_rules():
    assert resolve_k(0.2, 196) == 39
    assert resolve_k(0.5, 5) == 3  # Round half up.
    assert resolve_k(0.5, 5, convention="wildcat") == 2  # Python's banker's rounding.
    assert resolve_k(0.001, 10) == 1  # At least one region.
    assert resolve_k(1.0, 10) == 10 and resolve_k(1.0, 10, convention="wildcat") == 1
    assert resolve_k(50, 10) == 10  # Clamped.
    assert resolve_k(np.int64(3), 10) == 3
    assert resolve_k(0, 10, name="k_min", allow_zero=True) == 0


# --------------------------------------------------------------------------------------------------
# Masks
# --------------------------------------------------------------------------------------------------
def test_where_mask():
    rng = np.random.default_rng(2)
    z = rng.normal(size=(5, 9)).astype(np.float32)
    mask = rng.random((5, 9)) > 0.4
    mask[0] = False  # No valid region: 0, zero gradient.
    mask[1] = [True, True] + [False] * 7  # Fewer valid regions than k.
    z_masked_big = np.where(mask, z, 1e6).astype(np.float32)  # Masked regions are never selected.
    out, grad = pool_and_grad(
        jnp.asarray(z_masked_big), k_max=3, k_min=3, lam=0.7, where=jnp.asarray(mask)
    )
    expected, expected_grad = oracle_pool(z, 3, 3, 0.7, where=mask)
    np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(grad, expected_grad, atol=1e-7)
    assert float(out[0]) == 0.0 and not np.any(grad[0])
    # A mask that broadcasts (regions only) is accepted.
    out_b = max_min_pool(jnp.asarray(z), k_max=2, where=jnp.asarray(mask[2]))
    np.testing.assert_allclose(
        out_b, oracle_pool(z, 2, 0, 0, where=np.broadcast_to(mask[2], z.shape))[0], rtol=1e-6
    )


def test_where_mask_on_fast_path():
    rng = np.random.default_rng(4)
    z = rng.normal(size=(3, 60, 8)).astype(np.float32)
    mask = rng.random((3, 60, 8)) > 0.3
    out = max_min_pool(jnp.asarray(z), k_max=0.2, k_min=5, lam=0.7, axis=1, where=jnp.asarray(mask))
    # 0.2 of each row's valid regions (not 12 = 0.2 of the 60 padded ones).
    expected, _ = oracle_pool_per_row(z.transpose(0, 2, 1), mask.transpose(0, 2, 1), 0.2, 5, 0.7)
    np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-6)


def oracle_row_k(k, n_valid, convention, top):
    """The count ``k`` resolves to in a row with ``n_valid`` valid regions (per-row fraction rule)."""
    if n_valid == 0:
        return 0
    if convention == "wildcat":
        if 0 < k < 1:  # A fraction: round(k·n_v), half to even; k⁺ at least one.
            count = round(k * n_valid)
            return max(count, 1) if top else count
        return 0 if k <= 0 else int(min(k, n_valid))
    if isinstance(k, float):
        return 0 if k == 0 else max(1, math.floor(k * n_valid + 0.5))
    return min(k, n_valid)


def oracle_pool_per_row(z, where, k_max, k_min, lam, convention="paper"):
    """Pools the last axis of ``z`` with ``k`` resolved per row; the scores and their sum's gradient."""
    z = np.asarray(z, np.float64)
    out = np.zeros(z.shape[:-1])
    grad = np.zeros_like(z)
    for idx in np.ndindex(z.shape[:-1]):
        ids = np.flatnonzero(where[idx])
        kt = oracle_row_k(k_max, ids.size, convention, top=True)
        kb = oracle_row_k(k_min, ids.size, convention, top=False)
        if kt == 0:
            continue
        vals = z[idx][ids]
        scale = 0.5 if convention == "wildcat" and kb > 0 else 1.0
        top = ids[np.argsort(-vals, kind="stable")[:kt]]
        out[idx] = scale * z[idx][top].mean()
        grad[idx][top] += scale / kt
        if kb:
            bot = ids[np.argsort(vals, kind="stable")[:kb]]
            out[idx] += scale * lam * z[idx][bot].mean()
            grad[idx][bot] += scale * lam / kb
    return out, grad


def _random_mask(rng, shape, n):
    """A mask of ``shape`` (regions last, ``n`` of them) with rows of 0, 1 and all valid regions."""
    mask = rng.random(shape) < rng.uniform(0.1, 0.9, size=shape[:-1] + (1,))
    flat = mask.reshape(-1, n)
    flat[0], flat[1], flat[2] = False, np.arange(n) == n // 2, True
    flat[3] = np.arange(n) < 3  # Small rows: a fraction resolves to 1 there.
    return flat.reshape(shape)


PER_ROW_CASES = [
    ("paper", 1.0, 0.25, 0.4),  # k⁺ = all valid regions of each row (the static shortcut).
    ("paper", 0.05, 0.05, 0.7),  # Resolves to 1 of the padded regions: 1 in every row (arg-max).
    ("paper", 0.15, 0.0, 1.0),  # 2 or more padded, 1 in small rows: the per-row search.
    ("paper", 0.97, 0.6, 0.0),
    ("paper", 0.4, 3, 2.0),  # An int k⁻ beside a float k⁺; λ > 1.
    ("wildcat", 0.3, 0.2, 0.7),
    ("wildcat", 0.5, 0.5, 1.0),  # Half-to-even cases: 2.5 → 2, 1.5 → 2.
    ("wildcat", 0.1, 0.1, 0.7),  # Rounds to 0 in small rows: k⁺ clamped to 1, no bottom term.
    ("wildcat", 3.0, 2.0, 0.7),  # Floats ≥ 1 are counts.
]


@pytest.mark.parametrize("convention,k_max,k_min,lam", PER_ROW_CASES)
@pytest.mark.parametrize(
    "shape,axis,kind",
    [((8, 12), -1, "ties"), ((2, 5, 5, 3), (1, 2), "normal")],
    ids=str,
)
def test_where_float_k_resolves_per_row(convention, k_max, k_min, lam, shape, axis, kind):
    rng = np.random.default_rng(hash((shape, kind)) % 2**32)
    if kind == "normal":
        z = rng.normal(size=shape).astype(np.float32)
    else:
        z = rng.integers(-2, 3, size=shape).astype(np.float32)
    axes = (axis,) if isinstance(axis, int) else axis
    # The oracle's view: pooled axes last, merged.
    last = tuple(i for i in range(len(shape)) if i not in [a % len(shape) for a in axes])
    last += tuple(a % len(shape) for a in axes)
    n = int(np.prod([shape[a] for a in axes]))
    mask_view = _random_mask(rng, tuple(shape[i] for i in last[: -len(axes)]) + (n,), n)
    mask = np.transpose(mask_view.reshape(tuple(shape[i] for i in last)), np.argsort(last)).copy()
    z_view = np.transpose(z, last).reshape(mask_view.shape)
    expected, expected_grad = oracle_pool_per_row(z_view, mask_view, k_max, k_min, lam, convention)
    kw = {"k_max": k_max, "k_min": k_min, "lam": lam, "axis": axis, "convention": convention}
    zj, mj = jnp.asarray(z), jnp.asarray(mask)
    out, grad = pool_and_grad(zj, where=mj, **kw)
    np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-6)
    if len(shape) == 2:
        jitted = jax.jit(lambda x, m: max_min_pool(x, where=m, **kw))(zj, mj)
        np.testing.assert_allclose(jitted, expected, rtol=1e-5, atol=1e-6)
    grad_view = np.transpose(np.asarray(grad), last).reshape(mask_view.shape)
    np.testing.assert_allclose(grad_view, expected_grad, rtol=1e-6, atol=1e-7)
    if len(shape) == 4:  # vmap over the leading axis: the pooled axes shift down by one.
        kw_v = {**kw, "axis": tuple(a % len(shape) - 1 for a in axes)}
        vmapped = jax.vmap(lambda x, m: max_min_pool(x, where=m, **kw_v))(zj, mj)
        np.testing.assert_allclose(vmapped, expected, rtol=1e-5, atol=1e-6)
        g_vmap = jax.vmap(jax.grad(lambda x, m: max_min_pool(x, where=m, **kw_v).sum()))(zj, mj)
        np.testing.assert_allclose(g_vmap, grad, rtol=1e-6, atol=1e-7)


def test_where_float_k_docstring_rule():
    z = jnp.tile(jnp.arange(1.0, 11.0), (2, 1))
    mask = jnp.arange(10) < jnp.array([[10], [4]])
    # 0.4 of 10 regions is 4, of 4 regions 2 (not the 4 of the padded count).
    np.testing.assert_allclose(max_min_pool(z, k_max=0.4, where=mask), [8.5, 3.5])
    # wildcat: round(0.25·10) = 2 and round(0.25·4) = 1; round(0.25·2 = 0.5) = 0 → clamped to 1.
    mask = jnp.arange(10) < jnp.array([[10], [4], [2]])
    out = max_min_pool(jnp.tile(z[:1], (3, 1)), k_max=0.25, where=mask, convention="wildcat")
    np.testing.assert_allclose(out, [9.5, 4.0, 2.0])


def test_where_float_k_check_grads():
    rng = np.random.default_rng(7)
    z = jnp.asarray(rng.permutation(4 * 30 * 3).reshape(4, 30, 3) * 0.1, jnp.float32)  # No ties.
    mask = jnp.asarray(_random_mask(rng, (4, 3, 30), 30).transpose(0, 2, 1))
    for convention in CONVENTIONS:
        kw = {"k_max": 0.3, "k_min": 0.2, "lam": 0.7, "axis": 1, "convention": convention}
        check_grads(
            lambda x, kw=kw: max_min_pool(x, where=mask, **kw), (z,), 1, modes=("rev",), eps=1e-2
        )


@pytest.mark.parametrize("convention", CONVENTIONS)
def test_int_k_with_where_and_float_k_without_where_unchanged(convention):
    rng = np.random.default_rng(8)
    z = rng.normal(size=(3, 40, 5)).astype(np.float32)
    mask = rng.random((3, 40, 5)) < 0.3
    mask[0, :, 0] = False
    kw = {"axis": 1, "convention": convention}
    half = convention == "wildcat"
    z_view, m_view = z.transpose(0, 2, 1), mask.transpose(0, 2, 1)
    # Integer counts with a mask: clamped to the valid count of each row, as before.
    out = max_min_pool(jnp.asarray(z), k_max=7, k_min=4, lam=0.7, where=jnp.asarray(mask), **kw)
    expected, _ = oracle_pool(z_view, 7, 4, 0.7, where=m_view, half=half)
    np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-6)
    # Float fractions without a mask: resolved against the n regions, as before; an all-True mask
    # gives the same values.
    for k_max, k_min in [(0.2, 0.1), (0.05, 0.3)]:
        out = max_min_pool(jnp.asarray(z), k_max=k_max, k_min=k_min, lam=0.7, **kw)
        kt, kb = oracle_k(k_max, 40, convention), oracle_k(k_min, 40, convention)
        expected, _ = oracle_pool(z_view, kt, kb, 0.7, half=half and kb > 0)
        np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-6)
        full = jnp.ones(z.shape, bool)
        out_full = max_min_pool(jnp.asarray(z), k_max=k_max, k_min=k_min, lam=0.7, where=full, **kw)
        np.testing.assert_allclose(out_full, out, rtol=1e-6, atol=1e-7)


# --------------------------------------------------------------------------------------------------
# Transformations, devices, dtypes, determinism
# --------------------------------------------------------------------------------------------------
def test_jit_vmap_and_axes_agree():
    z = jax.random.normal(jax.random.key(2), (4, 6, 6, 7))
    kw = dict(k_max=5, k_min=4, lam=0.7)
    eager = max_min_pool(z, axis=(1, 2), **kw)
    jitted = jax.jit(lambda x: max_min_pool(x, axis=(1, 2), **kw))(z)
    vmapped = jax.vmap(lambda x: max_min_pool(x, axis=(0, 1), **kw))(z)
    moved = max_min_pool(jnp.transpose(z, (0, 3, 1, 2)).reshape(4, 7, 36), axis=-1, **kw)
    split = max_min_pool(jnp.transpose(z, (1, 0, 3, 2)), axis=(0, 3), **kw)  # Non-contiguous axes.
    for other in (jitted, vmapped, moved, split):
        chex.assert_trees_all_close(eager, other, rtol=1e-6)
    g_eager = jax.grad(lambda x: max_min_pool(x, axis=(1, 2), **kw).sum())(z)
    g_vmap = jax.vmap(jax.grad(lambda x: max_min_pool(x, axis=(0, 1), **kw).sum()))(z)
    chex.assert_trees_all_close(g_eager, g_vmap)


def test_sharded_batch_on_eight_devices():
    assert jax.device_count() == 8, "the root conftest sets 8 CPU devices"
    mesh = jax.make_mesh((8,), ("data",))
    z = jax.random.normal(jax.random.key(3), (16, 7, 7, 6))
    sharded = jax.device_put(z, NamedSharding(mesh, P("data")))
    fn = jax.jit(
        jax.value_and_grad(
            lambda x: max_min_pool(x, k_max=0.2, k_min=0.2, lam=0.7, axis=(1, 2)).sum()
        )
    )
    value, grad = fn(sharded)
    value_1, grad_1 = fn(z)
    np.testing.assert_allclose(value, value_1, rtol=1e-6)
    np.testing.assert_array_equal(grad, grad_1)
    assert len(grad.sharding.device_set) == 8


def test_bfloat16_accumulates_in_float32():
    z = jax.random.normal(jax.random.key(4), (4, 64)) * 100
    z16 = z.astype(jnp.bfloat16)
    out16 = max_min_pool(z16, k_max=10, k_min=10, lam=0.7)
    assert out16.dtype == jnp.bfloat16
    reference = max_min_pool(z16.astype(jnp.float32), k_max=10, k_min=10, lam=0.7)
    np.testing.assert_allclose(
        out16.astype(jnp.float32), reference.astype(jnp.bfloat16), rtol=0, atol=0
    )
    grad = jax.grad(lambda x: max_min_pool(x, k_max=10).astype(jnp.float32).sum())(z16)
    assert grad.dtype == jnp.bfloat16 and np.all(np.isfinite(np.asarray(grad, np.float32)))


def test_same_input_same_bits():
    z = jax.random.normal(jax.random.key(5), (8, 9, 9, 12))
    fn = jax.jit(
        jax.grad(lambda x: max_min_pool(x, k_max=0.3, k_min=0.3, lam=0.7, axis=(1, 2)).sum())
    )
    np.testing.assert_array_equal(fn(z), fn(z))


def test_nan_scores_propagate_without_hanging():
    rows = jnp.array([[jnp.nan] * 6, [1.0, jnp.nan, 3.0, 0.5, 2.0, -1.0], [1.0, 2, 3, 4, 5, 6]])
    out = max_min_pool(rows, k_max=3, k_min=2, lam=0.7)
    assert np.isnan(out[0]) and np.isnan(out[1])
    np.testing.assert_allclose(out[2], 5.0 + 0.7 * 1.5)


@pytest.mark.parametrize(
    "row",
    [
        [np.inf] * 6,
        [-np.inf] * 6,
        [1, np.inf, -np.inf, 2, 3, 4],
        [np.inf, np.inf, np.inf, 1, 2, 3],
        [3e38, -3e38, 1e38, 0, 1, 2],
    ],
)
def test_infinite_and_extreme_scores_match_the_oracle(row):
    """The selection stays exact; an unselected infinite score makes the result NaN (0 · inf)."""
    z = np.array([row], np.float32)
    out, grad = pool_and_grad(jnp.asarray(z), k_max=3, k_min=2, lam=0.7)
    expected, expected_grad = oracle_pool(z, 3, 2, 0.7)
    np.testing.assert_allclose(grad, expected_grad, rtol=1e-6)
    if np.any(np.isinf(z) & (expected_grad == 0)):
        assert np.isnan(out).all()
    else:
        np.testing.assert_allclose(out, expected, rtol=1e-6)


def test_nan_scores_propagate():
    out = max_min_pool(jnp.array([[1.0, jnp.nan, 3.0], [1.0, 2.0, 3.0]]), k_max=2)
    assert np.isnan(out[0]) and out[1] == 2.5


# --------------------------------------------------------------------------------------------------
# class_wise_mean and lse_pool
# --------------------------------------------------------------------------------------------------
def test_class_wise_mean_is_class_major_with_1_over_m_gradient():
    maps = jnp.arange(2 * 3 * 4, dtype=jnp.float32).reshape(1, 2, 12)  # C=3 classes, M=4 maps.
    out = class_wise_mean(maps, num_maps=4)
    np.testing.assert_allclose(out, np.asarray(maps).reshape(1, 2, 3, 4).mean(-1))
    grad = jax.grad(lambda m: class_wise_mean(m, 4).sum())(maps)
    np.testing.assert_allclose(grad, np.full((1, 2, 12), 0.25))  # Not 1 (the official bug).


def test_lse_pool_limits_and_mask():
    z = jax.random.normal(jax.random.key(6), (3, 10))
    np.testing.assert_allclose(lse_pool(z, r=1e-4), z.mean(-1), atol=1e-3)
    np.testing.assert_allclose(lse_pool(z, r=1e4), z.max(-1), atol=1e-3)
    r = 2.0
    expected = np.log(np.mean(np.exp(r * np.asarray(z, np.float64)), -1)) / r
    np.testing.assert_allclose(lse_pool(z, r=r), expected, rtol=1e-5)
    mask = np.arange(10) < 4
    np.testing.assert_allclose(
        lse_pool(z, r=r, where=jnp.asarray(mask)),
        np.log(np.mean(np.exp(r * np.asarray(z)[:, :4]), -1)) / r,
        rtol=1e-5,
    )
    assert float(lse_pool(z[0], r=r, where=jnp.zeros(10, bool))) == 0.0


# --------------------------------------------------------------------------------------------------
# Bad input: a clear error naming the argument
# --------------------------------------------------------------------------------------------------
Z = jnp.ones((2, 5))


@pytest.mark.parametrize(
    "call,error,match",
    [
        (lambda: max_min_pool(Z, k_max=0), ValueError, "k_max"),
        (lambda: max_min_pool(Z, k_max=-2), ValueError, "k_max"),
        (lambda: max_min_pool(Z, k_max=1.5), ValueError, "k_max.*fraction"),
        (lambda: max_min_pool(Z, k_max=0.0), ValueError, "k_max"),
        (lambda: max_min_pool(Z, k_max=True), TypeError, "k_max"),
        (lambda: max_min_pool(Z, k_max="3"), TypeError, "k_max"),
        (lambda: max_min_pool(Z, k_max=float("nan")), ValueError, "k_max"),
        (lambda: max_min_pool(Z, k_max=2, k_min=-1), ValueError, "k_min"),
        (lambda: max_min_pool(Z, k_max=2, k_min=2.0), ValueError, "k_min"),
        (lambda: max_min_pool(Z, k_max=2, k_min=1, lam=-0.1), ValueError, "lam"),
        (lambda: max_min_pool(Z, k_max=2, k_min=1, lam=float("inf")), ValueError, "lam"),
        (lambda: max_min_pool(Z, k_max=2, axis=2), ValueError, "axis 2"),
        (lambda: max_min_pool(Z, k_max=2, axis=()), ValueError, "axis"),
        (lambda: max_min_pool(Z, k_max=2, axis=(1, -1)), ValueError, "axis"),
        (lambda: max_min_pool(Z, k_max=2, axis=1.0), TypeError, "axis"),
        (lambda: max_min_pool(jnp.ones((2, 0)), k_max=1), ValueError, "empty"),
        (lambda: max_min_pool(Z, k_max=2, where=jnp.ones((3, 5), bool)), ValueError, "where"),
        (lambda: max_min_pool(Z, k_max=2, where=jnp.ones((2, 5))), TypeError, "where"),
        (lambda: max_min_pool(Z, k_max=2, convention="torch"), ValueError, "convention"),
        (lambda: max_min_pool(Z, k_max=0.05, convention="wildcat"), ValueError, "k_max"),
        (lambda: max_min_pool(np.array(["a"]), k_max=1), TypeError, "scores"),
        (lambda: class_wise_mean(jnp.ones((2, 6)), num_maps=2.5), TypeError, "num_maps"),
        (lambda: class_wise_mean(jnp.ones((2, 6)), num_maps=0), ValueError, "num_maps"),
        (lambda: class_wise_mean(jnp.ones((2, 6)), num_maps=4), ValueError, "num_maps"),
        (lambda: lse_pool(Z, r=0.0), ValueError, "r must"),
        (lambda: resolve_k(3, 0), ValueError, "empty"),
    ],
)
def test_bad_input_raises_clear_error(call, error, match):
    with pytest.raises(error, match=match):
        call()


def test_traced_lam_is_accepted():
    fn = jax.jit(lambda z, lam: max_min_pool(z, k_max=1, k_min=1, lam=lam))
    np.testing.assert_allclose(fn(jnp.array([1.0, 3.0]), 0.5), 3.5)
    grad_lam = jax.grad(lambda lam: max_min_pool(jnp.array([1.0, 3.0]), k_max=1, k_min=1, lam=lam))(
        0.5
    )
    assert float(grad_lam) == 1.0  # λ is differentiable: d/dλ = mean of the bottom set.


def test_top_level_export():
    assert wsl_jax.max_min_pool is max_min_pool
    assert wsl_jax.resolve_k is resolve_k
