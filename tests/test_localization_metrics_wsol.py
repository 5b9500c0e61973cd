"""Tests of the WSOL metrics (MaxBoxAccV2, PxAP) and pointwise localization of
wsl_jax.localization_metrics, against oracles written from the definitions of Choe et al.'s public
evaluation code (clovaai/wsolevaluation: OpenCV contours, +1 IoU, np.histogram bins) and of
Oquab et al.'s ranking protocol."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from wsl_jax.localization_metrics import (
    IOU_THRESHOLDS,
    _contour_boxes,
    cam_thresholds,
    maxboxacc,
    maxboxacc_hits,
    pointwise_localization,
    pointwise_localization_hits,
    pxap,
    pxap_histograms,
)
from wsl_jax.metrics import AP_MODES


# --- oracles: the reference's definitions, with OpenCV where it uses OpenCV ---
def _cv2():
    return pytest.importorskip("cv2", reason="OpenCV (the test extra) is the contour oracle")


def _cv2_boxes(foreground):
    """Every contour of cv2.findContours(RETR_TREE, CHAIN_APPROX_SIMPLE), bounding rectangles as
    [x, y, x + w, y + h] clipped to [W - 1, H - 1]; [0, 0, 0, 0] when there is none."""
    cv2 = _cv2()
    height, width = foreground.shape
    contours = cv2.findContours(
        foreground.astype(np.uint8) * 255, cv2.RETR_TREE, cv2.CHAIN_APPROX_SIMPLE
    )[-2]
    if not contours:
        return [(0, 0, 0, 0)]
    out = []
    for contour in contours:
        x, y, w, h = cv2.boundingRect(contour)
        out.append((x, y, min(x + w, width - 1), min(y + h, height - 1)))
    return out


def _ref_iou(a, b):
    ix = max(0, min(a[2], b[2]) - max(a[0], b[0]) + 1)
    iy = max(0, min(a[3], b[3]) - max(a[1], b[1]) + 1)
    inter = ix * iy
    union = (a[2] - a[0] + 1) * (a[3] - a[1] + 1) + (b[2] - b[0] + 1) * (b[3] - b[1] + 1) - inter
    return 0.0 if union <= 0 else inter / union


def _ref_hits(scoremap, gt, interval, ious):
    """BoxEvaluator.accumulate for one score map in [0, 1] (float64), GT boxes x0y0x1y1."""
    cv2 = _cv2()
    image = np.expand_dims((scoremap * 255).astype(np.uint8), 2)
    out = np.zeros((len(ious), len(np.arange(0, 1, interval))), bool)
    for t, tau in enumerate(np.arange(0, 1, interval)):
        _, binary = cv2.threshold(image, int(tau * np.max(image)), 255, cv2.THRESH_BINARY)
        best = max(_ref_iou(p, g) for p in _cv2_boxes(binary > 0) for g in gt)
        out[:, t] = [best >= d / 100 for d in ious]
    return out


def _ref_pxap(scoremaps, masks, interval):
    """MaskEvaluator: np.histogram of positive (1) / negative (0) pixels, then its AUC formula."""
    edges = np.append(np.arange(0, 1, interval), [1.0, 2.0, 3.0])
    pos = sum(np.histogram(s[m == 1], bins=edges)[0] for s, m in zip(scoremaps, masks))
    neg = sum(np.histogram(s[m == 0], bins=edges)[0] for s, m in zip(scoremaps, masks))
    tp, fp = pos[::-1].cumsum().astype(float), neg[::-1].cumsum().astype(float)
    fn = pos.sum() - tp
    nonzero = (tp + fp) != 0
    with np.errstate(invalid="ignore", divide="ignore"):
        precision, recall = tp / (tp + fp), tp / (tp + fn)
    return (precision[1:] * np.diff(recall))[nonzero[1:]].sum(), pos, neg


def _blobs(rng, h, w, n):
    """A smooth map: a few Gaussian bumps plus a ring, normalised to [0, 1] (attains 0 and 1)."""
    y, x = np.mgrid[:h, :w]
    m = np.zeros((h, w))
    for _ in range(n):
        cy, cx, s = rng.uniform(0, h), rng.uniform(0, w), rng.uniform(1, h / 4)
        m += rng.uniform(0.3, 1) * np.exp(-((y - cy) ** 2 + (x - cx) ** 2) / (2 * s * s))
    r = np.hypot(y - rng.uniform(0, h), x - rng.uniform(0, w))
    m += rng.uniform(0, 1) * np.exp(-((r - rng.uniform(2, h / 3)) ** 2) / 4)  # nested contours
    m = np.round(m / m.max(), int(rng.integers(1, 4)))  # plateaus: tied values
    m = (m - m.min()) / (m.max() - m.min())
    return m.astype(np.float32)


# --- contours ---
def test_wsol_contour_boxes_equal_opencv_retr_tree():
    rng = np.random.default_rng(0)
    for _ in range(1500):
        h, w = rng.integers(1, 16, 2)
        foreground = rng.random((h, w)) < rng.random()
        assert sorted(map(tuple, _contour_boxes(foreground).tolist())) == sorted(
            _cv2_boxes(foreground)
        )
    for _ in range(60):  # thresholded smooth maps: nested rings, holes within holes
        m = _blobs(rng, 40, 33, 4)
        foreground = m > rng.uniform(0.1, 0.8)
        assert sorted(map(tuple, _contour_boxes(foreground).tolist())) == sorted(
            _cv2_boxes(foreground)
        )


def test_wsol_hole_contours_count():
    # A ring: outer box and the hole's border box. The hole alone matches the object.
    ring = np.ones((10, 10), bool)
    ring[3:7, 3:7] = False
    assert sorted(map(tuple, _contour_boxes(ring).tolist())) == [(0, 0, 9, 9), (2, 2, 8, 8)]
    heat = ring.astype(np.float32)[None, :, :, None]
    hits, _ = maxboxacc_hits(heat, [[[2.0, 2.0, 8.0, 8.0]]], [[0]], [[1]], iou_thresholds=(70,))
    assert hits[0, 0, 0, 0]  # IoU 1 through the hole contour; the outer box gives 49/100
    assert not np.any(_contour_boxes(np.zeros((4, 5), bool)))  # no foreground: [0, 0, 0, 0]


# --- MaxBoxAccV2 ---
def test_maxboxacc_hand_computed():
    # 8×8: blob A (rows 1-2, cols 1-2) at 1.0, blob B (rows 5-6, cols 4-6) at 0.6.
    h = np.zeros((1, 8, 8, 1), np.float32)
    h[0, 1:3, 1:3, 0] = 1.0
    h[0, 5:7, 4:7, 0] = 0.6
    gt = [[[5.0, 4.0, 7.0, 7.0]]]  # ints [x0 4, y0 5, x1 7, y1 7]: 4×3 = 12 pixels with the +1
    hits, scored = maxboxacc_hits(h, gt, [[0]], [[1]], cam_curve_interval=0.25)
    # τ = 0, 0.25, 0.5: both blobs; B's box [4, 5, 7, 7] equals the object: IoU 1.
    # τ = 0.75 (level 191 > 153 = floor(0.6·255)): only A, box [1, 1, 3, 3], disjoint: IoU 0.
    np.testing.assert_array_equal(hits[0, 0], [[1, 1, 1, 0]] * 3)
    assert scored.tolist() == [[True]]
    out = maxboxacc(hits[scored].sum(0), scored.sum(), cam_curve_interval=0.25)
    assert out["MaxBoxAccV2"] == 1.0 and out["best_threshold"] == {30: 0.0, 50: 0.0, 70: 0.0}


def test_maxboxacc_empty_map_scores_box_zero():
    # A constant map normalises to zeros: no foreground, the box [0, 0, 0, 0] (1 pixel).
    h = np.full((1, 6, 6, 1), 3.0, np.float32)
    gt = [[[0.0, 0.0, 1.0, 1.0]]]  # ints [0, 0, 1, 1]: 4 pixels, IoU 1/4
    hits, _ = maxboxacc_hits(h, gt, [[0]], [[1]], iou_thresholds=(25, 30))
    assert hits[0, 0, 0].all() and not hits[0, 0, 1].any()


def test_maxboxacc_multibox_multiclass_and_skipped_pairs():
    h = np.zeros((2, 10, 10, 3), np.float32)
    h[0, 6:9, 6:9, 0] = 1.0  # class 0 in image 0: near its second box only
    h[0, 0:2, 0:2, 1] = 1.0  # class 1: present, but no box of its own: not scored
    h[1, 0:3, 0:3, 0] = 1.0  # class 0 absent from image 1: not scored
    boxes = [[[0.0, 0.0, 2.0, 2.0], [6.0, 6.0, 9.0, 9.0], [0.0, 0.0, 0.0, 0.0]]] * 2
    box_labels = [[0, 0, 2], [0, 0, -1]]
    labels = [[1, 1, 0], [0, 0, 0]]
    hits, scored = maxboxacc_hits(h, boxes, box_labels, labels)
    assert scored.tolist() == [[True, False, False], [False, False, False]]
    assert hits[0, 0].all() and not hits[~scored].any()


@pytest.mark.parametrize("seed", [0, 1])
def test_maxboxacc_equals_reference_oracle_random(seed):
    rng = np.random.default_rng(seed)
    num, h, w, c, interval = 6, 28, 36, 2, 0.05
    heat = np.stack([np.stack([_blobs(rng, h, w, 3) for _ in range(c)], -1) for _ in range(num)])
    heat[0, :, :, 0] = 0.0  # an empty map
    boxes = np.zeros((num, 3, 4), np.float32)
    box_labels = rng.integers(0, c, (num, 3))
    for b in range(num):
        for k in range(3):
            y0, x0 = rng.uniform(0, h - 3), rng.uniform(0, w - 3)
            boxes[b, k] = [y0, x0, rng.uniform(y0 + 1, h), rng.uniform(x0 + 1, w)]
    box_labels[1, 2] = -1  # padding
    labels = np.zeros((num, c), bool)
    for b in range(num):
        labels[b, box_labels[b][box_labels[b] >= 0]] = True
    hits, scored = maxboxacc_hits(heat, boxes, box_labels, labels, cam_curve_interval=interval)
    expected = np.zeros_like(hits)
    for b in range(num):
        for k in range(c):
            if scored[b, k]:
                gt = [
                    (int(x0), int(y0), int(x1), int(y1))
                    for (y0, x0, y1, x1), lab in zip(boxes[b], box_labels[b])
                    if lab == k
                ]
                expected[b, k] = _ref_hits(
                    heat[b, :, :, k].astype(np.float64), gt, interval, IOU_THRESHOLDS
                )
    np.testing.assert_array_equal(hits, expected)
    assert scored.sum() == labels.sum() and 0 < hits.sum() < hits.size  # not a trivial case
    out = maxboxacc(hits[scored].sum(0), scored.sum(), cam_curve_interval=interval)
    accuracy = expected[scored].mean(0)
    assert out["MaxBoxAccV2"] == pytest.approx(accuracy.max(1).mean())
    for i, d in enumerate(IOU_THRESHOLDS):
        assert out["MaxBoxAcc"][d] == pytest.approx(accuracy[i].max())
        assert out["best_threshold"][d] == pytest.approx(
            np.arange(0, 1, interval)[np.argmax(accuracy[i])]
        )


def test_maxboxacc_ties_pick_the_first_threshold_and_nothing_scored_is_nan():
    out = maxboxacc(np.array([[1, 3, 3, 2]]), 4, cam_curve_interval=0.25, iou_thresholds=(50,))
    assert out["best_threshold"][50] == 0.25 and out["MaxBoxAcc"][50] == 0.75
    nothing = maxboxacc(np.zeros((3, 100)), 0, at_threshold=0.5)
    assert np.isnan(nothing["MaxBoxAccV2"]) and np.isnan(nothing["at_threshold"][50])
    correct = np.arange(300).reshape(3, 100) % 7
    at = maxboxacc(correct, 10, at_threshold=0.37)["at_threshold"]
    assert at == {30: correct[0, 37] / 10, 50: correct[1, 37] / 10, 70: correct[2, 37] / 10}


def test_maxboxacc_bad_inputs():
    h = np.zeros((1, 4, 4, 1))
    with pytest.raises(ValueError, match="iou_thresholds"):
        maxboxacc_hits(h, [[[0, 0, 1, 1]]], [[0]], [[1]], iou_thresholds=(0.5,))
    with pytest.raises(ValueError, match="cam_curve_interval"):
        maxboxacc_hits(h, [[[0, 0, 1, 1]]], [[0]], [[1]], cam_curve_interval=0)
    with pytest.raises(ValueError, match="labels"):
        maxboxacc_hits(h, [[[0, 0, 1, 1]]], [[0]], [[1, 0]])
    with pytest.raises(ValueError, match="correct"):
        maxboxacc(np.zeros((3, 10)), 5)


# --- PxAP ---
def test_pxap_hand_computed():
    # Scores of 2 positives {0.9, 0.3} and 2 negatives {0.3, 0.0}; thresholds 0, 0.5.
    h = jnp.array([[0.9, 0.3], [0.3, 0.0]]).reshape(1, 2, 2, 1)
    h = h.at[0, 1, 1, 0].set(0.0).at[0, 0, 0, 0].set(1.0)  # map attains 0 and 1: no rescaling
    masks = jnp.array([[[1, 1], [0, 0]]])
    pos, neg = pxap_histograms(h, masks, jnp.array([[1]]), cam_curve_interval=0.5)
    # bins [0, .5), [.5, 1), [1, 2), [2, 3]: positives 1.0 and 0.3, negatives 0.3 and 0.0
    assert pos.tolist() == [1, 0, 1, 0] and neg.tolist() == [2, 0, 0, 0]
    # from the top: (TP, FP) = (0, 0), (1, 0), (1, 0), (2, 2): 1·1/2 + (2/4)·1/2
    assert pxap(pos, neg) == pytest.approx(0.75)


@pytest.mark.parametrize("interval", [0.01, 0.05])
def test_pxap_equals_reference_oracle_random(interval):
    rng = np.random.default_rng(3)
    num, h, w, c = 5, 20, 24, 3
    heat = np.stack([np.stack([_blobs(rng, h, w, 2) for _ in range(c)], -1) for _ in range(num)])
    edges = np.float32(np.arange(0, 1, interval))  # values exactly on (float32) edges
    heat[:, :4] = rng.choice(edges, (num, 4, w, c))
    heat[:, 0, 0], heat[:, 0, 1] = 0.0, 1.0
    masks = rng.integers(0, c + 1, (num, h, w))
    masks[rng.random(masks.shape) < 0.1] = 255  # void
    labels = rng.random((num, c)) < 0.7
    pos, neg = pxap_histograms(heat, masks, labels, cam_curve_interval=interval)
    maps, binary = [], []
    for b in range(num):
        for k in np.nonzero(labels[b])[0]:
            maps.append(heat[b, :, :, k].astype(np.float64))
            binary.append(np.where(masks[b] == 255, 255, (masks[b] == k + 1).astype(int)))
    expected, ref_pos, ref_neg = _ref_pxap(maps, binary, interval)
    np.testing.assert_array_equal(pos, ref_pos)
    np.testing.assert_array_equal(neg, ref_neg)
    assert pxap(pos, neg) == pytest.approx(expected, rel=1e-12)
    jitted = jax.jit(functools.partial(pxap_histograms, cam_curve_interval=interval))
    np.testing.assert_array_equal(jitted(heat, masks, labels)[0], pos)


def test_pxap_without_positives_is_nan_and_bad_inputs():
    assert np.isnan(pxap(np.zeros(4), np.ones(4)))
    with pytest.raises(ValueError, match="masks"):
        pxap_histograms(np.zeros((1, 4, 4, 1)), np.zeros((1, 4, 5), int), [[1]])
    with pytest.raises(ValueError, match="positive"):
        pxap(np.zeros(4), np.zeros(5))


def test_wsol_cam_thresholds_are_the_reference_sweep():
    np.testing.assert_array_equal(cam_thresholds(), np.arange(0, 1, 0.01))
    assert len(cam_thresholds(0.001)) == 1000


# --- pointwise localization (Oquab et al.) ---
def _pointwise_oracle(scores, heat, boxes, box_labels, tol):
    """Per class: rank images by score; TP if the arg-max pixel centre is within tol of a box of
    the class, else FP; recall over the images with the class; VOC 2012 all-point AP."""
    n, h, w, c = heat.shape
    aps = []
    for k in range(c):
        tp = np.zeros(n)
        n_obj = 0
        for b in range(n):
            own = [bx for bx, lab in zip(boxes[b], box_labels[b]) if lab == k]
            n_obj += bool(own)
            i, j = np.unravel_index(np.argmax(heat[b, :, :, k]), (h, w))
            py, px = i + 0.5, j + 0.5
            for y0, x0, y1, x1 in own:
                dy, dx = max(y0 - py, py - y1, 0), max(x0 - px, px - x1, 0)
                tp[b] = tp[b] or dy * dy + dx * dx <= tol * tol
        if not n_obj:
            aps.append(np.nan)
            continue
        order = np.argsort(-scores[:, k], kind="stable")
        ctp, cfp = np.cumsum(tp[order]), np.cumsum(1 - tp[order])
        rec, prec = ctp / n_obj, ctp / (ctp + cfp)
        mrec, mpre = np.r_[0, rec, 1], np.r_[0, prec, 0]
        for i in range(len(mpre) - 2, -1, -1):
            mpre[i] = max(mpre[i], mpre[i + 1])
        idx = np.nonzero(mrec[1:] != mrec[:-1])[0]
        aps.append(np.sum((mrec[idx + 1] - mrec[idx]) * mpre[idx + 1]))
    return np.array(aps)


def test_pointwise_localization_equals_oracle():
    rng = np.random.default_rng(5)
    n, h, w, c, tol = 30, 24, 24, 4, 3.0
    heat = rng.random((n, h, w, c)).astype(np.float32)
    boxes = np.sort(rng.uniform(0, 24, (n, 2, 2, 2)), axis=1).transpose(0, 2, 3, 1)
    boxes = boxes.reshape(n, 2, 4)[:, :, [0, 2, 1, 3]].astype(np.float32)  # ymin xmin ymax xmax
    box_labels = rng.integers(-1, c - 1, (n, 2))  # class c-1 never has an object; -1 padding
    scores = rng.normal(size=(n, c)).astype(np.float32)
    hits, objects = pointwise_localization_hits(heat, boxes, box_labels, tolerance=tol)
    ap, mean = pointwise_localization(scores, hits, objects)
    expected = _pointwise_oracle(scores, heat, boxes, box_labels, tol)
    np.testing.assert_allclose(ap, expected, rtol=1e-5)
    assert np.isnan(ap[-1]) and mean == pytest.approx(np.nanmean(expected), rel=1e-5)
    assert 0 < np.asarray(hits).sum() < np.asarray(objects).sum()  # misses are in the test
    jitted = jax.jit(pointwise_localization_hits)
    np.testing.assert_array_equal(jitted(heat, boxes, box_labels, tolerance=tol)[0], hits)


def test_pointwise_localization_counts_absent_and_missed_images():
    scores = jnp.array([[0.9], [0.8], [0.7], [0.6]])
    objects = jnp.array([[True], [False], [True], [True]])
    hits = jnp.array([[True], [False], [True], [False]])
    # ranks: TP, FP (absent), TP, FP (missed); 3 objects: noninterp (1 + 2/3) / 3
    for mode, expected in (("noninterp", (1 + 2 / 3) / 3), ("allpoint", (1 + 2 / 3) / 3)):
        assert float(pointwise_localization(scores, hits, objects, mode=mode)[0][0]) == (
            pytest.approx(expected)
        )
    assert all(
        np.isfinite(pointwise_localization(scores, hits, objects, mode=m)[1]) for m in AP_MODES
    )


def test_pointwise_localization_bad_inputs():
    with pytest.raises(ValueError, match="no object, no hit"):
        pointwise_localization(
            jnp.ones((2, 1)), jnp.array([[True], [True]]), jnp.array([[True], [False]])
        )
    with pytest.raises(ValueError, match="objects"):
        pointwise_localization(jnp.ones((2, 1)), jnp.ones((2, 1), bool), jnp.ones((2, 2), bool))
    with pytest.raises(ValueError, match="tolerance"):
        pointwise_localization_hits(np.zeros((1, 4, 4, 1)), [[[0, 0, 1, 1]]], [[0]], tolerance=-1)
