"""Zero-shot tasks from a config: CIFAR-10 with CNN features, xlsa17 files, or synthetic data.

``load_task(config, workdir)`` returns a :class:`wsl_jax.data.zsl_splits.ZslTask` for
``config.data.name``:

* ``"cifar10"``: the Socher et al. (2013) protocol on the CIFAR-10 JPEG archive
  (``config.data.dir``): unseen classes ``config.data.unseen_classes`` (cat and truck);
  validation classes ``config.data.val_classes`` (seen classes held out of training as stand-ins
  for unseen ones) plus a held-out fraction ``config.data.val_fraction`` of the training-class
  images. A :class:`~wsl_jax.models.FeatureCNN` trained on the training-class images only
  (``config.features``) gives the features of every image: ``load_task`` computes them with the
  function given as ``cnn_features`` (the zero-shot trainer passes
  :func:`wsl_jax.train.feature_cnn.cifar10_cnn_features`); they are cached in
  ``config.data.features_cache`` (default ``<workdir>/features.npz``) together with the settings
  that produced them, so resuming or evaluating never recomputes them. Class vectors
  (``config.zsl.class_vectors``): ``"socher"`` (``socher_wordTable.mat``, 50-d word vectors),
  ``"minilm"`` (``minilm_class_names.npy``, 384-d), both read from
  ``config.data.class_vectors_dir``, or a path to a ``(10, p)`` ``.npy`` file.
* ``"xlsa17"``: ``<config.data.dir>/<config.data.dataset>/{res101.mat,att_splits.mat}``; the seen
  images are ``trainval_loc``, the validation classes those of ``val_loc`` (Xian et al.'s
  class-disjoint ``train_loc`` / ``val_loc``) when ``config.data.val_classes == "xlsa17"`` (none
  with ``"none"``), and
  the class vectors ``att`` (or a ``(C, p)`` ``.npy`` path in ``config.zsl.class_vectors``).
* ``"synthetic"``: features linear in random attributes plus noise (tests and benchmarks).

Class vectors are L2-normalised per class when ``config.zsl.normalize_class_vectors`` is true.

A task needs validation images to select the epoch on: at least two validation classes, or
``config.data.val_fraction > 0``. With ``config.phase == "retrain"`` (phase 2 of the GBU protocol,
:func:`wsl_jax.zsl.protocol.retrain_config`) the task is
:func:`~wsl_jax.data.zsl_splits.trainval_task` of the same task: all seen images for training. On
CIFAR-10 the features stay those of the CNN trained in phase 1 on the training-class images (a
fixed feature extractor, as ResNet-101 is for xlsa17), so the validation classes' features
come from a network that never saw them.

>>> from configs.zsl_base import synthetic_config
>>> from wsl_jax.data.zsl_splits import SPLITS
>>> c = synthetic_config()
>>> c.data.examples_per_class = 10
>>> task = load_task(c, "/tmp/unused")  # no files: nothing is read or written
>>> {s: len(task.labels[s]) for s in SPLITS}
{'train': 63, 'val_seen': 7, 'val_unseen': 20, 'test_seen': 90, 'test_unseen': 30}
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import scipy.io

from wsl_jax.data.cifar_mosaic import CIFAR10_CLASSES
from wsl_jax.data.xlsa17 import load_xlsa17
from wsl_jax.data.zsl_splits import SPLITS, holdout_split, make_task, trainval_task
from wsl_jax.zsl.checks import check_attributes
from wsl_jax.zsl.protocol import protocol_of

_log = logging.getLogger(__name__)

__all__ = ["DATA_SOURCES", "cifar10_class_vectors", "load_task"]

DATA_SOURCES = ("cifar10", "xlsa17", "synthetic")


def load_task(config, workdir, *, log=None, cnn_features=None):
    """The :class:`~wsl_jax.data.zsl_splits.ZslTask` described by ``config`` (see the module docstring).

    ``log`` (default: this module's logger) reports progress; ``cnn_features(config, seen,
    val_classes, log, workdir=...)`` computes CIFAR-10 features that are not cached yet (see the
    module docstring), training its network in ``workdir`` (``features_cnn/`` beside the cache);
    other data sources do not use it.

    ``log`` takes the progress messages (one string each) of the CIFAR-10 feature CNN; by default
    they go to this module's :mod:`logging` logger at INFO level.

    >>> from configs.zsl_base import synthetic_config
    >>> task = load_task(synthetic_config(), "/tmp/unused")
    >>> task.features["train"].shape[1], len(task.unseen_classes)
    (16, 3)
    """
    protocol_of(config)  # A bad config.protocol fails before any heavy work.
    name = config.data.name
    if name == "cifar10":
        task = _cifar10_task(config, Path(workdir), log or _log.info, cnn_features)
    elif name == "xlsa17":
        task = _xlsa17_task(config)
    elif name == "synthetic":
        task = _synthetic_task(config)
    else:
        raise ValueError(f"config.data.name must be one of {DATA_SOURCES}, got {name!r}.")
    if len(task.val_classes) < 2 and not len(task.labels["val_seen"]):
        raise ValueError(
            "the task has nothing to select the epoch on (see wsl_jax.zsl.protocol): set "
            "config.data.val_fraction > 0 or give at least two validation classes."
        )
    return trainval_task(task) if config.get("phase", "select") == "retrain" else task


def _normalized(vectors, config):
    vectors = np.asarray(vectors, np.float64)
    if config.zsl.get("normalize_class_vectors", True) and vectors.ndim == 2:
        vectors = vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
    return vectors.astype(np.float32)


def cifar10_class_vectors(kind: str, directory) -> np.ndarray:
    """``(10, p)`` CIFAR-10 class vectors in CIFAR class order: ``"socher"``, ``"minilm"`` or a
    path to a ``.npy`` file.

    Example (a tiny ``socher_wordTable.mat``; the real one holds 50-d vectors):

    >>> import tempfile, scipy.io
    >>> d = tempfile.mkdtemp()
    >>> scipy.io.savemat(f"{d}/socher_wordTable.mat", {"wordTable": np.ones((4, 10)),
    ...                  "label_names": np.array(CIFAR10_CLASSES, dtype=object)})
    >>> cifar10_class_vectors("socher", d).shape
    (10, 4)
    >>> cifar10_class_vectors("glove", d)
    Traceback (most recent call last):
    ...
    ValueError: config.zsl.class_vectors must be 'socher', 'minilm' or a .npy path, got 'glove'.
    """
    if kind in ("socher", "minilm") and not directory:
        raise ValueError(
            f"no folder for the {kind!r} class vectors: set config.data.class_vectors_dir "
            "(--config.data.class_vectors_dir=...) or, for configs/cifar10_zsl.py, the "
            "environment variable WSL_JAX_ZSL_CLASS_VECTORS."
        )
    directory = Path(directory).expanduser()
    if kind == "socher":
        mat = scipy.io.loadmat(directory / "socher_wordTable.mat")
        names = tuple(str(np.asarray(n).ravel()[0]) for n in mat["label_names"].ravel())
        if names != CIFAR10_CLASSES:
            raise ValueError(
                f"{directory / 'socher_wordTable.mat'}: label_names {names} are not "
                f"the CIFAR-10 classes in order."
            )
        return np.asarray(mat["wordTable"], np.float64).T
    if kind == "minilm":
        return np.load(directory / "minilm_class_names.npy")
    if str(kind).endswith(".npy"):
        return np.load(Path(kind).expanduser())
    raise ValueError(
        f"config.zsl.class_vectors must be 'socher', 'minilm' or a .npy path, got {kind!r}."
    )


def _class_ids(names, what):
    unknown = [n for n in names if n not in CIFAR10_CLASSES]
    if unknown:
        raise ValueError(
            f"config.data.{what} holds unknown CIFAR-10 classes {unknown}; valid: "
            f"{CIFAR10_CLASSES}."
        )
    return np.array([CIFAR10_CLASSES.index(n) for n in names], np.int32)


def _cifar10_task(config, workdir, log, cnn_features):
    data = config.data
    attributes = _normalized(
        cifar10_class_vectors(config.zsl.class_vectors, data.class_vectors_dir), config
    )
    check_attributes(attributes, num_classes=len(CIFAR10_CLASSES))
    unseen = _class_ids(data.unseen_classes, "unseen_classes")
    val_classes = _class_ids(data.val_classes, "val_classes")
    both = np.intersect1d(unseen, val_classes)
    if both.size:
        raise ValueError(
            f"config.data.val_classes must be seen classes; "
            f"{[CIFAR10_CLASSES[c] for c in both]} are also in unseen_classes."
        )
    seen = np.setdiff1d(np.arange(len(CIFAR10_CLASSES)), unseen)
    train_classes = np.setdiff1d(seen, val_classes)
    _check_n_neg(config, len(train_classes))
    cache = Path(data.get("features_cache") or workdir / "features.npz").expanduser()
    settings = {
        "seed": config.seed,
        "features": config.features.to_dict(),
        "data": {k: v for k, v in data.to_dict().items() if k != "features_cache"},
    }
    settings = json.dumps(settings, sort_keys=True, default=list)
    if cache.is_file():
        stored = np.load(cache)
        if str(stored["settings"]) != settings:
            raise ValueError(
                f"{cache} holds features computed with other settings; delete it or "
                f"use another config.data.features_cache."
            )
        arrays = {k: stored[k] for k in stored.files if k != "settings"}
    else:
        if cnn_features is None:
            raise ValueError(
                f"{cache} does not exist and no `cnn_features` function was given to compute the "
                "CIFAR-10 features: train through train.py (wsl_jax.train.zero_shot), or pass "
                "cnn_features=wsl_jax.train.feature_cnn.cifar10_cnn_features."
            )
        # The CNN's own run (checkpoints, logs) lives beside the cache: ``features_cnn/``.
        arrays = cnn_features(
            config, seen, val_classes, log, workdir=cache.with_name(cache.stem + "_cnn")
        )
        cache.parent.mkdir(parents=True, exist_ok=True)
        tmp = cache.with_name(cache.stem + ".tmp.npz")
        np.savez(tmp, settings=np.array(settings), **arrays)
        tmp.replace(cache)
    pool_y, test_y = arrays["pool_labels"], arrays["test_labels"]
    split = holdout_split(
        pool_y, val_classes=val_classes, val_fraction=data.val_fraction, seed=config.seed
    )
    is_unseen = np.isin(test_y, unseen)
    features = {k: arrays["pool_features"][v] for k, v in split.items()}
    labels = {k: pool_y[v] for k, v in split.items()}
    features |= {
        "test_seen": arrays["test_features"][~is_unseen],
        "test_unseen": arrays["test_features"][is_unseen],
    }
    labels |= {"test_seen": test_y[~is_unseen], "test_unseen": test_y[is_unseen]}
    return make_task(
        features,
        labels,
        attributes,
        list(CIFAR10_CLASSES),
        unseen_classes=unseen,
        val_classes=val_classes,
    )


def _check_n_neg(config, num_train_classes):
    n_neg = config.zsl.n_neg
    if not 1 <= n_neg <= num_train_classes - 1:
        raise ValueError(
            f"config.zsl.n_neg={n_neg} must be in [1, {num_train_classes - 1}]: "
            f"negatives are other training classes and there are "
            f"{num_train_classes}."
        )


def _xlsa17_task(config):
    data = load_xlsa17(Path(config.data.dir).expanduser(), config.data.dataset)
    vectors = config.zsl.get("class_vectors", "att")
    attributes = (
        data.attributes
        if vectors == "att"
        else (data.original_attributes if vectors == "original_att" else np.load(vectors))
    )
    attributes = _normalized(attributes, config)
    check_attributes(attributes, num_classes=data.num_classes)
    if config.data.val_classes not in ("xlsa17", "none"):
        raise ValueError(
            f"config.data.val_classes must be 'xlsa17' (the classes of val_loc) or "
            f"'none', got {config.data.val_classes!r}."
        )
    val_classes = np.zeros(0, np.int32)
    if config.data.val_classes == "xlsa17":
        val_classes = np.intersect1d(data.labels[data.splits["val"]], data.seen_classes)
    _check_n_neg(config, len(np.setdiff1d(data.seen_classes, val_classes)))
    pool = data.splits["trainval"]
    split = holdout_split(
        data.labels[pool],
        val_classes=val_classes,
        val_fraction=config.data.val_fraction,
        seed=config.seed,
    )
    index = {k: pool[v] for k, v in split.items()}
    index |= {"test_seen": data.splits["test_seen"], "test_unseen": data.splits["test_unseen"]}
    return make_task(
        {k: data.features[v] for k, v in index.items()},
        {k: data.labels[v] for k, v in index.items()},
        attributes,
        data.class_names,
        unseen_classes=data.unseen_classes,
        val_classes=val_classes,
    )


def _synthetic_task(config):
    s = config.data
    rng = np.random.default_rng(s.get("data_seed", 0))
    attributes = _normalized(rng.normal(size=(s.num_classes, s.attribute_dim)), config)
    mix = rng.normal(size=(s.attribute_dim, s.feature_dim)) / np.sqrt(s.attribute_dim)
    unseen = np.arange(s.num_classes - s.num_unseen, s.num_classes)
    val_classes = np.arange(
        s.num_classes - s.num_unseen - s.num_val_classes, s.num_classes - s.num_unseen
    )
    _check_n_neg(config, s.num_classes - s.num_unseen - s.num_val_classes)
    n = s.examples_per_class
    features, labels = {}, {}
    for split, classes in (
        ("pool", np.setdiff1d(np.arange(s.num_classes), unseen)),
        ("test", np.arange(s.num_classes)),
    ):
        y = np.repeat(classes, n)
        x = attributes[y] @ mix + s.noise * rng.normal(size=(len(y), s.feature_dim))
        features[split], labels[split] = x.astype(np.float32), y
    split = holdout_split(
        labels["pool"], val_classes=val_classes, val_fraction=s.val_fraction, seed=config.seed
    )
    is_unseen = np.isin(labels["test"], unseen)
    out_x = {k: features["pool"][v] for k, v in split.items()}
    out_y = {k: labels["pool"][v] for k, v in split.items()}
    out_x |= {"test_seen": features["test"][~is_unseen], "test_unseen": features["test"][is_unseen]}
    out_y |= {"test_seen": labels["test"][~is_unseen], "test_unseen": labels["test"][is_unseen]}
    assert set(out_x) == set(SPLITS)
    return make_task(
        out_x,
        out_y,
        attributes,
        [f"class{c}" for c in range(s.num_classes)],
        unseen_classes=unseen,
        val_classes=val_classes,
    )
