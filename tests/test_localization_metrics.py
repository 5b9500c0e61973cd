"""Tests of wsl_jax.localization_metrics: pointing game, confusion matrix, mean IoU."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from wsl_jax.localization_metrics import (
    confusion_matrix,
    mean_iou,
    pointing_game,
    pointing_game_accuracy,
)


# --- oracles ---
def _pointing_np(heat, boxes, box_labels, labels, box_valid, tol):
    """Brute force: the dilated box masks, then a look-up at the arg-max pixel."""
    B, H, W, C = heat.shape
    hits, totals = np.zeros(C, int), np.zeros(C, int)
    cy = np.arange(H)[:, None] + 0.5
    cx = np.arange(W)[None, :] + 0.5
    for b in range(B):
        for c in range(C):
            ks = [k for k in range(boxes.shape[1]) if box_valid[b, k] and box_labels[b, k] == c]
            if not labels[b, c] or not ks:
                continue
            region = np.zeros((H, W), bool)
            for k in ks:
                y0, x0, y1, x1 = boxes[b, k]
                dy = np.maximum(np.maximum(y0 - cy, cy - y1), 0)
                dx = np.maximum(np.maximum(x0 - cx, cx - x1), 0)
                region |= dy**2 + dx**2 <= tol**2
            i, j = np.unravel_index(np.argmax(heat[b, :, :, c]), (H, W))
            totals[c] += 1
            hits[c] += region[i, j]
    return hits, totals


def _peak(H, W, C, peaks):
    heat = np.zeros((1, H, W, C), np.float32)
    for c, (i, j) in peaks.items():
        heat[0, i, j, c] = 1.0
    return heat


# --- pointing game ---
@pytest.mark.parametrize(
    "peak, hit",
    [
        ((15, 15), True),  # inside
        ((34, 15), True),  # centre 34.5: 14.5 px below the box
        ((35, 15), False),  # centre 35.5: 15.5 px below
        ((15, 0), True),  # 9.5 px left
        ((30, 30), True),  # corner: sqrt(2) * 10.5 = 14.85
        ((31, 31), False),  # corner: sqrt(2) * 11.5 = 16.26, inside the dilated square only
        ((20, 31), True),  # centre 31.5: 11.5 px right
    ],
)
def test_pointing_tolerance_margin(peak, hit):
    heat = _peak(50, 50, 1, {0: peak})
    boxes = np.array([[[10.0, 10.0, 20.0, 20.0]]])
    hits, totals = pointing_game(heat, boxes, np.array([[0]]), np.array([[1]]), tolerance=15)
    assert int(totals[0]) == 1
    assert int(hits[0]) == int(hit)
    # the same case with zero tolerance: only inside hits
    hits0, _ = pointing_game(heat, boxes, np.array([[0]]), np.array([[1]]), tolerance=0)
    assert int(hits0[0]) == int(peak == (15, 15))


def test_pointing_any_box_of_the_class_and_only_its_class():
    heat = _peak(40, 40, 3, {0: (35, 35), 1: (35, 35), 2: (5, 5)})
    boxes = np.array([[[0, 0, 4, 4], [30, 30, 40, 40], [0, 0, 10, 10], [0, 0, 1, 1]]], np.float32)
    box_labels = np.array([[0, 0, 2, 1]])  # class 1's only box is far from its peak
    labels = np.array([[1, 1, 1]])
    hits, totals = pointing_game(heat, boxes, box_labels, labels, tolerance=0)
    np.testing.assert_array_equal(hits, [1, 0, 1])
    np.testing.assert_array_equal(totals, [1, 1, 1])


def test_pointing_absent_classes_padding_and_unboxed_classes():
    heat = _peak(20, 20, 3, {0: (2, 2), 1: (2, 2), 2: (2, 2)})
    boxes = np.array([[[0, 0, 5, 5], [0, 0, 5, 5], [0, 0, 5, 5]]], np.float32)
    # class 0: present, boxed -> scored; class 1: boxed but absent -> not scored;
    # class 2: present but its only box is padding (-1 label) -> not scored.
    hits, totals = pointing_game(heat, boxes, np.array([[0, 1, -1]]), np.array([[1, 0, 1]]))
    np.testing.assert_array_equal(hits, [1, 0, 0])
    np.testing.assert_array_equal(totals, [1, 0, 0])
    # an explicit box_valid mask hides a real box of class 0 too
    hits, totals = pointing_game(
        heat,
        boxes,
        np.array([[0, 1, 2]]),
        np.array([[1, 1, 1]]),
        box_valid=np.array([[False, True, True]]),
    )
    np.testing.assert_array_equal(totals, [0, 1, 1])


def test_pointing_matches_oracle_random():
    rng = np.random.default_rng(0)
    B, H, W, C, K = 6, 24, 32, 4, 5
    heat = rng.normal(size=(B, H, W, C)).astype(np.float32)
    y0 = rng.uniform(0, H, size=(B, K))
    x0 = rng.uniform(0, W, size=(B, K))
    boxes = np.stack([y0, x0, y0 + rng.uniform(0, 8, (B, K)), x0 + rng.uniform(0, 8, (B, K))], -1)
    box_labels = rng.integers(0, C, size=(B, K))
    box_valid = rng.uniform(size=(B, K)) < 0.8
    labels = rng.uniform(size=(B, C)) < 0.7
    for tol in (0, 3, 7.5):
        hits, totals = pointing_game(
            heat, boxes, box_labels, labels, box_valid=box_valid, tolerance=tol
        )
        exp_hits, exp_totals = _pointing_np(
            heat, boxes.astype(np.float32), box_labels, labels, box_valid, tol
        )
        np.testing.assert_array_equal(hits, exp_hits)
        np.testing.assert_array_equal(totals, exp_totals)
    assert exp_totals.sum() > 0 and 0 < exp_hits.sum() < exp_totals.sum()  # a non-trivial case


def test_pointing_jit_equals_eager():
    rng = np.random.default_rng(1)
    heat = rng.normal(size=(2, 16, 16, 3)).astype(np.float32)
    boxes = np.tile(np.array([[[0, 0, 8, 8], [8, 8, 16, 16]]], np.float32), (2, 1, 1))
    box_labels = np.array([[0, 1], [2, -1]])
    labels = np.array([[1, 1, 0], [0, 0, 1]])
    f = jax.jit(lambda *a: pointing_game(*a[:4], tolerance=a[4]))
    for got, exp in zip(
        f(heat, boxes, box_labels, labels, 4.0),
        pointing_game(heat, boxes, box_labels, labels, tolerance=4.0),
    ):
        np.testing.assert_array_equal(got, exp)


def test_pointing_accuracy():
    per_class, mean, overall = pointing_game_accuracy(
        np.array([1, 3, 0, 0]), np.array([2, 3, 0, 1])
    )
    np.testing.assert_allclose(per_class, [0.5, 1.0, np.nan, 0.0])
    np.testing.assert_allclose(mean, 0.5)
    np.testing.assert_allclose(overall, 4 / 6)
    _, mean, overall = pointing_game_accuracy(np.zeros(3, int), np.zeros(3, int))
    assert math.isnan(float(mean)) and math.isnan(float(overall))
    f = jax.jit(pointing_game_accuracy)
    np.testing.assert_allclose(f(np.array([1, 2]), np.array([2, 2]))[1], 0.75)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"heatmaps": np.zeros((8, 8, 2))}, "heatmaps"),
        ({"heatmaps": np.zeros((1, 0, 8, 2))}, "heatmaps"),
        ({"boxes": np.zeros((1, 2, 3))}, r"boxes.*\(B, K, 4\)"),
        ({"boxes": np.zeros((1, 2, 5))}, r"boxes.*\(B, K, 4\)"),
        ({"box_labels": np.array([[0, 2]])}, "box_labels"),
        ({"box_labels": np.array([[0, 1, 1]])}, "box_labels"),
        ({"box_labels": np.array([[0.0, 1.0]])}, "box_labels"),
        ({"labels": np.array([[1, 1, 0]])}, r"labels.*\(1, 2\)"),
        ({"box_valid": np.array([[True]])}, "box_valid"),
        ({"box_valid": np.array([[True, True]]), "box_labels": np.array([[0, -1]])}, "box_labels"),
        ({"tolerance": -1}, "tolerance"),
    ],
)
def test_pointing_bad_inputs(kwargs, match):
    args = {
        "heatmaps": np.zeros((1, 8, 8, 2)),
        "boxes": np.zeros((1, 2, 4)),
        "box_labels": np.array([[0, 1]]),
        "labels": np.array([[1, 1]]),
    }
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        pointing_game(**args)


# --- confusion / IoU ---
def _confusion_np(pred, target, n, ignore):
    keep = target != ignore
    return np.bincount(n * target[keep] + pred[keep], minlength=n * n).reshape(n, n)


def _iou_np(conf):
    iou = []
    for c in range(conf.shape[0]):
        union = conf[c, :].sum() + conf[:, c].sum() - conf[c, c]
        iou.append(conf[c, c] / union if union else np.nan)
    iou = np.array(iou)
    return iou, np.nanmean(iou)


def test_confusion_matches_bincount_and_void_ignored():
    rng = np.random.default_rng(2)
    target = rng.integers(0, 5, size=(3, 7, 9))
    target[rng.uniform(size=target.shape) < 0.2] = 255
    pred = rng.integers(0, 5, size=target.shape)
    got = confusion_matrix(pred, target, num_classes=5)
    assert got.dtype == jnp.int32
    exp = _confusion_np(pred, target, 5, 255)
    np.testing.assert_array_equal(got, exp)
    assert int(got.sum()) == int((target != 255).sum())
    # void pixels: whatever is predicted there does not matter
    pred2 = np.where(target == 255, (pred + 1) % 5, pred)
    np.testing.assert_array_equal(confusion_matrix(pred2, target, num_classes=5), exp)


def test_confusion_ignore_index_none_and_custom():
    target = np.array([0, 1, 2, 2])
    pred = np.array([0, 1, 1, 2])
    np.testing.assert_array_equal(
        confusion_matrix(pred, target, num_classes=3, ignore_index=None),
        [[1, 0, 0], [0, 1, 0], [0, 1, 1]],
    )
    np.testing.assert_array_equal(
        confusion_matrix(pred, target, num_classes=3, ignore_index=2),
        [[1, 0, 0], [0, 1, 0], [0, 0, 0]],
    )


def test_confusion_jit_equals_eager():
    rng = np.random.default_rng(3)
    target = rng.integers(0, 4, size=(2, 5, 5))
    target[0, 0] = 255
    pred = rng.integers(0, 4, size=(2, 5, 5))
    f = jax.jit(confusion_matrix, static_argnames=("num_classes", "ignore_index"))
    np.testing.assert_array_equal(
        f(pred, target, num_classes=4), confusion_matrix(pred, target, num_classes=4)
    )


def test_mean_iou_known_answer_and_oracle():
    # background 0, two classes; class 3 absent from both -> NaN, excluded from the mean
    target = np.array([[0, 0, 1, 1, 2, 255]])
    pred = np.array([[0, 1, 1, 1, 0, 3]])
    conf = confusion_matrix(pred, target, num_classes=4)
    iou, miou = mean_iou(conf)
    # class 0: TP 1, union 3; class 1: TP 2, union 3; class 2: TP 0, union 1; class 3: void only
    np.testing.assert_allclose(iou, [1 / 3, 2 / 3, 0.0, np.nan], rtol=1e-6)
    np.testing.assert_allclose(miou, 1 / 3, rtol=1e-6)
    rng = np.random.default_rng(4)
    conf = rng.integers(0, 50, size=(6, 6))
    conf[5, :] = 0
    conf[:, 5] = 0
    iou, miou = mean_iou(conf)
    exp_iou, exp_miou = _iou_np(conf)
    np.testing.assert_allclose(iou, exp_iou, rtol=1e-6)
    np.testing.assert_allclose(miou, exp_miou, rtol=1e-6)
    jit_iou, jit_miou = jax.jit(mean_iou)(jnp.asarray(conf))
    np.testing.assert_allclose(jit_iou, iou, rtol=1e-6)
    np.testing.assert_allclose(jit_miou, miou, rtol=1e-6)


def test_mean_iou_prediction_only_class_counts_and_empty_is_nan():
    conf = np.array([[2, 1], [0, 0]])  # class 1 predicted but never in target: IoU 0, included
    iou, miou = mean_iou(conf)
    np.testing.assert_allclose(iou, [2 / 3, 0.0])
    np.testing.assert_allclose(miou, 1 / 3)
    iou, miou = mean_iou(np.zeros((3, 3), int))
    assert np.isnan(np.asarray(iou)).all() and math.isnan(float(miou))


def test_mean_iou_large_int64_counts_do_not_wrap():
    conf = np.array([[3_000_000_000, 1_000_000_000], [0, 1_000_000_000]], np.int64)
    iou, _ = mean_iou(conf)
    np.testing.assert_allclose(iou, [0.75, 0.5], rtol=1e-6)


@pytest.mark.parametrize(
    "pred, target, match",
    [
        (np.zeros((2, 3), int), np.zeros((3, 2), int), "pred"),
        (np.array([0, 3]), np.array([0, 1]), r"pred.*\[0, 3\)"),
        (np.array([0, 1]), np.array([0, 7]), r"target.*\[0, 3\)"),
        (np.array([0, -1]), np.array([0, 1]), "pred"),
        (np.zeros((1, 0, 4), int), np.zeros((1, 0, 4), int), "empty"),
        (np.zeros(3), np.zeros(3, int), "pred"),
    ],
)
def test_confusion_bad_inputs(pred, target, match):
    with pytest.raises(ValueError, match=match):
        confusion_matrix(pred, target, num_classes=3)


def test_confusion_bad_num_classes_and_mean_iou_shape():
    with pytest.raises(ValueError, match="num_classes"):
        confusion_matrix(np.zeros(2, int), np.zeros(2, int), num_classes=0)
    with pytest.raises(ValueError, match="confusion"):
        mean_iou(np.zeros((2, 3)))
