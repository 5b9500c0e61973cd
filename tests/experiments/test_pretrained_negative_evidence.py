"""``python -m experiments.pretrained_negative_evidence --quick``: frozen pretrained features, heads, metrics."""

import doctest
import json

import numpy as np
import pytest

from experiments import pretrained_negative_evidence as study


def test_docstrings_and_bad_head_names():
    assert doctest.testmod(study).failed == 0
    with pytest.raises(ValueError, match="head must be one of"):
        study.head_module("gwp", num_classes=10)


def synthetic_arrays(n=6, side=32, seed=0):
    """Cached-feature arrays shaped like ``cache_features``'s (2×2 maps of 8 features, 10 classes)."""
    rng = np.random.default_rng(seed)
    labels = np.zeros((n, 10), np.float32)
    labels[np.arange(n), np.arange(n) % 10] = 1
    boxes = np.zeros((n, 4, 4), np.float32)
    boxes[:, 0] = [0.1, 0.1, 0.6, 0.6]
    label_per_box = np.full((n, 4), -1, np.int32)
    label_per_box[:, 0] = np.arange(n) % 10
    mask = np.zeros((n, side, side), np.uint8)
    mask[:, 3:19, 3:19] = (np.arange(n) % 10 + 1)[:, None, None]
    return {
        "features": rng.normal(size=(n, 2, 2, 8)).astype(np.float16),
        "labels": labels,
        "boxes": boxes,
        "label_per_box": label_per_box,
        "box_mask": np.tile(np.arange(4) < 1, (n, 1)),
        "mask": mask,
    }


def test_quick_study_writes_results_plot_and_resumes(tmp_path, monkeypatch):
    """The study on synthetic cached features (the backbone pass is the real run's, not CI's)."""
    monkeypatch.setattr(study, "QUICK", {"name": "cifar_mosaic/tiny", "image_size": (32, 32)})
    monkeypatch.setattr(
        study,
        "cache_features",
        lambda data, cache: {
            split: synthetic_arrays(seed=i) for i, split in enumerate(study.SPLITS)
        },
    )
    out = tmp_path / "out"
    args = ["--quick", "--heads", "gmp", "maxmin_0.7", "--seeds", "0", "--out", str(out)]
    study.main(args)
    saved = json.loads((out / "pretrained_negative_evidence.json").read_text())
    assert sorted(saved["table"]) == ["gmp", "maxmin_0.7"]
    for metric, _ in study.METRICS:
        for head in ("gmp", "maxmin_0.7"):
            assert 0.0 <= saved["table"][head][metric][0] <= 1.0, (head, metric)
    assert saved["paired_differences"]["maxmin_0.7 − gmp"]["test_mAP"][3] == 1  # One seed paired.
    assert (out / "pretrained_negative_evidence.png").stat().st_size > 5000

    # Again: finished runs are kept, nothing is trained again; another budget is refused.
    def no_training(*args, **kwargs):
        raise AssertionError("a finished run was trained again")

    monkeypatch.setattr(study, "train_head", no_training)
    again = study.main(args)
    assert again["runs"] == saved["runs"]
    with pytest.raises(ValueError, match="another budget"):
        study.main([*args[1:], "--steps", "7"])  # Would mix budgets in one results file.
