"""wsl_jax.zsl.evaluation and checks: ZSL / GZSL metrics on hand-computed cases."""

import jax.numpy as jnp
import numpy as np
import pytest
from sklearn.metrics import balanced_accuracy_score

from wsl_jax.zsl import (
    ausuc,
    check_splits,
    choose_calibration,
    gzsl_metrics,
    seen_unseen_curve,
    zsl_accuracy,
)

# Classes 0, 1 seen; 2, 3 unseen.
SEEN, UNSEEN = np.array([0, 1]), np.array([2, 3])
S_SEEN = jnp.array(
    [
        [5.0, 1.0, 4.0, 0.0],  # label 0: right (0)
        [1.0, 5.0, 0.0, 0.0],  # label 1: right (1)
        [3.0, 0.0, 4.0, 0.0],
    ]
)  # label 1: wrong (predicts 2)
L_SEEN = jnp.array([0, 1, 1])
S_UNSEEN = jnp.array(
    [
        [5.0, 0.0, 4.0, 1.0],  # label 2: predicts 0 (2 once γ > 1)
        [0.0, 0.0, 1.0, 3.0],  # label 3: right
        [0.0, 0.0, 3.0, 2.0],
    ]
)  # label 2: right
L_UNSEEN = jnp.array([2, 3, 2])


def test_zsl_accuracy_hand_case():
    # restricted to unseen candidates {2, 3}: row 0 → 2 (right), row 1 → 3, row 2 → 2
    assert float(zsl_accuracy(S_UNSEEN, L_UNSEEN, classes=UNSEEN)) == 1.0
    # over all classes: class 2 1/2, class 3 1/1
    assert float(zsl_accuracy(S_UNSEEN, L_UNSEEN, classes=np.arange(4))) == 0.75


def test_zsl_accuracy_matches_sklearn_balanced_accuracy():
    rng = np.random.default_rng(0)
    scores = rng.normal(size=(200, 12))
    classes = np.array([3, 7, 8, 11, 0])
    labels = rng.choice(classes, 200)
    pred = classes[scores[:, classes].argmax(1)]
    want = balanced_accuracy_score(labels, pred)
    assert float(
        zsl_accuracy(jnp.asarray(scores), jnp.asarray(labels), classes=classes)
    ) == pytest.approx(want, abs=1e-6)


def test_gzsl_hand_case_and_calibration():
    m = gzsl_metrics(S_SEEN, L_SEEN, S_UNSEEN, L_UNSEEN, seen_classes=SEEN, unseen_classes=UNSEEN)
    # s: class 0 1/1, class 1 1/2 → 0.75; u: class 2 1/2, class 3 1/1 → 0.75
    assert float(m["s"]) == 0.75 and float(m["u"]) == 0.75
    assert float(m["H"]) == pytest.approx(0.75)
    m = gzsl_metrics(
        S_SEEN,
        L_SEEN,
        S_UNSEEN,
        L_UNSEEN,
        seen_classes=SEEN,
        unseen_classes=UNSEEN,
        calibration=1.5,
    )
    # seen scores −1.5: S_SEEN rows → 2 (wrong), 1 (5−1.5 > 0, right), 2 (wrong): s = (0 + 1/2)/2
    # S_UNSEEN rows → 2, 3, 2: u = 1
    assert float(m["s"]) == 0.25 and float(m["u"]) == 1.0
    assert float(m["H"]) == pytest.approx(2 * 0.25 / 1.25)
    m = gzsl_metrics(
        S_SEEN,
        L_SEEN,
        S_UNSEEN,
        L_UNSEEN,
        seen_classes=SEEN,
        unseen_classes=UNSEEN,
        calibration=100.0,
    )
    assert float(m["s"]) == 0.0 and float(m["H"]) == 0.0  # u + s > 0 but s = 0


def test_gzsl_harmonic_mean_zero_when_both_zero():
    m = gzsl_metrics(
        -S_SEEN,
        L_SEEN,
        -S_UNSEEN,
        L_UNSEEN,
        seen_classes=[0, 1],
        unseen_classes=[2, 3],
        calibration=0.0,
    )
    assert np.isfinite(float(m["H"]))


def test_choose_calibration_grid_and_default():
    grid = jnp.array([-1.0, 0.0, 0.5, 1.5, 3.0])
    gamma, m = choose_calibration(
        S_SEEN, L_SEEN, S_UNSEEN, L_UNSEEN, seen_classes=SEEN, unseen_classes=UNSEEN, grid=grid
    )
    hs = [
        float(
            gzsl_metrics(
                S_SEEN,
                L_SEEN,
                S_UNSEEN,
                L_UNSEEN,
                seen_classes=SEEN,
                unseen_classes=UNSEEN,
                calibration=g,
            )["H"]
        )
        for g in grid
    ]
    assert gamma == float(grid[int(np.argmax(hs))]) and float(m["H"]) == pytest.approx(max(hs))
    gamma, m = choose_calibration(
        S_SEEN, L_SEEN, S_UNSEEN, L_UNSEEN, seen_classes=SEEN, unseen_classes=UNSEEN
    )
    assert float(m["H"]) >= max(hs) - 1e-6


def test_errors():
    with pytest.raises(ValueError, match="both seen and unseen"):
        check_splits([0, 1, 2], [2, 5])
    with pytest.raises(ValueError, match="training split contains unseen"):
        check_splits([0, 1], [2, 3], train_labels=[0, 3, 1])
    with pytest.raises(ValueError, match="duplicate"):
        check_splits([0, 0], [2])
    with pytest.raises(ValueError, match="both seen and unseen"):
        gzsl_metrics(
            S_SEEN, L_SEEN, S_UNSEEN, L_UNSEEN, seen_classes=[0, 1, 2], unseen_classes=[2, 3]
        )
    with pytest.raises(ValueError, match="not among the candidate"):
        zsl_accuracy(S_UNSEEN, L_UNSEEN, classes=[3])
    with pytest.raises(ValueError, match="labels_unseen"):
        gzsl_metrics(
            S_SEEN,
            L_SEEN,
            S_UNSEEN,
            L_UNSEEN.at[0].set(0),
            seen_classes=SEEN,
            unseen_classes=UNSEEN,
        )
    with pytest.raises(ValueError, match="score columns"):
        zsl_accuracy(S_UNSEEN, L_UNSEEN, classes=[2, 4])
    with pytest.raises(ValueError, match="NaN"):
        zsl_accuracy(S_UNSEEN.at[0, 0].set(jnp.nan), L_UNSEEN, classes=UNSEEN)


def _numpy_gzsl(x_s, y_s, x_u, y_u, seen, unseen, gamma):
    """Plain NumPy (u, s) from the definition: γ off the seen scores, arg-max over seen + unseen
    (first listed on ties), per-class mean recall."""
    candidates = np.concatenate([seen, unseen])

    def acc(x, y):
        x = np.array(x, np.float64)
        x[:, seen] -= gamma
        pred = candidates[np.argmax(x[:, candidates], axis=1)]
        return np.mean([np.mean(pred[y == c] == c) for c in np.unique(y)])

    return acc(x_u, y_u), acc(x_s, y_s)


def _brute_force_ausuc(x_s, y_s, x_u, y_u, seen, unseen, step):
    """AUSUC on a dense γ grid (spacing ``step``, beyond every score difference on both sides)."""
    span = np.abs(np.concatenate([x_s, x_u])).max() * 2 + 1
    points = np.array(
        [
            _numpy_gzsl(x_s, y_s, x_u, y_u, seen, unseen, g)
            for g in np.arange(-span, span + step, step)
        ]
    )
    u, s = points[:, 0], points[:, 1]
    return float(np.sum(np.diff(u) * (s[1:] + s[:-1]) / 2))


def test_ausuc_hand_case():
    # Seen images: margins 1 (right), 5 (right), -1 (wrong among seen); per-class weights
    # 1/2, 1/4, 0. Unseen images: margins 1, -3, -3, all right, weights 1/4, 1/2, 1/4.
    # Curve: (0, .75) for γ ≤ -3, (.75, .75) up to 1, (1, .25) up to 5, (1, 0) beyond.
    c = seen_unseen_curve(
        S_SEEN, L_SEEN, S_UNSEEN, L_UNSEEN, seen_classes=SEEN, unseen_classes=UNSEEN
    )
    np.testing.assert_array_equal(c["gamma"], [-3, -3, -1, 1, 1, 5, np.inf])
    np.testing.assert_allclose(c["u"], [0, 0, 0.75, 0.75, 0.75, 1, 1])
    np.testing.assert_allclose(c["s"], [0.75, 0.75, 0.75, 0.75, 0.75, 0.25, 0])
    area = ausuc(S_SEEN, L_SEEN, S_UNSEEN, L_UNSEEN, seen_classes=SEEN, unseen_classes=UNSEEN)
    assert area == pytest.approx(0.75 * 0.75 + 0.25 * (0.75 + 0.25) / 2)  # 0.6875


def test_ausuc_perfect_and_hopeless_models():
    eye = np.eye(4)
    perfect = ausuc(
        eye[[0, 1]], [0, 1], eye[[2, 3]], [2, 3], seen_classes=[0, 1], unseen_classes=[2, 3]
    )
    assert perfect == 1.0
    # Every unseen image scores higher on a seen class than every seen image does: no γ gets
    # both right; AUSUC 0.
    x_s = np.array([[1.0, 0, 0.5, 0], [0, 1.0, 0.5, 0]])
    x_u = np.array([[3.0, 0, 1.0, 0], [0, 3.0, 0, 1.0]])
    hopeless = ausuc(x_s, [0, 1], x_u, [2, 3], seen_classes=[0, 1], unseen_classes=[2, 3])
    assert hopeless == 0.0


@pytest.mark.parametrize("trial", range(6))
def test_ausuc_matches_brute_force_dense_grid(trial):
    # Scores on a 0.5 lattice: margins are multiples of 0.5, so a grid of step 0.05 (off the
    # lattice by 0.025) visits every piece of the step curve, and the trapezoid areas agree.
    rng = np.random.default_rng(trial)
    c = 7
    seen, unseen = np.array([0, 2, 3, 5]), np.array([1, 4, 6])
    y_s = rng.choice(seen, 25)
    y_u = rng.choice(unseen, 20)
    x_s = rng.integers(-4, 5, size=(25, c)) / 2
    x_u = rng.integers(-4, 5, size=(20, c)) / 2
    got = ausuc(x_s, y_s, x_u, y_u, seen_classes=seen, unseen_classes=unseen)
    expected = _brute_force_ausuc(x_s, y_s, x_u, y_u, seen, unseen, step=0.05)
    assert got == pytest.approx(expected, abs=1e-12)
    # The curve's points are gzsl_metrics at the same γ (the library's own GZSL accuracies).
    curve = seen_unseen_curve(x_s, y_s, x_u, y_u, seen_classes=seen, unseen_classes=unseen)
    for g, u, s in list(zip(curve["gamma"], curve["u"], curve["s"]))[:-1:5]:
        m = gzsl_metrics(
            x_s, y_s, x_u, y_u, seen_classes=seen, unseen_classes=unseen, calibration=g
        )
        assert (float(m["u"]), float(m["s"])) == pytest.approx((u, s), abs=1e-6)
        assert (u, s) == pytest.approx(_numpy_gzsl(x_s, y_s, x_u, y_u, seen, unseen, g))


def test_ausuc_bad_inputs():
    eye = np.eye(4)
    with pytest.raises(ValueError, match="at least one image"):
        ausuc(eye[:0], [], eye[[2]], [2], seen_classes=[0, 1], unseen_classes=[2, 3])
    with pytest.raises(ValueError, match="outside `unseen_classes`"):
        ausuc(eye[[0]], [0], eye[[2]], [1], seen_classes=[0, 1], unseen_classes=[2, 3])
    with pytest.raises(ValueError, match="finite|NaN"):
        ausuc(eye[[0]] * np.nan, [0], eye[[2]], [2], seen_classes=[0, 1], unseen_classes=[2, 3])
