"""The GBU zero-shot protocol (Xian et al. 2019): select the epoch on the validation classes,
retrain on all seen classes for that many epochs, test that model with the phase-1 validation γ."""

import json

import jax
import numpy as np
import orbax.checkpoint as ocp
import pytest

from configs.zsl_base import synthetic_config
from wsl_jax.data.zsl_splits import trainval_task
from wsl_jax.data.zsl_tasks import load_task
from wsl_jax.train.zero_shot import train_and_evaluate_zsl
from wsl_jax.zsl import choose_calibration
from wsl_jax.zsl.protocol import retrain_config, score_split


def _config(**overrides):
    config = synthetic_config()
    config.train.epochs = 3
    config.train.num_devices = 1
    config.update_from_flattened_dict(overrides)
    return config


def _params(path):
    return ocp.StandardCheckpointer().restore(path.absolute())


def _numpy_per_class(scores, labels, candidates, seen=(), gamma=0.0):
    """Per-class mean top-1 from the definition (plain NumPy)."""
    scores = np.array(scores, np.float64)
    scores[:, list(seen)] -= gamma
    candidates = np.asarray(candidates)
    pred = candidates[np.argmax(scores[:, candidates], axis=1)]
    return np.mean([np.mean(pred[labels == c] == c) for c in np.unique(labels)])


@pytest.fixture(scope="module")
def gbu_run(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("gbu") / "run"
    return workdir, train_and_evaluate_zsl(_config(), workdir)


def test_gbu_retrains_on_all_seen_classes_for_the_selected_epoch(gbu_run):
    workdir, summary = gbu_run
    best = json.loads((workdir / "best.json").read_text())
    assert summary["protocol"] == "gbu" and summary["selected_epoch"] == best["epoch"]
    assert summary["retrain_epochs"] == best["epoch"]
    # Phase 2: 252 + 28 + 80 = 360 seen images (train, val_seen, val_unseen), batch 32.
    assert summary["retrain_steps"] == best["epoch"] * (360 // 32)
    sub = json.loads((workdir / "retrain" / "config.json").read_text())
    assert sub["phase"] == "retrain" and sub["train"]["epochs"] == best["epoch"]
    task = load_task(retrain_config(_config(), epochs=1), workdir)
    assert set(np.unique(task.labels["train"])) == set(range(9))  # classes 7, 8 learned too
    assert len(task.labels["val_seen"]) == len(task.labels["val_unseen"]) == 0
    phase2 = json.loads((workdir / "retrain" / "summary.json").read_text())
    assert phase2["steps"] == summary["retrain_steps"] and phase2["phase"] == "retrain"


def test_gbu_test_metrics_are_phase2_model_with_phase1_gamma(gbu_run):
    workdir, summary = gbu_run
    config = _config()
    task = load_task(config, workdir)
    phase1, phase2 = _params(workdir / "best"), _params(workdir / "retrain" / "best")
    score = lambda p, s: score_split(p, task.features[s], task.attributes)
    # γ: calibrated on phase 1's model, train classes (held-out images) vs validation classes.
    gamma, _ = choose_calibration(
        score(phase1, "val_seen"),
        task.labels["val_seen"],
        score(phase1, "val_unseen"),
        task.labels["val_unseen"],
        seen_classes=task.train_classes,
        unseen_classes=task.val_classes,
    )
    assert summary["calibration"] == pytest.approx(gamma)
    # Test: phase 2's model, seen = train + validation classes.
    seen, unseen = task.seen_classes, task.unseen_classes
    x_s, x_u = score(phase2, "test_seen"), score(phase2, "test_unseen")
    y_s, y_u = task.labels["test_seen"], task.labels["test_unseen"]
    assert summary["zsl_unseen_acc"] == pytest.approx(_numpy_per_class(x_u, y_u, unseen))
    both = np.concatenate([seen, unseen])
    u = _numpy_per_class(x_u, y_u, both, seen, gamma)
    s = _numpy_per_class(x_s, y_s, both, seen, gamma)
    assert summary["gzsl"]["u"] == pytest.approx(u, abs=1e-6)
    assert summary["gzsl"]["s"] == pytest.approx(s, abs=1e-6)
    assert 0.0 <= summary["ausuc"] <= 1.0 and 0.0 <= summary["val_gzsl"]["ausuc"] <= 1.0
    # Phase 1's model gives other test scores: the summary is not phase 1's.
    assert not np.allclose(score(phase1, "test_unseen"), x_u)


def test_gbu_phase2_resumes_after_interruption(gbu_run, tmp_path):
    workdir, summary = gbu_run
    best = json.loads((workdir / "best.json").read_text())
    config, other = _config(), tmp_path / "other"
    # An interrupted phase 2 (one epoch done) waiting in retrain/ is resumed, not restarted.
    partial = train_and_evaluate_zsl(
        retrain_config(config, epochs=best["epoch"], features_cache=str(other / "features.npz")),
        other / "retrain",
        stop_after_steps=360 // 32,
    )
    assert (
        partial == {"stopped_at": 360 // 32, "steps": best["epoch"] * (360 // 32)}
        or best["epoch"] == 1
    )
    again = train_and_evaluate_zsl(config, other)
    jax.tree.map(
        np.testing.assert_array_equal,
        _params(other / "retrain" / "best"),
        _params(workdir / "retrain" / "best"),
    )
    assert again["zsl_unseen_acc"] == summary["zsl_unseen_acc"]
    assert again["gzsl"] == summary["gzsl"] and again["ausuc"] == summary["ausuc"]


def test_gbu_versus_train_only_validation_classes_at_test(gbu_run, tmp_path):
    _, gbu = gbu_run
    legacy = train_and_evaluate_zsl(_config(protocol="train_only"), tmp_path / "legacy")
    assert legacy["protocol"] == "train_only" and "retrain_epochs" not in legacy
    assert not (tmp_path / "legacy" / "retrain").exists()
    # Validation classes (class7, class8) in GZSL: learned in phase 2, never in train_only.
    val = lambda s: np.mean([s["per_class_gzsl"][c] for c in ("class7", "class8")])
    assert val(gbu) > val(legacy)


def test_gbu_needs_something_to_select_on(tmp_path):
    config = _config(**{"data.num_val_classes": 0, "data.val_fraction": 0.0})
    with pytest.raises(ValueError, match="nothing to select the epoch on"):
        train_and_evaluate_zsl(config, tmp_path)
    with pytest.raises(ValueError, match="config.protocol must be one of"):
        train_and_evaluate_zsl(_config(protocol="gzsl"), tmp_path / "p")
    with pytest.raises(ValueError, match="`epochs` must be >= 1"):
        retrain_config(_config(), epochs=0)


def test_gbu_trainval_task_merges_the_seen_splits():
    task = load_task(_config(), "/tmp/unused")
    full = trainval_task(task)
    merged = np.concatenate([task.features[s] for s in ("train", "val_seen", "val_unseen")])
    np.testing.assert_array_equal(full.features["train"], merged)
    np.testing.assert_array_equal(full.train_classes, task.seen_classes)
    for s in ("test_seen", "test_unseen"):
        np.testing.assert_array_equal(full.features[s], task.features[s])
    assert full.val_classes.size == 0
