"""ZSL runs end to end on xlsa17 files (real att_splits.mat, generated res101.mat) and on real
CIFAR-10 through train.py / evaluate.py, and bad inputs reaching the trainer."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import scipy.io

from configs import cifar10_zsl, xlsa17_awa2
from wsl_jax.data.zsl_splits import holdout_split
from wsl_jax.train import train_and_evaluate

ROOT = Path(__file__).resolve().parents[2]
SHARED = ROOT / ".." / "shared" / "data"
XLSA17 = SHARED / "zsl" / "xlsa17"
CIFAR = SHARED / "cifar10" / "cifar10-jpg.tar.gz"
# The tiny CIFAR-10 budget, as train.py overrides (about 30 s on 2 CPU cores).
TINY_CIFAR = {
    "progress_bar": False,
    "data.max_train_examples": 400,
    "data.max_test_examples": 200,
    "features.epochs": 1,
    "features.widths": (8, 16),
    "features.feature_dim": 32,
    "features.batch_size": 32,
    "train.epochs": 2,
    "train.batch_size": 32,
}


def _set(config, overrides):
    config.update_from_flattened_dict(overrides)
    return config


def _loc(indices):
    return (np.asarray(indices) + 1).astype(np.int32).reshape(-1, 1)


def _write_res101(folder, labels, attributes, *, d=16, nan=False, seed=0):
    """Features linear in the class attributes plus noise (d × N, 1-based labels)."""
    rng = np.random.default_rng(seed)
    mix = rng.normal(size=(attributes.shape[1], d))
    x = attributes[labels] @ mix + 0.05 * rng.normal(size=(len(labels), d))
    if nan:
        x[0, 0] = np.nan
    scipy.io.savemat(
        folder / "res101.mat", {"features": x.T.astype(np.float32), "labels": _loc(labels)}
    )


def _real_labels(splits, num_seen, num_unseen):
    """Labels consistent with the real index sets: train_loc and val_loc classes disjoint."""
    n = 1 + max(int(v.max()) for v in splits.values())
    num_val = len(np.unique(splits["val"])) and max(1, num_seen // 3)
    labels = np.arange(n) % num_seen
    labels[splits["train"]] = splits["train"] % (num_seen - num_val)
    labels[splits["val"]] = num_seen - num_val + splits["val"] % num_val
    labels[splits["test_unseen"]] = num_seen + splits["test_unseen"] % num_unseen
    return labels


@pytest.mark.parametrize(("dataset", "num_seen", "num_unseen"), [("AWA2", 40, 10)])
def test_xlsa17_end_to_end(dataset, num_seen, num_unseen, tmp_path):
    from wsl_jax.data.xlsa17 import load_att_splits

    real = XLSA17 / dataset / "att_splits.mat"
    if not real.is_file():
        pytest.skip(f"real xlsa17 file not found: {real}")
    att = load_att_splits(real)
    (tmp_path / dataset).mkdir()
    (tmp_path / dataset / "att_splits.mat").symlink_to(real.resolve())
    labels = _real_labels(att.splits, num_seen, num_unseen)
    # Here the first `num_seen` classes are the seen ones (the real seen classes are others,
    # which does not matter: the features are generated from the attributes of these labels).
    _write_res101(tmp_path / dataset, labels, att.attributes)
    config = _set(
        xlsa17_awa2.get_config(),
        {
            "progress_bar": False,
            "data.dir": str(tmp_path),
            "data.dataset": dataset,
            "train.epochs": 2,
            "train.batch_size": 512,
            "optimizer.learning_rate": 1e-2,
        },
    )
    summary = train_and_evaluate(config, tmp_path / "run")
    counts = summary["num_examples"]
    assert counts["test_unseen"] == len(att.splits["test_unseen"])
    assert counts["test_seen"] == len(att.splits["test_seen"])
    assert counts["train"] + counts["val_seen"] + counts["val_unseen"] == len(
        att.splits["trainval"]
    )
    assert summary["val_metric"] == "val_zsl_acc" and len(summary["per_class_zsl"]) == num_unseen
    assert summary["zsl_unseen_acc"] > 3.0 / num_unseen  # well above chance


def _toy(root, *, nan=False, unseen_in_trainval=False):
    """5 classes (0-2 seen, 3-4 unseen), 3 attributes, 60 images."""
    folder = root / "TOY"
    folder.mkdir(parents=True)
    labels = np.arange(60) % 5
    seen_idx, unseen_idx = np.flatnonzero(labels < 3), np.flatnonzero(labels >= 3)
    trainval = seen_idx[:30]
    if unseen_in_trainval:
        trainval, unseen_idx = np.r_[trainval, unseen_idx[0]], unseen_idx[1:]
    att = np.random.default_rng(1).random((3, 5))
    names = np.empty((5, 1), dtype=object)
    for c in range(5):
        names[c, 0] = np.array([f"class{c}"])
    scipy.io.savemat(
        folder / "att_splits.mat",
        {
            "att": att / np.linalg.norm(att, axis=0),
            "allclasses_names": names,
            "trainval_loc": _loc(trainval),
            "train_loc": _loc(seen_idx[:20]),
            "val_loc": _loc(seen_idx[20:30]),
            "test_seen_loc": _loc(seen_idx[30:]),
            "test_unseen_loc": _loc(unseen_idx),
        },
    )
    _write_res101(folder, labels, (att / np.linalg.norm(att, axis=0)).T, d=4, nan=nan)
    return root


def _toy_config(root, **overrides):
    return _set(
        xlsa17_awa2.get_config(),
        {
            "progress_bar": False,
            "data.dir": str(root),
            "data.dataset": "TOY",
            "data.val_classes": "none",
            "zsl.n_neg": 1,
            "train.epochs": 1,
            "train.batch_size": 8,
            **overrides,
        },
    )


def test_xlsa17_toy_runs_without_validation_classes(tmp_path):
    summary = train_and_evaluate(_toy_config(_toy(tmp_path / "data")), tmp_path / "run")
    assert summary["val_metric"] == "val_seen_acc" and summary["calibration"] == 0.0


@pytest.mark.parametrize(
    ("toy", "overrides", "match"),
    [
        ({"nan": True}, {}, r"`features\['train'\]` contains NaN"),
        ({"unseen_in_trainval": True}, {}, r"'trainval_loc' holds examples of unseen classes"),
        ({}, {"zsl.n_neg": 3}, r"config.zsl.n_neg=3 must be in \[1, 2\]"),
        ({}, {"zsl.class_vectors": "WRONG"}, r"`attributes` has 4 rows \(classes\) but 5 classes"),
    ],
)
def test_xlsa17_bad_inputs(toy, overrides, match, tmp_path):
    root = _toy(tmp_path / "data", **toy)
    if overrides.get("zsl.class_vectors") == "WRONG":
        overrides["zsl.class_vectors"] = str(tmp_path / "att.npy")
        np.save(overrides["zsl.class_vectors"], np.ones((4, 3)))
    with pytest.raises(ValueError, match=match):
        train_and_evaluate(_toy_config(root, **overrides), tmp_path / "run")


def test_cifar_bad_class_vectors_and_splits(tmp_path):
    np.save(tmp_path / "vectors.npy", np.ones((9, 50)))
    config = _set(
        cifar10_zsl.get_config(),
        {
            "zsl.class_vectors": str(tmp_path / "vectors.npy"),
            "data.class_vectors_dir": str(tmp_path),
        },
    )
    with pytest.raises(ValueError, match=r"`attributes` has 9 rows \(classes\) but 10 classes"):
        train_and_evaluate(config, tmp_path / "a")
    np.save(tmp_path / "vectors.npy", np.ones((10, 50)))
    config.data.val_classes = ("deer", "cat")
    with pytest.raises(ValueError, match=r"val_classes must be seen classes; \['cat'\]"):
        train_and_evaluate(config, tmp_path / "b")


def test_holdout_split_is_stratified_and_seeded():
    labels = np.repeat(np.arange(4), 10)
    a = holdout_split(labels, val_classes=[3], val_fraction=0.2, seed=0)
    b = holdout_split(labels, val_classes=[3], val_fraction=0.2, seed=0)
    assert all(np.array_equal(a[k], b[k]) for k in a)
    assert np.bincount(labels[a["val_seen"]]).tolist() == [2, 2, 2]
    assert len(np.intersect1d(a["train"], a["val_seen"])) == 0 and len(a["val_unseen"]) == 10


def test_train_py_tiny_cifar_then_evaluate_py(tmp_path):
    if not CIFAR.is_file():
        pytest.skip(f"CIFAR-10 archive not found at {CIFAR} (see ../shared/data/README.md)")
    workdir = tmp_path / "cifar"
    flags = [
        f"--config.{k}={','.join(map(str, v)) if isinstance(v, tuple) else v}"
        for k, v in TINY_CIFAR.items()
    ]
    flags += [
        f"--config.data.dir={CIFAR}",
        f"--config.data.class_vectors_dir={SHARED / 'zsl' / 'cifar10'}",
    ]
    env = dict(
        os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=8", JAX_PLATFORMS="cpu"
    )
    cmd = [
        sys.executable,
        "train.py",
        "--config",
        "configs/cifar10_zsl.py",
        "--workdir",
        str(workdir),
        *flags,
    ]
    done = subprocess.run(
        cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300, check=False
    )
    assert done.returncode == 0, done.stderr[-3000:]
    summary = json.loads((workdir / "summary.json").read_text())
    assert set(summary["per_class_zsl"]) == {"cat", "truck"}
    assert summary["num_examples"]["test_unseen"] == 40  # 20 cats + 20 trucks of 200
    assert (workdir / "features.npz").is_file()
    done = subprocess.run(
        [sys.executable, "evaluate.py", "--workdir", str(workdir)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    evaluated = json.loads((workdir / "zsl_eval.json").read_text())
    assert evaluated["zsl_unseen_acc"] == summary["zsl_unseen_acc"]
    assert evaluated["per_class_gzsl"] == summary["per_class_gzsl"]
