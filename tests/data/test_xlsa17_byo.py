"""Bring your own zero-shot data: an xlsa17-format folder of any name and feature dimension, written
with ``write_xlsa17`` (or ``features.npy`` + ``labels.npy``), class vectors from a ``.npy`` file,
trained and tested end to end under the GBU protocol."""

import numpy as np
import pytest

from configs.zsl_base import xlsa17_config
from wsl_jax.data.xlsa17 import write_xlsa17
from wsl_jax.train.zero_shot import evaluate_zsl_workdir, train_and_evaluate_zsl

NUM_CLASSES, UNSEEN, VAL = 12, [9, 10, 11], [7, 8]


def _write_own(folder, *, d, npy=False):
    rng = np.random.default_rng(0)
    vectors = rng.normal(size=(NUM_CLASSES, 6))
    unit = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)  # what the model is given
    labels = np.repeat(np.arange(NUM_CLASSES), 30)
    mix = rng.normal(size=(6, d)) / np.sqrt(6)
    features = unit[labels] @ mix + 0.1 * rng.normal(size=(len(labels), d))
    unseen = np.isin(labels, UNSEEN)
    seen_idx = np.flatnonzero(~unseen)
    test_seen = seen_idx[::6]
    write_xlsa17(
        folder,
        features=features,
        labels=labels,
        attributes=np.abs(vectors),  # att: not the vectors the features come from
        class_names=[f"species {c}" for c in range(NUM_CLASSES)],
        trainval=np.setdiff1d(seen_idx, test_seen),
        test_seen=test_seen,
        test_unseen=np.flatnonzero(unseen),
        val_classes=VAL,
    )
    if npy:
        (folder / "res101.mat").unlink()
        np.save(folder / "features.npy", features)
        np.save(folder / "labels.npy", labels)
    np.save(folder / "my_vectors.npy", vectors)
    return folder / "my_vectors.npy"


@pytest.mark.parametrize(("name", "d", "npy"), [("My Fish", 24, False), ("insects-v2", 33, True)])
def test_byo_folder_trains_and_evaluates(name, d, npy, tmp_path):
    vectors = _write_own(tmp_path / "data" / name, d=d, npy=npy)
    config = xlsa17_config(name)
    config.update_from_flattened_dict(
        {
            "progress_bar": False,
            "data.dir": str(tmp_path / "data"),
            "zsl.class_vectors": str(vectors),
            "train.epochs": 4,
            "train.batch_size": 32,
            "train.num_devices": 1,
            "optimizer.learning_rate": 1e-2,
        }
    )
    summary = train_and_evaluate_zsl(config, tmp_path / "run")
    assert summary["protocol"] == "gbu" and summary["val_metric"] == "val_zsl_acc"
    assert summary["num_examples"]["test_unseen"] == 90
    assert set(summary["per_class_zsl"]) == {f"species {c}" for c in UNSEEN}
    assert summary["zsl_unseen_acc"] > 0.6  # chance: 1/3
    assert 0.0 <= summary["ausuc"] <= 1.0 and set(summary["gzsl"]) == {"u", "s", "H"}
    assert evaluate_zsl_workdir(tmp_path / "run")["ausuc"] == summary["ausuc"]
