"""wsl_jax.zsl.eszsl: closed form against NumPy, and zero-shot recovery on linear data."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from wsl_jax.zsl import check_splits, eszsl_fit, eszsl_scores, label_matrix, zsl_accuracy

C, A_DIM, D_FEAT = 20, 10, 40
SEEN, UNSEEN = np.arange(15), np.arange(15, 20)


def _linear_problem(seed=0, n_train=600, n_test=300, noise=0.1, nonneg=True):
    """Features x = M a_y + noise: a linear function of the class attributes.

    Attributes are L2-normalised rows, non-negative like the xlsa17 ``att`` by default.
    """
    rng = np.random.default_rng(seed)
    att = rng.random((C, A_DIM)) if nonneg else rng.normal(size=(C, A_DIM))
    att /= np.linalg.norm(att, axis=1, keepdims=True)
    mix = rng.normal(size=(D_FEAT, A_DIM))
    y_tr, y_te = rng.choice(SEEN, n_train), rng.choice(UNSEEN, n_test)
    x_tr = att[y_tr] @ mix.T + noise * rng.normal(size=(n_train, D_FEAT))
    x_te = att[y_te] @ mix.T + noise * rng.normal(size=(n_test, D_FEAT))
    return att, x_tr, y_tr, x_te, y_te


@pytest.mark.parametrize("coding,nonneg", [("pm1", True), ("01", True), ("01", False)])
def test_recovers_unseen_classes(coding, nonneg):
    # {-1, 1} targets (the paper's) also fit a rank-one "all classes are wrong" term that biases
    # unseen scores by s̄ᵀ s_c; with zero-mean random attributes this drops pm1 to ~40 %, so the
    # zero-mean case is checked with {0, 1} targets only.
    att, x_tr, y_tr, x_te, y_te = _linear_problem(nonneg=nonneg)
    check_splits(SEEN, UNSEEN, train_labels=y_tr)
    v = eszsl_fit(
        jnp.asarray(x_tr),
        jnp.asarray(y_tr),
        jnp.asarray(att[SEEN]),
        gamma=0.1,
        lam=0.1,
        coding=coding,
    )
    scores = eszsl_scores(v, jnp.asarray(x_te), jnp.asarray(att))
    assert float(zsl_accuracy(scores, jnp.asarray(y_te), classes=UNSEEN)) > 0.9


@pytest.mark.parametrize("coding", ["pm1", "01"])
def test_matches_numpy_closed_form(coding):
    att, x_tr, y_tr, _, _ = _linear_problem(seed=1, n_train=100)
    gamma, lam = 0.3, 2.0
    # Paper conventions: X d×N, Y N×z, S a×z.
    X, S = x_tr.T, att[SEEN].T
    Y = np.eye(len(SEEN))[y_tr]
    if coding == "pm1":
        Y = 2 * Y - 1
    want = (
        np.linalg.inv(X @ X.T + gamma * np.eye(D_FEAT))
        @ X
        @ Y
        @ S.T
        @ np.linalg.inv(S @ S.T + lam * np.eye(A_DIM))
    )
    with jax.enable_x64(True):
        got = eszsl_fit(
            jnp.asarray(x_tr),
            jnp.asarray(y_tr),
            jnp.asarray(att[SEEN]),
            gamma=gamma,
            lam=lam,
            coding=coding,
        )
        assert got.dtype == jnp.float64
        np.testing.assert_allclose(got, want, rtol=1e-8, atol=1e-10)
        # An explicit Y matrix gives the same V.
        np.testing.assert_allclose(
            eszsl_fit(
                jnp.asarray(x_tr), jnp.asarray(Y), jnp.asarray(att[SEEN]), gamma=gamma, lam=lam
            ),
            got,
            rtol=1e-8,
            atol=1e-10,
        )
    got32 = eszsl_fit(
        jnp.asarray(x_tr, jnp.float32),
        jnp.asarray(y_tr),
        jnp.asarray(att[SEEN], jnp.float32),
        gamma=gamma,
        lam=lam,
        coding=coding,
    )
    assert got32.dtype == jnp.float32  # ill-conditioned XXᵀ here: float32 is only ~1e-2 close
    np.testing.assert_allclose(got32, want, rtol=0, atol=1e-2 * np.abs(want).max())


def test_label_matrix_codings():
    np.testing.assert_array_equal(
        label_matrix(jnp.array([2, 0]), 3, coding="01"), [[0, 0, 1], [1, 0, 0]]
    )
    np.testing.assert_array_equal(label_matrix(jnp.array([2, 0]), 3), [[-1, -1, 1], [1, -1, -1]])


def test_errors():
    att, x_tr, y_tr, _, _ = _linear_problem(n_train=50)
    x, y = jnp.asarray(x_tr), jnp.asarray(y_tr)
    with pytest.raises(ValueError, match="class ids in"):  # attributes of 10 classes, labels to 14
        eszsl_fit(x, y, jnp.asarray(att[:10]), gamma=1.0, lam=1.0)
    with pytest.raises(ValueError, match="rows .classes."):
        eszsl_fit(x, label_matrix(y, 15), jnp.asarray(att[:12]), gamma=1.0, lam=1.0)
    with pytest.raises(ValueError, match="NaN"):
        eszsl_fit(x.at[3, 3].set(jnp.nan), y, jnp.asarray(att[SEEN]), gamma=1.0, lam=1.0)
    with pytest.raises(ValueError, match="positive"):
        eszsl_fit(x, y, jnp.asarray(att[SEEN]), gamma=0.0, lam=1.0)
    with pytest.raises(ValueError, match="rows"):
        eszsl_fit(x[:10], y, jnp.asarray(att[SEEN]), gamma=1.0, lam=1.0)
    v = jnp.zeros((D_FEAT, A_DIM))
    with pytest.raises(ValueError, match="attribute"):
        eszsl_scores(v, x, jnp.ones((C, A_DIM + 1)))
