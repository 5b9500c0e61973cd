"""Tests of wsl_jax.losses against NumPy oracles written from the formulas."""
import functools

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads

from wsl_jax.losses import (
    multiclass_hinge,
    multilabel_hinge,
    multilabel_soft_margin,
    softmax_cross_entropy,
)

# ----------------------------------------------------------------------------- oracles


def oracle_softmax_ce(scores, labels):
    shifted = scores - scores.max(-1, keepdims=True)
    log_z = np.log(np.exp(shifted).sum(-1))
    return log_z - np.take_along_axis(shifted, labels[..., None], -1)[..., 0]


def oracle_multiclass_hinge(scores, labels, margin):
    out = np.empty(scores.shape[:-1])
    for idx in np.ndindex(*scores.shape[:-1]):
        s, y = scores[idx], labels[idx]
        out[idx] = max(margin * (c != y) + s[c] for c in range(len(s))) - s[y]
    return out


def _log_sigmoid(x):
    return -np.logaddexp(0.0, -x)


def oracle_torch_multilabel_soft_margin(x, y, weight=None):
    """torch.nn.MultiLabelSoftMarginLoss(reduction='none'), transcribed from its formula."""
    loss = -(y * _log_sigmoid(x) + (1 - y) * _log_sigmoid(-x))
    if weight is not None:
        loss = loss * weight
    return loss.sum(-1) / x.shape[-1]


def oracle_multilabel_hinge(scores, labels, margin):
    return np.maximum(0.0, margin - (2 * labels - 1) * scores).mean(-1)


def _multiclass(seed, shape=(8, 5)):
    rng = np.random.default_rng(seed)
    scores = rng.normal(size=shape).astype(np.float32) * 2
    labels = rng.integers(0, shape[-1], shape[:-1]).astype(np.int32)
    return scores, labels, rng


def _multilabel(seed, shape=(8, 5)):
    rng = np.random.default_rng(seed)
    scores = rng.normal(size=shape).astype(np.float32) * 3
    labels = (rng.random(shape) < 0.4).astype(np.int32)
    return scores, labels, rng


# ----------------------------------------------------------------------------- values


@pytest.mark.parametrize("shape", [(8, 5), (2, 3, 4)])
def test_softmax_cross_entropy(shape):
    scores, labels, _ = _multiclass(0, shape)
    out = softmax_cross_entropy(scores, labels)
    chex.assert_shape(out, shape[:-1])
    np.testing.assert_allclose(out, oracle_softmax_ce(scores, labels), rtol=1e-5, atol=1e-6)
    big = scores * 100  # stable for large scores
    np.testing.assert_allclose(softmax_cross_entropy(big, labels), oracle_softmax_ce(big, labels),
                               rtol=1e-5, atol=1e-4)


@pytest.mark.parametrize("margin", [0.0, 1.0, 2.5])
@pytest.mark.parametrize("shape", [(8, 5), (2, 3, 4)])
def test_multiclass_hinge(margin, shape):
    scores, labels, _ = _multiclass(1, shape)
    out = multiclass_hinge(scores, labels, margin=margin)
    chex.assert_shape(out, shape[:-1])
    np.testing.assert_allclose(out, oracle_multiclass_hinge(scores, labels, margin), rtol=1e-6,
                               atol=1e-6)
    assert np.all(np.asarray(out) >= 0)


def test_multiclass_hinge_zero_beyond_margin():
    scores = np.array([[3.0, 1.9, 0.0], [3.0, 2.1, 0.0]])
    labels = np.array([0, 0])
    np.testing.assert_allclose(multiclass_hinge(scores, labels), [0.0, 0.1], atol=1e-6)


def test_multilabel_soft_margin_matches_torch_formula():
    scores, labels, _ = _multilabel(2)
    out = multilabel_soft_margin(scores, labels)
    chex.assert_shape(out, (8,))
    np.testing.assert_allclose(out, oracle_torch_multilabel_soft_margin(scores, labels),
                               rtol=1e-5)
    big = scores * 100
    np.testing.assert_allclose(multilabel_soft_margin(big, labels),
                               oracle_torch_multilabel_soft_margin(big, labels), rtol=1e-5)
    assert np.isfinite(np.asarray(multilabel_soft_margin(big, labels))).all()
    # Bool labels and soft targets are accepted.
    np.testing.assert_allclose(multilabel_soft_margin(scores, labels.astype(bool)), out)
    soft = np.full(scores.shape, 0.25, np.float32)
    np.testing.assert_allclose(multilabel_soft_margin(scores, soft),
                               oracle_torch_multilabel_soft_margin(scores, soft), rtol=1e-5)


@pytest.mark.parametrize("margin", [0.0, 1.0, 2.0])
def test_multilabel_hinge(margin):
    scores, labels, _ = _multilabel(3)
    out = multilabel_hinge(scores, labels, margin=margin)
    chex.assert_shape(out, (8,))
    np.testing.assert_allclose(out, oracle_multilabel_hinge(scores, labels, margin), rtol=1e-6,
                               atol=1e-7)


@pytest.mark.parametrize("loss", [multilabel_soft_margin, multilabel_hinge])
def test_multilabel_where_is_mean_over_kept_classes(loss):
    scores, labels, rng = _multilabel(4)
    oracle = (oracle_torch_multilabel_soft_margin if loss is multilabel_soft_margin
              else functools.partial(oracle_multilabel_hinge, margin=1.0))
    # A class mask shared by all examples.
    classes = np.array([True, False, True, True, False])
    np.testing.assert_allclose(loss(scores, labels, where=classes),
                               oracle(scores[:, classes], labels[:, classes]), rtol=1e-5)
    # A per-entry mask; masked entries may hold anything, even inf.
    where = rng.random(scores.shape) < 0.6
    where[:, 0] = True
    junk = np.where(where, scores, np.inf).astype(np.float32)
    expected = [oracle(scores[i, where[i]], labels[i, where[i]]) for i in range(len(scores))]
    np.testing.assert_allclose(loss(junk, labels, where=where), expected, rtol=1e-5)
    grads = jax.grad(lambda s: loss(s, labels, where=where).sum())(junk)
    assert np.isfinite(np.asarray(grads)).all()
    assert np.all(np.asarray(grads)[~where] == 0)
    # An example with no class counted contributes 0.
    np.testing.assert_allclose(loss(scores, labels, where=np.zeros(5, bool)), np.zeros(8))


def test_low_precision_scores_upcast():
    scores, labels, _ = _multiclass(5)
    bf16 = jnp.asarray(scores, jnp.bfloat16)
    out = softmax_cross_entropy(bf16, labels)
    assert out.dtype == jnp.float32
    np.testing.assert_allclose(out, oracle_softmax_ce(np.asarray(bf16, np.float32), labels),
                               rtol=1e-5, atol=1e-6)


def test_jit():
    scores, labels, rng = _multiclass(6)
    chex.assert_trees_all_close(jax.jit(softmax_cross_entropy)(scores, labels),
                                softmax_cross_entropy(scores, labels))
    chex.assert_trees_all_close(jax.jit(multiclass_hinge)(scores, labels, margin=0.5),
                                multiclass_hinge(scores, labels, margin=0.5))
    ml_scores, ml_labels, _ = _multilabel(6)
    where = rng.random(ml_scores.shape) < 0.5
    for loss in (multilabel_soft_margin, multilabel_hinge):
        chex.assert_trees_all_close(jax.jit(loss)(ml_scores, ml_labels, where=where),
                                    loss(ml_scores, ml_labels, where=where))


# ----------------------------------------------------------------------------- gradients


def test_smooth_losses_gradients():
    scores, labels, _ = _multiclass(7, (4, 3))
    check_grads(jax.jit(lambda s: softmax_cross_entropy(s, labels)), (scores,), order=2,
                modes=("rev",), atol=1e-2, rtol=1e-2)
    ml_scores, ml_labels, _ = _multilabel(7, (4, 3))
    where = np.array([True, False, True])
    loss = jax.jit(lambda s: multilabel_soft_margin(s, ml_labels, where=where))
    check_grads(loss, (ml_scores,), order=2, modes=("rev",), atol=1e-2, rtol=1e-2)
    # Closed form: d/ds mean_c BCE = (sigmoid(s) - y) / C.
    grad = jax.grad(lambda s: multilabel_soft_margin(s, ml_labels).sum())(ml_scores)
    np.testing.assert_allclose(grad, (1 / (1 + np.exp(-ml_scores)) - ml_labels) / 3, rtol=1e-5,
                               atol=1e-7)


def test_hinge_subgradients():
    scores = np.array([[1.0, 0.5, -1.0], [3.0, 0.0, 1.0]], np.float32)
    labels = np.array([0, 0])
    # Example 0: the violator is class 1 (0.5 + 1 > 1); example 1: no violation.
    grad = jax.grad(lambda s: multiclass_hinge(s, labels).sum())(scores)
    np.testing.assert_allclose(grad, [[-1.0, 1.0, 0.0], [0.0, 0.0, 0.0]])
    check_grads(lambda s: multiclass_hinge(s, labels), (scores,), order=1, modes=("rev",),
                eps=1e-3)
    ml_labels = np.array([[1, 0, 0], [1, 1, 0]])
    grad = jax.grad(lambda s: multilabel_hinge(s, ml_labels).sum())(scores)
    # Active hinges: y=1 with s < 1 gets -1/C, y=0 with s > -1 gets +1/C.
    np.testing.assert_allclose(grad, [[0.0, 1 / 3, 0.0], [0.0, -1 / 3, 1 / 3]], atol=1e-7)
    check_grads(lambda s: multilabel_hinge(s, ml_labels, margin=0.7), (scores,), order=1,
                modes=("rev",), eps=1e-3)


# ----------------------------------------------------------------------------- validation


def test_class_id_losses_reject_bad_inputs():
    scores, labels, _ = _multiclass(8)
    for loss in (softmax_cross_entropy, multiclass_hinge):
        with pytest.raises(ValueError, match="labels"):
            loss(scores, labels[:-1])
        with pytest.raises(ValueError, match=r"labels.*\[0, 5\)"):
            loss(scores, labels + 5)
        with pytest.raises(ValueError, match=r"labels.*\[0, 5\)"):
            loss(scores, labels - 10)
        with pytest.raises(ValueError, match="labels"):
            loss(scores, labels.astype(np.float32))
        # Value checks are skipped under jit.
        jax.jit(loss)(scores, labels + 5)
    with pytest.raises(ValueError, match="margin"):
        multiclass_hinge(scores, labels, margin=-0.5)


def test_multilabel_losses_reject_bad_inputs():
    scores, labels, _ = _multilabel(9)
    for loss in (multilabel_soft_margin, multilabel_hinge):
        with pytest.raises(ValueError, match="labels"):
            loss(scores, labels[:, :3])
        with pytest.raises(ValueError, match="labels"):
            loss(scores, labels * 2)
        with pytest.raises(ValueError, match="labels"):
            loss(scores, labels - 1)
        with pytest.raises(ValueError, match="where"):
            loss(scores, labels, where=np.ones(3, bool))
        jax.jit(loss)(scores, labels * 2)
    with pytest.raises(ValueError, match="labels"):
        multilabel_hinge(scores, np.full(scores.shape, 0.5))
    nan_labels = labels.astype(np.float32)
    nan_labels[0, 0] = np.nan
    with pytest.raises(ValueError, match="labels"):
        multilabel_soft_margin(scores, nan_labels)
    with pytest.raises(ValueError, match="margin"):
        multilabel_hinge(scores, labels, margin=-1.0)
