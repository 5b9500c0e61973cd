"""wsl_jax.zsl.evaluation and checks: ZSL / GZSL metrics on hand-computed cases."""

import jax.numpy as jnp
import numpy as np
import pytest
from sklearn.metrics import balanced_accuracy_score

from wsl_jax.zsl import check_splits, choose_calibration, gzsl_metrics, zsl_accuracy

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
