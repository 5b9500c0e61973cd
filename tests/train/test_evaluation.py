"""Tests of wsl_jax.train.evaluation: the localization metrics of a workdir, thresholds always
chosen on validation (never on test), and the documented defaults without a validation split."""

import warnings

import numpy as np
import pytest

from tests.train.tiny_run import tiny_config as make_tiny_config
from wsl_jax.localization_metrics import IOU_THRESHOLDS, cam_thresholds
from wsl_jax.train import evaluation, loop


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    config = make_tiny_config(tmp_path_factory.mktemp("tfds"))
    workdir = tmp_path_factory.mktemp("run") / "eval"
    loop.train_and_evaluate(config, workdir)
    return workdir


def _scan(correct50, confusions=None, total=10):
    """A hand-made scan: only what choose_thresholds reads."""
    correct = np.zeros((len(IOU_THRESHOLDS), len(cam_thresholds())), np.int64)
    correct[IOU_THRESHOLDS.index(50)] = correct50
    return {
        "has_masks": confusions is not None,
        "confusions": confusions,
        "box_total": total,
        "box_correct": correct,
        "cam_curve_interval": 0.01,
    }


def test_wsol_choose_thresholds_from_validation():
    correct50 = np.zeros(100, np.int64)
    correct50[[37, 52]] = 7  # tie: the first best
    eye, off = np.eye(2, dtype=np.int64) * 5, np.array([[1, 4], [4, 1]])
    confusions = {t: (eye if t == 0.35 else off) for t in evaluation.THRESHOLDS}
    chosen = evaluation.choose_thresholds(_scan(correct50, confusions))
    assert chosen == {"background_threshold": 0.35, "cam_threshold": 0.37}
    assert evaluation.choose_thresholds(_scan(correct50, total=0))["cam_threshold"] is None


def test_wsol_gt_known_and_top1_loc_at_the_chosen_threshold():
    rng = np.random.default_rng(0)
    shape = (len(IOU_THRESHOLDS), 100)
    correct = rng.integers(5, 10, shape)
    scan = {
        "totals": np.zeros(3, np.int64),
        "objects": None,
        "box_total": 10,
        "box_correct": correct,
        "box_correct_top1": correct - rng.integers(0, 5, shape),
        "cam_curve_interval": 0.01,
        "has_masks": False,
        "labels": np.eye(3)[[0, 1, 2, 1]],  # single-label: top-1 localization is reported
        "scores": None,
    }
    chosen = {"background_threshold": None, "cam_threshold": 0.42}
    wsol = evaluation._localization_metrics(scan, chosen)["wsol"]
    i = IOU_THRESHOLDS.index(50)
    assert wsol["gt_known_loc"] == correct[i, 42] / 10
    assert wsol["top1_loc"] == scan["box_correct_top1"][i, 42] / 10
    assert wsol["MaxBoxAcc"]["50"] == correct[i].max() / 10
    scan["labels"] = np.ones((4, 3))  # multi-label: no top-1 localization
    assert "top1_loc" not in evaluation._localization_metrics(scan, chosen)["wsol"]


def test_wsol_no_validation_split_warns_and_uses_the_defaults():
    with pytest.warns(UserWarning, match="no validation split"):
        chosen = evaluation.choose_thresholds(None)
    assert chosen == evaluation.DEFAULT_THRESHOLDS


def test_wsol_pointwise_tolerance_scales_with_the_image():
    config = make_tiny_config("/nonexistent")  # 32×32
    assert evaluation.pointwise_tolerance(config) == pytest.approx(18 * 32 / 224)
    config.eval.pointwise_tolerance = 3.0
    assert evaluation.pointwise_tolerance(config) == 3.0


def test_wsol_evaluate_workdir_reports_the_metrics_thresholds_from_validation(trained, monkeypatch):
    both = evaluation.evaluate_workdir(trained, num_overlays=0)
    for split in ("validation", "test"):
        r = both[split]
        wsol = r["wsol"]
        assert 0.0 <= wsol["MaxBoxAccV2"] <= 1.0 and 0.0 <= wsol["PxAP"] <= 1.0
        assert wsol["MaxBoxAccV2"] == pytest.approx(np.mean(list(wsol["MaxBoxAcc"].values())))
        assert wsol["gt_known_loc"] <= wsol["MaxBoxAcc"]["50"]  # the max over the sweep
        assert 0.0 <= r["pointwise_localization"]["mAP"] <= 1.0
        assert len(r["pointwise_localization"]["AP"]) == 10
        assert "pointing_game" in r and "segmentation" in r
    assert (
        both["validation"]["wsol"]["gt_known_loc"] == both["validation"]["wsol"]["MaxBoxAcc"]["50"]
    )  # the validation accuracy at its own best threshold
    chosen = {
        k: both["test"][key][k]
        for key, k in (("segmentation", "background_threshold"), ("wsol", "cam_threshold"))
    }
    assert chosen == {
        "background_threshold": both["validation"]["segmentation"]["background_threshold"],
        "cam_threshold": both["validation"]["wsol"]["best_threshold_of_this_split"]["50"],
    }

    # Asking for test alone still takes the thresholds from validation: the same figures.
    only_test = evaluation.evaluate_workdir(trained, splits=("test",), num_overlays=0)
    assert list(only_test) == ["test"]
    assert only_test["test"] == both["test"]

    # Without a validation split: the documented defaults, and a warning.
    real_open_splits = evaluation.open_splits

    def without_validation(data_config):
        sources = real_open_splits(data_config)
        del sources["val"]
        return sources

    monkeypatch.setattr(evaluation, "open_splits", without_validation)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        default = evaluation.evaluate_workdir(trained, splits=("test",), num_overlays=0)
    assert any("no validation split" in str(w.message) for w in caught)
    assert (
        default["test"]["wsol"]["cam_threshold"] == evaluation.DEFAULT_THRESHOLDS["cam_threshold"]
    )
    assert (
        default["test"]["segmentation"]["background_threshold"]
        == evaluation.DEFAULT_THRESHOLDS["background_threshold"]
    )
    assert default["test"]["wsol"]["MaxBoxAccV2"] == both["test"]["wsol"]["MaxBoxAccV2"]
