"""End-to-end: train the metric model with hard negative mining; real CIFAR-10 class vectors."""

from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from wsl_jax.zsl import (
    check_splits,
    correlated_negatives,
    distances,
    eszsl_fit,
    eszsl_scores,
    init_metric_params,
    make_pairs,
    mine_negatives,
    pair_loss,
    predict,
    zsl_accuracy,
)

WORD_TABLE = (
    Path(__file__).resolve().parents[2]
    / ".."
    / "shared"
    / "data"
    / "zsl"
    / "cifar10"
    / "socher_wordTable.mat"
)
CIFAR10 = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")


def _linear_data(attributes, seen, unseen, *, d=24, n_train=1500, n_test=500, noise=0.05, seed=0):
    rng = np.random.default_rng(seed)
    mix = rng.normal(size=(d, attributes.shape[1])) / np.sqrt(attributes.shape[1])
    y_tr, y_te = rng.choice(seen, n_train), rng.choice(unseen, n_test)
    x_tr = attributes[y_tr] @ mix.T + noise * rng.normal(size=(n_train, d))
    x_te = attributes[y_te] @ mix.T + noise * rng.normal(size=(n_test, d))
    return (
        x_tr.astype(np.float32),
        y_tr.astype(np.int32),
        x_te.astype(np.float32),
        y_te.astype(np.int32),
    )


def _train(
    attributes, seen, x_tr, y_tr, *, scheme="hard", steps=200, batch=64, n_neg=5, seed=0, **options
):
    """Adam on the mean pair loss; negatives mined in the jitted step over the seen classes."""
    att_seen = jnp.asarray(attributes[seen], jnp.float32)
    to_seen = np.full(attributes.shape[0], -1, np.int32)
    to_seen[seen] = np.arange(len(seen))  # class id → row of att_seen
    params = init_metric_params(
        jax.random.key(seed), feature_dim=x_tr.shape[1], attribute_dim=attributes.shape[1]
    )
    opt = optax.adamw(1e-2, weight_decay=1e-4)
    state = opt.init(params)

    @jax.jit
    def step(params, state, x, y, key):
        d = jax.lax.stop_gradient(distances(params, x, att_seen))
        neg = mine_negatives(scheme, d, y, n_neg=n_neg, key=key, **options)
        classes, signs = make_pairs(y, neg)
        loss, grads = jax.value_and_grad(
            lambda p: pair_loss(p, x, att_seen, classes, signs, lam=0.1).mean()
        )(params)
        updates, state = opt.update(grads, state, params)
        return optax.apply_updates(params, updates), state, loss

    rng = np.random.default_rng(seed)
    key = jax.random.key(seed + 1)
    losses = []
    for i in range(steps):
        idx = rng.choice(len(x_tr), batch)
        params, state, loss = step(
            params, state, x_tr[idx], to_seen[y_tr[idx]], jax.random.fold_in(key, i)
        )
        losses.append(float(loss))
    return params, losses


def test_end_to_end_hard_mining_beats_chance():
    rng = np.random.default_rng(0)
    att = rng.normal(size=(20, 12))
    att /= np.linalg.norm(att, axis=1, keepdims=True)
    seen, unseen = np.arange(15), np.arange(15, 20)
    x_tr, y_tr, x_te, y_te = _linear_data(att, seen, unseen)
    check_splits(seen, unseen, train_labels=y_tr)
    params, losses = _train(att, seen, x_tr, y_tr, scheme="hard")
    assert np.mean(losses[-20:]) < 0.5 * np.mean(losses[:20])
    pred = predict(params, x_te, jnp.asarray(att, jnp.float32), classes=unseen)
    acc = float(np.mean(np.asarray(pred) == y_te))
    assert acc > 0.6  # chance is 0.2


@pytest.fixture(scope="module")
def word_table():
    if not WORD_TABLE.exists():
        pytest.skip(f"real class vectors not found at {WORD_TABLE} (see ../shared/data/README.md)")
    from scipy.io import loadmat

    mat = loadmat(WORD_TABLE)
    names = tuple(str(np.asarray(n).ravel()[0]) for n in mat["label_names"].ravel())
    return np.asarray(mat["wordTable"], np.float64).T, names  # (10 classes, 50)


def test_socher_word_vectors_zero_shot(word_table):
    vectors, names = word_table
    assert vectors.shape == (10, 50) and names == CIFAR10
    att = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    unseen = np.array([CIFAR10.index("cat"), CIFAR10.index("truck")])  # Socher et al.'s split
    seen = np.setdiff1d(np.arange(10), unseen)
    check_splits(seen, unseen)
    # Correlated mining with the real vectors: for a "cat" image (all classes seen here), "dog"
    # is the most likely negative, and for "truck", "automobile".
    n = 2000
    for query, nearest in (("cat", "dog"), ("truck", "automobile")):
        labels = jnp.full((n,), CIFAR10.index(query), jnp.int32)
        neg = correlated_negatives(
            jnp.zeros((n, 10)),
            labels,
            n_neg=1,
            attributes=att,
            temperature=0.1,
            key=jax.random.key(0),
        )
        assert np.bincount(np.asarray(neg[:, 0]), minlength=10).argmax() == CIFAR10.index(nearest)
    # Synthetic features linear in the word vectors: both the closed form and the metric model
    # separate the two unseen classes.
    x_tr, y_tr, x_te, y_te = _linear_data(att, seen, unseen, d=32, n_train=800, n_test=200)
    v = eszsl_fit(x_tr, np.searchsorted(seen, y_tr), att[seen], gamma=0.1, lam=0.1, coding="01")
    assert float(zsl_accuracy(eszsl_scores(v, x_te, att), y_te, classes=unseen)) > 0.9
    params, _ = _train(att, seen, x_tr, y_tr, scheme="semi_hard", steps=100, n_neg=3, margin=1.0)
    pred = predict(params, x_te, jnp.asarray(att, jnp.float32), classes=unseen)
    assert float(np.mean(np.asarray(pred) == y_te)) > 0.8  # chance 0.5
