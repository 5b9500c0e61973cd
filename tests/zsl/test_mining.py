"""wsl_jax.zsl.mining: each scheme's defining property, jit, sharding and errors."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P
from scipy.stats import chisquare

from wsl_jax.zsl import (
    SCHEMES,
    bootstrap_negatives,
    bootstrap_schedule,
    correlated_negatives,
    hard_negatives,
    make_pairs,
    mine_negatives,
    mixture_negatives,
    resolve_counts,
    semi_hard_negatives,
    uncertain_negatives,
    uniform_negatives,
)

B, C, N_NEG = 32, 10, 3
SEEN = np.array([True] * 8 + [False] * 2)  # classes 8, 9 unseen


def _data(seed=0, batch=B):
    rng = np.random.default_rng(seed)
    dist = jnp.asarray(rng.gamma(2.0, 1.0, size=(batch, C)), jnp.float32)
    labels = jnp.asarray(rng.integers(0, 8, size=batch), jnp.int32)
    att = jnp.asarray(rng.normal(size=(C, 5)), jnp.float32)
    return dist, labels, att


OPTIONS = {
    "uniform": {},
    "hard": {},
    "semi_hard": {"margin": 1.0},
    "uncertain": {"bias": 2.0},
    "correlated": {"temperature": 0.5},  # attributes added below
    "bootstrap": {"hard_fraction": 0.5},
    "mixture": {
        "fractions": {"hard": 0.34, "correlated": 0.33, "uniform": 0.33},
        "temperature": 0.5,
    },
}
RANDOM = ("uniform", "semi_hard", "correlated", "bootstrap", "mixture")


def _options(scheme, att):
    opts = dict(OPTIONS[scheme])
    if scheme in ("correlated", "mixture"):
        opts["attributes"] = att
    return opts


def _valid(labels, seen=SEEN):
    labels = np.asarray(labels)
    return (labels[:, None] != np.arange(C)[None, :]) & np.asarray(seen)[None, :]


def test_all_schemes_covered():
    assert set(SCHEMES) == set(OPTIONS)


@pytest.mark.parametrize("scheme", SCHEMES)
def test_never_positive_distinct_and_seen(scheme):
    dist, labels, att = _data()
    neg = np.asarray(
        mine_negatives(
            scheme,
            dist,
            labels,
            n_neg=N_NEG,
            key=jax.random.key(1),
            seen_mask=SEEN,
            **_options(scheme, att),
        )
    )
    assert neg.shape == (B, N_NEG) and neg.dtype == np.int32
    assert np.all(np.take_along_axis(_valid(labels), neg, axis=1))  # seen and != label
    assert all(len(set(row)) == N_NEG for row in neg.tolist())


@pytest.mark.parametrize("scheme", SCHEMES)
def test_reproducible_from_key(scheme):
    dist, labels, att = _data()
    mine = functools.partial(
        mine_negatives, scheme, dist, labels, n_neg=N_NEG, seen_mask=SEEN, **_options(scheme, att)
    )
    np.testing.assert_array_equal(mine(key=jax.random.key(3)), mine(key=jax.random.key(3)))
    if scheme in RANDOM:
        assert not np.array_equal(mine(key=jax.random.key(3)), mine(key=jax.random.key(4)))


def test_hard_picks_smallest_distances():
    dist, labels, _ = _data(1)
    neg = hard_negatives(dist, labels, n_neg=N_NEG, seen_mask=SEEN)
    masked = np.where(_valid(labels), np.asarray(dist), np.inf)
    np.testing.assert_array_equal(neg, np.argsort(masked, axis=1, kind="stable")[:, :N_NEG])


def test_uncertain_picks_scores_closest_to_zero():
    dist, labels, _ = _data(2)
    bias = 1.7
    neg = uncertain_negatives(dist, labels, n_neg=N_NEG, bias=bias, seen_mask=SEEN)
    masked = np.where(_valid(labels), np.abs(bias - np.asarray(dist)), np.inf)
    np.testing.assert_array_equal(neg, np.argsort(masked, axis=1, kind="stable")[:, :N_NEG])


@pytest.mark.parametrize("fallback", ["hard", "uniform"])
def test_semi_hard_within_band_then_fallback(fallback):
    dist, labels, _ = _data(3)
    margin = 1.5
    neg = np.asarray(
        semi_hard_negatives(
            dist,
            labels,
            n_neg=N_NEG,
            margin=margin,
            key=jax.random.key(0),
            seen_mask=SEEN,
            fallback=fallback,
        )
    )
    d = np.asarray(dist)
    d_pos = d[np.arange(B), np.asarray(labels)][:, None]
    valid = _valid(labels)
    band = valid & (d > d_pos) & (d < d_pos + margin)
    n_band = band.sum(1)
    assert n_band.min() < N_NEG <= n_band.max()  # both situations occur in this batch
    for i in range(B):
        k = min(n_band[i], N_NEG)
        assert band[i, neg[i, :k]].all()  # band members first
        rest = neg[i, k:]
        assert not band[i, rest].any() and valid[i, rest].all()
        if fallback == "hard" and rest.size:
            others = np.where(valid[i] & ~band[i], d[i], np.inf)
            np.testing.assert_array_equal(rest, np.argsort(others, kind="stable")[: rest.size])


def test_semi_hard_samples_uniformly_within_band():
    dist = jnp.array([[1.0, 1.1, 1.2, 1.3, 1.4, 9.0, 0.1]])  # positive 0; band 1..4 for margin 1
    dist = jnp.tile(dist, (4000, 1))
    labels = jnp.zeros(4000, jnp.int32)
    neg = semi_hard_negatives(dist, labels, n_neg=1, margin=1.0, key=jax.random.key(0))
    counts = np.bincount(np.asarray(neg[:, 0]), minlength=7)
    assert counts[[0, 5, 6]].sum() == 0
    assert chisquare(counts[1:5]).pvalue > 1e-4


def test_correlated_follows_softmax_of_similarity():
    _, _, att = _data()
    n, temperature = 20000, 0.5
    labels = jnp.full((n,), 2, jnp.int32)
    neg = correlated_negatives(
        jnp.zeros((n, C)),
        labels,
        n_neg=2,
        attributes=att,
        temperature=temperature,
        key=jax.random.key(0),
        seen_mask=SEEN,
    )
    unit = np.asarray(att, np.float64) / np.linalg.norm(att, axis=1, keepdims=True)
    logits = unit @ unit[2] / temperature
    valid = SEEN & (np.arange(C) != 2)
    prob = np.where(valid, np.exp(logits - logits.max()), 0.0)
    prob /= prob.sum()
    counts = np.bincount(np.asarray(neg[:, 0]), minlength=C)  # first draw: exact softmax
    assert counts[~valid].sum() == 0
    assert chisquare(counts[valid], prob[valid] * n).pvalue > 1e-4
    # second draw: without replacement, from the renormalised remaining probabilities
    first, second = np.asarray(neg[:, 0]), np.asarray(neg[:, 1])
    assert np.all(first != second)
    expected = np.zeros(C)
    for c in np.flatnonzero(valid):
        rest = prob.copy()
        rest[c] = 0.0
        expected += prob[c] * rest / rest.sum()
    counts2 = np.bincount(second, minlength=C)
    assert chisquare(counts2[valid], expected[valid] * n).pvalue > 1e-4


def test_uniform_is_uniform_over_valid():
    n = 9000
    labels = jnp.zeros((n,), jnp.int32)
    neg = uniform_negatives(
        jnp.zeros((n, C)), labels, n_neg=2, key=jax.random.key(5), seen_mask=SEEN
    )
    counts = np.bincount(np.asarray(neg).ravel(), minlength=C)
    assert counts[[0, 8, 9]].sum() == 0
    assert chisquare(counts[1:8]).pvalue > 1e-4


def test_bootstrap_and_mixture_composition():
    dist, labels, _ = _data(4)
    hard = np.asarray(hard_negatives(dist, labels, n_neg=4, seen_mask=SEEN))
    key = jax.random.key(0)
    full = bootstrap_negatives(dist, labels, n_neg=4, hard_fraction=1.0, key=key, seen_mask=SEEN)
    np.testing.assert_array_equal(full, hard)
    half = np.asarray(
        bootstrap_negatives(dist, labels, n_neg=4, hard_fraction=0.5, key=key, seen_mask=SEEN)
    )
    np.testing.assert_array_equal(half[:, :2], hard[:, :2])
    mix = np.asarray(
        mixture_negatives(
            dist, labels, n_neg=4, key=key, seen_mask=SEEN, fractions={"hard": 0.5, "uniform": 0.5}
        )
    )
    np.testing.assert_array_equal(mix[:, :2], hard[:, :2])
    assert all(len(set(r)) == 4 for r in mix.tolist())
    assert resolve_counts({"hard": 0.5, "uniform": 0.5}, 3) == {"hard": 2, "uniform": 1}
    for n in range(1, 8):
        assert sum(resolve_counts({"hard": 0.2, "semi_hard": 0.3, "uniform": 0.5}, n).values()) == n


def test_bootstrap_schedule():
    sched = [float(bootstrap_schedule(s, warmup_steps=5, anneal_steps=10)) for s in range(20)]
    assert sched[:6] == [0.0] * 6 and sched[15:] == [1.0] * 5
    assert np.all(np.diff(sched) >= 0) and sched[10] == pytest.approx(0.5)
    traced = jax.jit(lambda s: bootstrap_schedule(s, warmup_steps=5, anneal_steps=10))
    assert float(traced(10)) == pytest.approx(0.5)


@functools.partial(jax.jit, static_argnames=("scheme",))
def _jit_mine(scheme, dist, labels, key, att):
    return mine_negatives(
        scheme,
        dist,
        labels,
        n_neg=N_NEG,
        key=key,
        seen_mask=jnp.asarray(SEEN),
        **_options(scheme, att),
    )


@jax.jit
def _jit_bootstrap(dist, labels, key, step):
    frac = bootstrap_schedule(step, warmup_steps=2, anneal_steps=4)
    return bootstrap_negatives(dist, labels, n_neg=N_NEG, hard_fraction=frac, key=key)


def test_traced_bootstrap_fraction():
    dist, labels, _ = _data(5)
    key = jax.random.key(0)
    np.testing.assert_array_equal(
        _jit_bootstrap(dist, labels, key, 100), hard_negatives(dist, labels, n_neg=N_NEG)
    )
    np.testing.assert_array_equal(
        _jit_bootstrap(dist, labels, key, 0),
        bootstrap_negatives(dist, labels, n_neg=N_NEG, hard_fraction=0.0, key=key),
    )


@pytest.mark.parametrize("scheme", SCHEMES)
def test_jit_and_sharded_match_eager(scheme):
    if jax.device_count() < 8:
        pytest.skip("needs 8 (virtual CPU) devices; set by the root conftest's XLA_FLAGS")
    dist, labels, att = _data(6)
    key = jax.random.key(7)
    eager = mine_negatives(
        scheme, dist, labels, n_neg=N_NEG, key=key, seen_mask=SEEN, **_options(scheme, att)
    )
    mesh = jax.make_mesh((8,), ("data",))
    rows = NamedSharding(mesh, P("data"))
    sharded = _jit_mine(
        scheme, jax.device_put(dist, rows), jax.device_put(labels, rows), key, att
    )  # jitted: labels, distances and the seen mask are traced
    assert len(sharded.sharding.device_set) == 8
    np.testing.assert_array_equal(sharded, eager)


def test_make_pairs():
    classes, signs = make_pairs(jnp.array([4, 1]), jnp.array([[0, 2], [3, 4]]))
    np.testing.assert_array_equal(classes, [[4, 0, 2], [1, 3, 4]])
    np.testing.assert_array_equal(signs, [[1, -1, -1], [1, -1, -1]])


def test_errors():
    dist, labels, att = _data()
    with pytest.raises(ValueError, match="valid schemes: uniform, hard, semi_hard"):
        mine_negatives("hardest", dist, labels, n_neg=1)
    with pytest.raises(ValueError, match="seen classes minus one"):
        mine_negatives("hard", dist, labels, n_neg=8, seen_mask=SEEN)  # 8 seen → at most 7
    with pytest.raises(ValueError, match="seen classes minus one"):
        mine_negatives("hard", dist, labels, n_neg=C)
    with pytest.raises(ValueError, match="n_neg"):
        mine_negatives("hard", dist, labels, n_neg=0)
    with pytest.raises(ValueError, match="unseen"):
        mine_negatives("hard", dist, labels.at[0].set(9), n_neg=2, seen_mask=SEEN)
    with pytest.raises(ValueError, match="key"):
        mine_negatives("uniform", dist, labels, n_neg=2)
    with pytest.raises(ValueError, match="margin"):
        mine_negatives("semi_hard", dist, labels, n_neg=2, key=jax.random.key(0))
    with pytest.raises(ValueError, match="unexpected"):
        mine_negatives("hard", dist, labels, n_neg=2, margin=1.0)
    with pytest.raises(ValueError, match="rows"):
        mine_negatives(
            "correlated", dist, labels, n_neg=2, key=jax.random.key(0), attributes=att[:5]
        )
    with pytest.raises(ValueError, match="Unknown mixture component"):
        mine_negatives(
            "mixture", dist, labels, n_neg=2, key=jax.random.key(0), fractions={"hardest": 1.0}
        )
    with pytest.raises(ValueError, match="sum to 1"):
        resolve_counts({"hard": 0.5}, 2)
    with pytest.raises(ValueError, match="NaN"):
        hard_negatives(dist.at[0, 0].set(jnp.nan), labels, n_neg=2)
