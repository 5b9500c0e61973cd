"""Tests of wsl_jax.metrics against NumPy oracles written from the definitions and sklearn."""
import functools
import warnings

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from sklearn.metrics import average_precision_score, balanced_accuracy_score

from wsl_jax.metrics import (
    AP_MODES,
    average_precision,
    mean_average_precision,
    per_class_mean_accuracy,
    top1_accuracy,
)

# ----------------------------------------------------------------------------- oracles


def _curve(scores, labels):
    """TP, FP at every distinct threshold (descending) and |P|: `predict positive iff s >= t`."""
    thresholds = np.unique(scores)[::-1]
    tp = np.array([labels[scores >= t].sum() for t in thresholds], dtype=np.float64)
    fp = np.array([(scores >= t).sum() for t in thresholds], dtype=np.float64) - tp
    return tp, fp, labels.sum()


def oracle_noninterp(scores, labels):
    tp, fp, n_pos = _curve(scores, labels)
    recall, precision = tp / n_pos, tp / (tp + fp)
    return np.sum(np.diff(np.concatenate([[0.0], recall])) * precision)


def oracle_voc07_exact(scores, labels):
    tp, fp, n_pos = _curve(scores, labels)
    precision = tp / (tp + fp)
    total = 0.0
    for k in range(11):  # recall >= k/10, decided exactly in integers
        reached = precision[10 * tp >= k * n_pos]
        total += reached.max() if reached.size else 0.0
    return total / 11


def oracle_voc07(scores, labels):
    """The devkit's Python port: float64 recall against ``np.arange(0., 1.1, 0.1)``."""
    tp, fp, n_pos = _curve(scores, labels)
    recall, precision = tp / float(n_pos), tp / (tp + fp)
    total = 0.0
    for t in np.arange(0.0, 1.1, 0.1):
        total += precision[recall >= t].max() / 11 if np.sum(recall >= t) else 0.0
    return total


def devkit_voc07(scores, labels):
    """py-faster-rcnn ``voc_eval``'s ranking + ``voc_ap(use_07_metric=True)``, re-written from its
    definition (one rank per example: only meaningful without tied scores)."""
    order = np.argsort(-np.asarray(scores, np.float64), kind="stable")
    tp = np.cumsum(labels[order] == 1).astype(np.float64)
    fp = np.cumsum(labels[order] == 0).astype(np.float64)
    rec = tp / float(labels.sum())
    prec = tp / np.maximum(tp + fp, np.finfo(np.float64).eps)
    ap = 0.0
    for t in np.arange(0.0, 1.1, 0.1):
        p = 0 if np.sum(rec >= t) == 0 else np.max(prec[rec >= t])
        ap = ap + p / 11.0
    return ap


def oracle_allpoint(scores, labels):
    tp, fp, n_pos = _curve(scores, labels)
    mrec = np.concatenate([[0.0], tp / n_pos, [1.0]])
    mpre = np.concatenate([[0.0], tp / (tp + fp), [0.0]])
    for i in range(len(mpre) - 2, -1, -1):
        mpre[i] = max(mpre[i], mpre[i + 1])
    steps = np.nonzero(mrec[1:] != mrec[:-1])[0]
    return np.sum((mrec[steps + 1] - mrec[steps]) * mpre[steps + 1])


ORACLES = {
    "noninterp": oracle_noninterp,
    "voc07": oracle_voc07,
    "allpoint": oracle_allpoint,
    "voc07_exact": oracle_voc07_exact,
}


def _per_class(oracle, scores, labels, where=None):
    out = []
    for c in range(scores.shape[1]):
        keep = np.ones(len(scores), bool) if where is None else where[:, c]
        s, y = scores[keep, c], labels[keep, c]
        out.append(oracle(s, y) if y.sum() else np.nan)
    return np.array(out)


def _data(seed, ties, n=60, c=6):
    rng = np.random.default_rng(seed)
    scores = rng.integers(0, 5, (n, c)).astype(np.float32) if ties else \
        rng.normal(size=(n, c)).astype(np.float32)
    labels = (rng.random((n, c)) < 0.3).astype(np.int32)
    labels[0] = 1  # every class has a positive
    return scores, labels, rng


# ----------------------------------------------------------------------------- AP values


def test_hand_example():
    scores = np.array([0.9, 0.8, 0.7, 0.6])
    labels = np.array([1, 0, 1, 0])
    np.testing.assert_allclose(average_precision(scores, labels), (1 + 2 / 3) / 2, rtol=1e-6)
    np.testing.assert_allclose(average_precision(scores, labels, mode="allpoint"),
                               0.5 * 1 + 0.5 * 2 / 3, rtol=1e-6)
    np.testing.assert_allclose(average_precision(scores, labels, mode="voc07"),
                               (6 * 1 + 5 * 2 / 3) / 11, rtol=1e-6)


def test_ties_are_one_threshold():
    # Both examples share one threshold: precision 1/2 at recall 1, whatever the order.
    for labels in ([1, 0], [0, 1]):
        for mode in AP_MODES:
            expected = 0.5
            np.testing.assert_allclose(
                average_precision(np.array([1.0, 1.0]), np.array(labels), mode=mode), expected)


def test_voc07_recall_on_a_tenth_follows_the_devkit():
    # 3 positives, 7 negatives, 7 positives: recall reaches exactly 3/10 at precision 1. The
    # devkit's third threshold np.arange(0., 1.1, 0.1)[3] is 0.30000000000000004 > 3/10.
    labels = np.array([1] * 3 + [0] * 7 + [1] * 7)
    scores = -np.arange(len(labels), dtype=np.float32)
    devkit = (3 * 1.0 + 8 * 10 / 17) / 11
    exact = (4 * 1.0 + 7 * 10 / 17) / 11
    np.testing.assert_allclose(devkit_voc07(scores, labels), devkit, rtol=1e-12)
    np.testing.assert_allclose(average_precision(scores, labels, mode="voc07"), devkit, rtol=1e-6)
    np.testing.assert_allclose(
        average_precision(scores, labels, mode="voc07_exact"), exact, rtol=1e-6
    )


@pytest.mark.parametrize("tenth", range(11))
def test_voc07_every_tenth_as_the_devkit(tenth):
    # 10 positives: the first `tenth` of them ranked first, then a negative, then the rest; the
    # recall lands exactly on tenth/10 right before the precision drops.
    labels = np.array([1] * tenth + [0] * 3 + [1] * (10 - tenth) + [0])
    scores = -np.arange(len(labels), dtype=np.float32)
    np.testing.assert_allclose(
        average_precision(scores, labels, mode="voc07"), devkit_voc07(scores, labels), rtol=1e-6
    )
    differs = abs(devkit_voc07(scores, labels) - oracle_voc07_exact(scores, labels)) > 1e-9
    assert differs == (tenth in (3, 6, 7))


def test_voc07_equals_the_devkit_on_small_random_cases():
    rng = np.random.default_rng(17)
    differ = 0
    for _ in range(400):
        n = int(rng.integers(2, 25))
        labels = (rng.random(n) < 0.5).astype(np.int32)
        labels[0] = 1
        scores = rng.permutation(n).astype(np.float32)  # no ties: the devkit ranks by sort order
        devkit = devkit_voc07(scores, labels)
        np.testing.assert_allclose(average_precision(scores, labels, mode="voc07"), devkit,
                                   rtol=1e-6, atol=1e-7)
        differ += abs(devkit - oracle_voc07_exact(scores, labels)) > 1e-9
    assert differ > 10  # the exact-tenths variant really is a different metric


@pytest.mark.parametrize("ties", [False, True])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_noninterp_matches_sklearn(seed, ties):
    scores, labels, _ = _data(seed, ties)
    expected = [average_precision_score(labels[:, c], scores[:, c]) for c in range(6)]
    chex.assert_trees_all_close(average_precision(scores, labels), np.float32(expected),
                                rtol=1e-5)
    np.testing.assert_allclose(average_precision(scores[:, 2], labels[:, 2]), expected[2],
                               rtol=1e-5)


@pytest.mark.parametrize("ties", [False, True])
@pytest.mark.parametrize("per_entry", [False, True])
def test_noninterp_where_matches_sklearn_on_kept_subset(ties, per_entry):
    scores, labels, rng = _data(3, ties)
    where = rng.random(scores.shape if per_entry else scores.shape[:1]) < 0.7
    where[0] = True
    full = where if per_entry else np.broadcast_to(where[:, None], scores.shape)
    expected = [average_precision_score(labels[full[:, c], c], scores[full[:, c], c])
                for c in range(6)]
    np.testing.assert_allclose(average_precision(scores, labels, where=where), expected,
                               rtol=1e-5)
    # Dropped entries must not matter, whatever their score.
    scrambled = np.where(full, scores, rng.normal(size=scores.shape) * 100).astype(np.float32)
    scrambled[~full & (rng.random(scores.shape) < 0.5)] = np.nan  # even NaN
    np.testing.assert_allclose(average_precision(scrambled, labels, where=where), expected,
                               rtol=1e-5)


@pytest.mark.parametrize("mode", AP_MODES)
@pytest.mark.parametrize("ties", [False, True])
def test_modes_match_oracles(mode, ties):
    scores, labels, rng = _data(4, ties)
    np.testing.assert_allclose(average_precision(scores, labels, mode=mode),
                               _per_class(ORACLES[mode], scores, labels), rtol=1e-5)
    where = rng.random(scores.shape) < 0.6
    where[0] = True
    np.testing.assert_allclose(average_precision(scores, labels, mode=mode, where=where),
                               _per_class(ORACLES[mode], scores, labels, where), rtol=1e-5)


def test_interpolation_order():
    # The envelope never lowers precision: noninterp <= allpoint, on every class.
    scores, labels, _ = _data(5, ties=False, n=80, c=8)
    non = np.asarray(average_precision(scores, labels))
    allp = np.asarray(average_precision(scores, labels, mode="allpoint"))
    assert np.all(non <= allp + 1e-6)
    assert np.any(non < allp - 1e-3)


@pytest.mark.parametrize("mode", AP_MODES)
def test_permutation_invariant_with_ties(mode):
    scores, labels, rng = _data(6, ties=True)
    perm = rng.permutation(len(scores))
    chex.assert_trees_all_close(average_precision(scores, labels, mode=mode),
                                average_precision(scores[perm], labels[perm], mode=mode),
                                rtol=1e-6)


@pytest.mark.parametrize("mode", AP_MODES)
def test_perfect_and_reversed_rankings(mode):
    labels = np.array([1, 1, 0, 0, 0])
    scores = np.array([5.0, 4.0, 3.0, 2.0, 1.0])
    np.testing.assert_allclose(average_precision(scores, labels, mode=mode), 1.0)
    assert float(average_precision(-scores, labels, mode=mode)) < 0.5


@pytest.mark.parametrize("mode", AP_MODES)
def test_jit(mode):
    scores, labels, rng = _data(7, ties=True)
    where = rng.random(scores.shape) < 0.8
    where[0] = True
    fn = jax.jit(functools.partial(average_precision, mode=mode))
    chex.assert_trees_all_close(fn(scores, labels, where=where),
                                average_precision(scores, labels, mode=mode, where=where))
    jit_map = jax.jit(mean_average_precision, static_argnames="mode")
    chex.assert_trees_all_close(jit_map(scores, labels, mode=mode),
                                mean_average_precision(scores, labels, mode=mode))
    chex.assert_shape(fn(scores[:, 0], labels[:, 0]), ())


def test_low_precision_scores():
    scores, labels, _ = _data(8, ties=False)
    ap = average_precision(jnp.asarray(scores, jnp.bfloat16), labels)
    expected = [average_precision_score(labels[:, c], np.asarray(jnp.asarray(
        scores[:, c], jnp.bfloat16).astype(jnp.float32))) for c in range(6)]
    np.testing.assert_allclose(ap, expected, rtol=1e-5)


@pytest.mark.parametrize("mode", AP_MODES)
def test_class_without_positive_is_nan_and_skipped_by_map(mode):
    scores, labels, _ = _data(9, ties=False)
    labels[:, 1] = 0
    where = np.ones(scores.shape, bool)
    where[labels[:, 3] == 1, 3] = False  # class 3: every positive dropped
    ap = np.asarray(average_precision(scores, labels, mode=mode, where=where))
    assert np.isnan(ap[1]) and np.isnan(ap[3])
    assert np.isfinite(ap[[0, 2, 4, 5]]).all()
    np.testing.assert_allclose(mean_average_precision(scores, labels, mode=mode, where=where),
                               ap[[0, 2, 4, 5]].mean(), rtol=1e-6)
    assert np.isnan(average_precision(scores[:, 1], labels[:, 1], mode=mode))
    assert np.isnan(mean_average_precision(scores, np.zeros_like(labels), mode=mode))


# ----------------------------------------------------------------------------- AP validation


def test_ap_rejects_bad_inputs():
    scores, labels, _ = _data(10, ties=False)
    with pytest.raises(ValueError, match="labels"):
        average_precision(scores, labels[:, :3])
    with pytest.raises(ValueError, match="labels"):
        average_precision(scores, labels * 2)
    with pytest.raises(ValueError, match="labels"):
        mean_average_precision(scores, labels - 1)
    bad = scores.copy()
    bad[4, 2] = np.nan
    with pytest.raises(ValueError, match="scores"):
        average_precision(bad, labels)
    where = np.ones(scores.shape, bool)
    where[4, 2] = False  # a dropped NaN is fine
    np.testing.assert_allclose(average_precision(bad, labels, where=where)[:2],
                               average_precision(scores, labels)[:2], rtol=1e-6)
    with pytest.raises(ValueError, match="mode"):
        average_precision(scores, labels, mode="voc12")
    with pytest.raises(ValueError, match="where"):
        average_precision(scores, labels, where=np.ones((3,), bool))
    with pytest.raises(ValueError, match="scores"):
        average_precision(scores[None], labels[None])
    # Inside jit the value checks are skipped (no error, no host sync).
    jax.jit(average_precision)(bad, labels)


# ----------------------------------------------------------------------------- accuracies


def _classification(seed, n=50, c=5):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, c, n).astype(np.int32)
    logits = rng.normal(size=(n, c)).astype(np.float32)
    logits[np.arange(n), labels] += rng.random(n) * 2  # better than chance
    return logits, labels, rng


def test_top1_accuracy():
    logits, labels, rng = _classification(0)
    pred = logits.argmax(1)
    np.testing.assert_allclose(top1_accuracy(logits, labels), np.mean(pred == labels), rtol=1e-6)
    where = rng.random(len(labels)) < 0.5
    np.testing.assert_allclose(top1_accuracy(logits, labels, where=where),
                               np.mean(pred[where] == labels[where]), rtol=1e-6)
    np.testing.assert_allclose(jax.jit(top1_accuracy)(logits, labels, where=where),
                               np.mean(pred[where] == labels[where]), rtol=1e-6)
    # Ties go to the lowest class index.
    assert float(top1_accuracy(np.zeros((2, 3)), np.array([0, 1]))) == 0.5


def test_per_class_mean_accuracy_matches_balanced_accuracy():
    logits, labels, rng = _classification(1, n=80, c=6)
    labels[labels == 4] = 0  # class 4 absent: excluded from the mean
    pred = logits.argmax(1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        expected = balanced_accuracy_score(labels, pred)
    np.testing.assert_allclose(per_class_mean_accuracy(logits, labels, num_classes=6),
                               expected, rtol=1e-6)
    where = rng.random(len(labels)) < 0.6
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        expected_w = balanced_accuracy_score(labels[where], pred[where])
    fn = jax.jit(per_class_mean_accuracy, static_argnames="num_classes")
    np.testing.assert_allclose(fn(logits, labels, num_classes=6, where=where), expected_w,
                               rtol=1e-6)
    # Differs from top-1 accuracy on imbalanced data.
    labels_imb = np.array([0, 0, 0, 1])
    logits_imb = np.array([[1.0, 0.0]] * 4)
    np.testing.assert_allclose(per_class_mean_accuracy(logits_imb, labels_imb, num_classes=2), 0.5)
    np.testing.assert_allclose(top1_accuracy(logits_imb, labels_imb), 0.75)


def test_accuracy_nothing_counted_is_nan():
    logits, labels, _ = _classification(2)
    none = np.zeros(len(labels), bool)
    assert np.isnan(top1_accuracy(logits, labels, where=none))
    assert np.isnan(per_class_mean_accuracy(logits, labels, num_classes=5, where=none))


def test_accuracy_rejects_bad_inputs():
    logits, labels, _ = _classification(3)
    with pytest.raises(ValueError, match=r"labels.*\[0, 5\)"):
        top1_accuracy(logits, labels + 1)
    with pytest.raises(ValueError, match=r"labels.*\[0, 5\)"):
        per_class_mean_accuracy(logits, labels - 1, num_classes=5)
    with pytest.raises(ValueError, match=r"labels.*\[0, 3\)"):
        per_class_mean_accuracy(logits, labels, num_classes=3)
    with pytest.raises(ValueError, match="labels"):
        top1_accuracy(logits, labels[:-1])
    with pytest.raises(ValueError, match="labels"):
        top1_accuracy(logits, labels.astype(np.float32))
    with pytest.raises(ValueError, match="logits"):
        top1_accuracy(logits[0], labels)
    bad = logits.copy()
    bad[0, 0] = np.nan
    with pytest.raises(ValueError, match="logits"):
        top1_accuracy(bad, labels)
    keep = np.arange(len(labels)) > 0
    np.testing.assert_allclose(top1_accuracy(bad, labels, where=keep),
                               top1_accuracy(logits, labels, where=keep))
    with pytest.raises(ValueError, match="where"):
        top1_accuracy(logits, labels, where=np.ones(3, bool))
    for num_classes in (0, -2, 2.0, True):
        with pytest.raises(ValueError, match="num_classes"):
            per_class_mean_accuracy(logits, labels, num_classes=num_classes)
