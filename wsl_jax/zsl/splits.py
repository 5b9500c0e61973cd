"""Zero-shot data splits: the arrays a ZSL run trains, validates and tests on.

A :class:`ZslTask` holds image features split five ways, the class attribute matrix and the class
sets. Model selection and calibration use the validation parts only, never the test parts:

* ``train``: images of the *training classes* (the seen classes minus the validation classes),
  minus a held-out fraction;
* ``val_seen``: the held-out images of the training classes;
* ``val_unseen``: images of the *validation classes*, seen classes held out of training and used
  as stand-ins for unseen classes (the class-disjoint validation of Xian et al.'s ``train_loc`` /
  ``val_loc``); may be empty;
* ``test_seen`` / ``test_unseen``: test images of the seen / unseen classes.

:func:`trainval_task` merges the first three into ``train`` (all seen images, no validation):
the task of phase 2 of the GBU protocol (:mod:`wsl_jax.zsl.protocol`).

>>> import numpy as np
>>> from wsl_jax.zsl.splits import SPLITS, make_task
>>> y = {"train": [0, 1], "val_seen": [0, 1], "val_unseen": [2], "test_seen": [0, 2],
...      "test_unseen": [3]}
>>> task = make_task({s: np.zeros((len(y[s]), 2)) for s in SPLITS}, y, np.eye(4, 2),
...                  list("abcd"), unseen_classes=[3], val_classes=[2])
>>> [c.tolist() for c in (task.train_classes, task.val_classes, task.unseen_classes)]
[[0, 1], [2], [3]]
"""

from __future__ import annotations

import dataclasses

import numpy as np

from wsl_jax.zsl.checks import check_attributes, check_finite, check_splits

__all__ = ["SPLITS", "ZslTask", "holdout_split", "make_task", "trainval_task"]

SPLITS = ("train", "val_seen", "val_unseen", "test_seen", "test_unseen")


@dataclasses.dataclass(frozen=True)
class ZslTask:
    """Features and labels per split (``features[s]`` ``(N_s, d)``, ``labels[s]`` ``(N_s,)``),
    ``attributes`` ``(C, p)``, ``class_names`` and the class-id sets.

    >>> task = make_task(
    ...     {s: np.ones((2, 3), np.float32) for s in SPLITS},
    ...     {"train": [0, 1], "val_seen": [0, 1], "val_unseen": [2, 2], "test_seen": [0, 2],
    ...      "test_unseen": [3, 3]},
    ...     np.eye(4, 2), ["a", "b", "c", "d"], unseen_classes=[3], val_classes=[2])
    >>> task.train_classes.tolist(), task.seen_classes.tolist(), task.feature_dim
    ([0, 1], [0, 1, 2], 3)
    """

    features: dict
    labels: dict
    attributes: np.ndarray
    class_names: list
    seen_classes: np.ndarray
    unseen_classes: np.ndarray
    train_classes: np.ndarray
    val_classes: np.ndarray

    @property
    def feature_dim(self) -> int:
        """Image feature size ``d``."""
        return int(self.features["train"].shape[1])

    @property
    def num_classes(self) -> int:
        """Number of classes ``C`` (rows of ``attributes``)."""
        return int(self.attributes.shape[0])


def make_task(
    features, labels, attributes, class_names, *, unseen_classes, val_classes=()
) -> ZslTask:
    """Checks and assembles a :class:`ZslTask` (float32 features, int32 labels).

    Raises ``ValueError`` naming the argument when ``attributes`` does not have one row per class
    name, a feature array holds NaN or inf, an unseen class appears in a training or validation
    split, or the validation classes are not seen classes.

    >>> f = {s: np.zeros((1, 2), np.float32) for s in SPLITS}
    >>> y = {"train": [0], "val_seen": [0], "val_unseen": [1], "test_seen": [0],
    ...      "test_unseen": [2]}
    >>> make_task(f, y, np.eye(2), ["a", "b", "c"], unseen_classes=[2])
    Traceback (most recent call last):
    ...
    ValueError: `attributes` has 2 rows (classes) but 3 classes are expected; ...
    """
    attributes = np.asarray(attributes, np.float32)
    check_attributes(attributes, num_classes=len(class_names))
    missing = set(SPLITS) - set(features) | set(SPLITS) - set(labels)
    if missing:
        raise ValueError(f"`features` and `labels` need the splits {SPLITS}; missing {missing}.")
    feats, labs = {}, {}
    for split in SPLITS:
        x = np.asarray(features[split], np.float32)
        y = np.asarray(labels[split], np.int32).reshape(-1)
        if x.ndim != 2 or x.shape[0] != y.shape[0]:
            raise ValueError(
                f"`features[{split!r}]` must be (N, d) with N = {y.shape[0]} labels, "
                f"got shape {x.shape}."
            )
        check_finite(f"features[{split!r}]", x)
        if y.size and (y.min() < 0 or y.max() >= len(class_names)):
            raise ValueError(f"`labels[{split!r}]` must be class ids in [0, {len(class_names)}).")
        feats[split], labs[split] = x, y
    dims = {x.shape[1] for x in feats.values()}
    if len(dims) != 1:
        raise ValueError(f"All `features` splits must have the same dimension, got {sorted(dims)}.")
    unseen = np.unique(np.asarray(unseen_classes, np.int32))
    val = np.unique(np.asarray(val_classes, np.int32))
    train = np.unique(labs["train"])
    check_splits(
        np.union1d(train, val),
        unseen,
        num_classes=len(class_names),
        train_labels=np.concatenate([labs["train"], labs["val_seen"], labs["val_unseen"]]),
    )
    if np.intersect1d(train, val).size or not np.isin(labs["val_seen"], train).all():
        raise ValueError(
            "`val_classes` must not be training classes, and `val_seen` images must "
            "belong to training classes."
        )
    if not np.isin(labs["val_unseen"], val).all():
        raise ValueError("`val_unseen` images must belong to `val_classes`.")
    if not np.isin(labs["test_unseen"], unseen).all():
        raise ValueError("`test_unseen` images must belong to `unseen_classes`.")
    seen = np.union1d(train, val)
    stray = np.setdiff1d(labs["test_seen"], seen)
    if stray.size:
        raise ValueError(f"`labels['test_seen']` holds classes {stray.tolist()} that are not seen.")
    return ZslTask(
        feats,
        labs,
        attributes,
        list(class_names),
        seen.astype(np.int32),
        unseen,
        train.astype(np.int32),
        val,
    )


def trainval_task(task: ZslTask) -> ZslTask:
    """``task`` trained on all its seen images: ``train`` ∪ ``val_seen`` ∪ ``val_unseen`` become
    ``train`` (in that order), the validation splits are empty and every seen class is a
    training class; the test splits are unchanged.

    >>> y = {"train": [0, 1], "val_seen": [0], "val_unseen": [2], "test_seen": [0, 2],
    ...      "test_unseen": [3]}
    >>> task = make_task({s: np.zeros((len(y[s]), 2)) for s in SPLITS}, y, np.eye(4, 2),
    ...                  list("abcd"), unseen_classes=[3], val_classes=[2])
    >>> full = trainval_task(task)
    >>> full.labels["train"].tolist(), full.train_classes.tolist(), len(full.labels["val_seen"])
    ([0, 1, 0, 2], [0, 1, 2], 0)
    >>> full.seen_classes.tolist() == task.seen_classes.tolist(), full.val_classes.tolist()
    (True, [])
    """
    merged = ("train", "val_seen", "val_unseen")
    d = task.feature_dim
    features = {s: task.features[s] for s in ("test_seen", "test_unseen")}
    labels = {s: task.labels[s] for s in ("test_seen", "test_unseen")}
    features["train"] = np.concatenate([task.features[s] for s in merged])
    labels["train"] = np.concatenate([task.labels[s] for s in merged])
    for s in ("val_seen", "val_unseen"):
        features[s], labels[s] = np.zeros((0, d), np.float32), np.zeros(0, np.int32)
    return make_task(
        features, labels, task.attributes, task.class_names, unseen_classes=task.unseen_classes
    )


def holdout_split(labels, *, val_classes=(), val_fraction: float, seed: int) -> dict:
    """Index arrays ``train`` / ``val_seen`` / ``val_unseen`` of a pool of seen-class examples.

    Images of ``val_classes`` all go to ``val_unseen``. Of every other class, ``round(val_fraction
    · n_c)`` examples (at least one when ``val_fraction > 0`` and ``n_c > 1``), drawn with
    ``numpy.random.default_rng(seed)``, go to ``val_seen``, the rest to ``train``. Indices are
    sorted.

    >>> s = holdout_split(np.array([0, 0, 0, 0, 1, 1, 2]), val_classes=[2], val_fraction=0.25,
    ...                   seed=0)
    >>> [len(s[k]) for k in ("train", "val_seen", "val_unseen")], s["val_unseen"].tolist()
    ([4, 2, 1], [6])
    """
    if not 0.0 <= val_fraction < 1.0:
        raise ValueError(f"`val_fraction` must be in [0, 1), got {val_fraction}.")
    labels = np.asarray(labels).reshape(-1)
    rng = np.random.default_rng(seed)
    val_unseen = np.flatnonzero(np.isin(labels, np.asarray(val_classes)))
    train, held = [], []
    for c in np.setdiff1d(np.unique(labels), np.asarray(val_classes)):
        idx = np.flatnonzero(labels == c)
        k = round(val_fraction * len(idx))
        if val_fraction > 0 and len(idx) > 1:
            k = min(max(k, 1), len(idx) - 1)
        pick = rng.permutation(len(idx))[:k]
        held.append(idx[pick])
        train.append(np.delete(idx, pick))
    cat = lambda parts: np.sort(np.concatenate(parts)) if parts else np.zeros(0, np.int64)
    return {"train": cat(train), "val_seen": cat(held), "val_unseen": val_unseen}
