"""Loader of the xlsa17 zero-shot benchmark files (Xian et al., "ZSL: the Good, the Bad and the Ugly").

A user-supplied directory ``<root>/<DATASET>/`` (``AWA1``, ``AWA2``, ``CUB``, ``SUN``, ``APY``) holds

* ``res101.mat``: ``features`` (d x N, d = 2048 for ResNet-101), ``labels`` (N x 1, **1-based**),
  ``image_files`` (N x 1 cell of paths, optional here);
* ``att_splits.mat``: ``att`` (p x C, L2-normalised columns), ``original_att`` (p x C), the **1-based**
  index sets ``trainval_loc``, ``train_loc``, ``val_loc``, ``test_seen_loc``, ``test_unseen_loc``, and
  ``allclasses_names`` (C x 1 cell).

``load_xlsa17`` returns NumPy arrays with 0-based indices and labels, rows for examples and classes:
``features`` (N, d) float32, ``labels`` (N,) int64, ``attributes`` (C, p) float32, the five splits as
sorted-as-stored int64 index arrays keyed ``trainval``, ``train``, ``val``, ``test_seen``,
``test_unseen``, and the seen (classes of ``trainval``) and unseen (classes of ``test_unseen``) class ids.
Missing fields, wrong shapes, out-of-range indices, overlapping train/test indices and unseen classes
present in ``trainval`` raise ``ValueError`` naming the file and the field.

Bring your own data: any folder name (the data set name) and any feature dimension ``d`` work.
Instead of ``res101.mat`` the folder may hold ``features.npy`` ((N, d), rows are images) and
``labels.npy`` ((N,), **0-based** class ids, the rows of ``att``'s transpose); ``res101.mat`` is
read when both are present. :func:`write_xlsa17` writes the two ``.mat`` files from NumPy arrays
(0-based, rows for images and classes).

Note: in the released SUN files ``train_loc`` and ``val_loc`` do not partition ``trainval_loc``
(they come from an older split); this is not treated as an error.

On the real files, ``load_xlsa17(root, "AWA2")`` has 40 seen and 10 unseen classes and attributes
``(50, 85)``; train on ``data.features[data.splits["trainval"]]``.

Example (a toy data set in the same format: 3 classes, 2 attributes, 6 images of 4 features):
  >>> import os, tempfile
  >>> import scipy.io
  >>> root = tempfile.mkdtemp(); os.mkdir(os.path.join(root, "TOY"))
  >>> scipy.io.savemat(os.path.join(root, "TOY", "att_splits.mat"), {  # MATLAB: 1-based, p x C
  ...     "att": np.eye(2, 3),
  ...     "allclasses_names": np.array([["cat"], ["dog"], ["zebra"]], dtype=object),
  ...     "trainval_loc": [[1], [2], [3]], "train_loc": [[1], [2]], "val_loc": [[3]],
  ...     "test_seen_loc": [[4]], "test_unseen_loc": [[5], [6]]})
  >>> scipy.io.savemat(os.path.join(root, "TOY", "res101.mat"),
  ...                  {"features": np.ones((4, 6)), "labels": [[1], [2], [1], [2], [3], [3]]})
  >>> data = load_xlsa17(root, "TOY")
  >>> data.features.shape, data.attributes.shape, data.labels.tolist()  # rows, 0-based
  ((6, 4), (3, 2), [0, 1, 0, 1, 2, 2])
  >>> data.seen_classes.tolist(), data.unseen_classes.tolist(), data.splits["test_unseen"].tolist()
  ([0, 1], [2], [4, 5])
"""
from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import numpy as np
import scipy.io

SPLIT_FIELDS = {"trainval": "trainval_loc", "train": "train_loc", "val": "val_loc",
                "test_seen": "test_seen_loc", "test_unseen": "test_unseen_loc"}
DATASETS = ("AWA1", "AWA2", "CUB", "SUN", "APY")

__all__ = [
    "DATASETS",
    "SPLIT_FIELDS",
    "AttSplits",
    "Xlsa17Data",
    "load_att_splits",
    "load_npy_features",
    "load_res101",
    "load_xlsa17",
    "write_xlsa17",
]


@dataclasses.dataclass(frozen=True)
class AttSplits:
    """Contents of ``att_splits.mat``: ``attributes`` (C, p), 0-based ``splits``, ``class_names``.

    >>> a = AttSplits(np.eye(2, 3, dtype=np.float32), None, ["a", "b"], {"trainval": np.array([0])})
    >>> a.num_classes, a.num_attributes
    (2, 3)
    """

    attributes: np.ndarray
    original_attributes: np.ndarray | None
    class_names: list
    splits: dict

    @property
    def num_classes(self) -> int:
        """Number of classes C."""
        return int(self.attributes.shape[0])

    @property
    def num_attributes(self) -> int:
        """Attribute dimension p."""
        return int(self.attributes.shape[1])


@dataclasses.dataclass(frozen=True)
class Xlsa17Data:
    """A loaded xlsa17 data set (see the module docstring for the fields).

    >>> d = Xlsa17Data(np.zeros((3, 2), np.float32), np.array([0, 1, 1]), np.eye(2, dtype=np.float32),
    ...                None, ["a", "b"], {}, np.array([0]), np.array([1]), None)
    >>> d.num_classes, d.features.shape
    (2, (3, 2))
    """

    features: np.ndarray
    labels: np.ndarray
    attributes: np.ndarray
    original_attributes: np.ndarray | None
    class_names: list
    splits: dict
    seen_classes: np.ndarray
    unseen_classes: np.ndarray
    image_files: list | None

    @property
    def num_classes(self) -> int:
        """Number of classes C."""
        return int(self.attributes.shape[0])


def _load_mat(path: Path) -> dict:
    if not path.is_file():
        raise FileNotFoundError(f"xlsa17 file {path} not found")
    try:
        return scipy.io.loadmat(os.fspath(path))
    except NotImplementedError as e:  # MATLAB v7.3 (HDF5) files
        raise ValueError(f"{path}: MATLAB v7.3 files are not supported, save it with -v7: {e}") from e
    except Exception as e:
        raise ValueError(f"{path}: cannot read as a MATLAB file: {e}") from e


def _get(mat: dict, path: Path, field: str) -> np.ndarray:
    if field not in mat:
        fields = sorted(k for k in mat if not k.startswith("__"))
        raise ValueError(f"{path}: field {field!r} is missing (fields present: {fields})")
    return np.asarray(mat[field])


def _vector(mat: dict, path: Path, field: str) -> np.ndarray:
    value = _get(mat, path, field)
    if value.ndim > 2 or (value.ndim == 2 and min(value.shape) > 1):
        raise ValueError(f"{path}: field {field!r} must be a vector (n x 1), got shape {value.shape}")
    value = value.reshape(-1)
    if value.size and not np.all(np.equal(np.mod(value, 1), 0)):
        raise ValueError(f"{path}: field {field!r} must hold integers")
    return value.astype(np.int64)


def _strings(value: np.ndarray) -> list:
    out = []
    for item in value.reshape(-1):  # MATLAB cells: object arrays of 1-element string arrays
        a = np.asarray(item).reshape(-1)
        while a.dtype == object and a.size == 1:
            a = np.asarray(a[0]).reshape(-1)
        out.append(str(a[0]) if a.size else "")
    return out


def load_att_splits(path: str | os.PathLike) -> AttSplits:
    """Reads an ``att_splits.mat``: attributes transposed to (C, p), splits made 0-based.

    On AWA2's file: ``a.attributes.shape, len(a.splits["test_unseen"])`` is ``((50, 85), 7913)``.

    Example (2 attributes of 3 classes, stored p x C with 1-based indices):
      >>> import os, tempfile
      >>> import scipy.io
      >>> path = os.path.join(tempfile.mkdtemp(), "att_splits.mat")
      >>> scipy.io.savemat(path, {
      ...     "att": np.eye(2, 3),
      ...     "allclasses_names": np.array([["a"], ["b"], ["c"]], dtype=object),
      ...     "trainval_loc": [[1], [2]], "train_loc": [[1]], "val_loc": [[2]],
      ...     "test_seen_loc": [[3]], "test_unseen_loc": [[4]]})
      >>> a = load_att_splits(path)
      >>> a.attributes.shape, a.splits["trainval"].tolist(), a.class_names
      ((3, 2), [0, 1], ['a', 'b', 'c'])
    """
    path = Path(path)
    mat = _load_mat(path)
    att = _get(mat, path, "att")
    if att.ndim != 2:
        raise ValueError(f"{path}: field 'att' must be 2-D (p x C), got shape {att.shape}")
    num_classes = att.shape[1]
    original = None
    if "original_att" in mat:
        original = np.asarray(mat["original_att"])
        if original.shape != att.shape:
            raise ValueError(f"{path}: field 'original_att' has shape {original.shape}, 'att' has {att.shape}")
        original = original.T.astype(np.float32)
    names = _strings(_get(mat, path, "allclasses_names"))
    if len(names) != num_classes:
        raise ValueError(f"{path}: field 'allclasses_names' has {len(names)} names, 'att' has {num_classes} "
                         f"classes (columns)")
    splits = {}
    for key, field in SPLIT_FIELDS.items():
        loc = _vector(mat, path, field)
        if loc.size and loc.min() < 1:
            raise ValueError(f"{path}: field {field!r} must hold 1-based indices, found {int(loc.min())}")
        splits[key] = loc - 1
    for a, b in (("trainval", "test_seen"), ("trainval", "test_unseen"), ("test_seen", "test_unseen")):
        common = np.intersect1d(splits[a], splits[b])
        if common.size:
            raise ValueError(f"{path}: fields {SPLIT_FIELDS[a]!r} and {SPLIT_FIELDS[b]!r} share {common.size} "
                             f"indices (e.g. {int(common[0]) + 1}, 1-based)")
    return AttSplits(att.T.astype(np.float32), original, names, splits)


def load_res101(path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray, list | None]:
    """Reads a ``res101.mat``: features (N, d) float32, 0-based labels (N,), image files (or ``None``).

    On AWA2's file the features are ``(37322, 2048)``.

    Example (3 images of 4 features, stored d x N with 1-based labels):
      >>> import os, tempfile
      >>> import scipy.io
      >>> path = os.path.join(tempfile.mkdtemp(), "res101.mat")
      >>> features = np.arange(12.0).reshape(4, 3)
      >>> scipy.io.savemat(path, {"features": features, "labels": [[2], [1], [2]]})
      >>> features, labels, files = load_res101(path)
      >>> features.shape, features.dtype, labels.tolist(), files
      ((3, 4), dtype('float32'), [1, 0, 1], None)
    """
    path = Path(path)
    mat = _load_mat(path)
    features = _get(mat, path, "features")
    if features.ndim != 2:
        raise ValueError(f"{path}: field 'features' must be 2-D (d x N), got shape {features.shape}")
    labels = _vector(mat, path, "labels")
    if labels.shape[0] != features.shape[1]:
        raise ValueError(f"{path}: field 'labels' has {labels.shape[0]} entries, 'features' has "
                         f"{features.shape[1]} columns (d x N expected)")
    if labels.size and labels.min() < 1:
        raise ValueError(f"{path}: field 'labels' must be 1-based, found {int(labels.min())}")
    files = None
    if "image_files" in mat:
        files = _strings(np.asarray(mat["image_files"]))
        if len(files) != labels.shape[0]:
            raise ValueError(f"{path}: field 'image_files' has {len(files)} entries, 'labels' {labels.shape[0]}")
    return np.ascontiguousarray(features.T, dtype=np.float32), labels - 1, files


def load_xlsa17(root: str | os.PathLike, dataset: str) -> Xlsa17Data:
    """Loads ``<root>/<dataset>/{res101.mat, att_splits.mat}`` and checks them against each other.

    On the real SUN files: 645 seen and 72 unseen classes, attributes ``(717, 102)``. The module
    docstring builds a toy data set and loads it.

    Example (a missing folder is named in the error):
      >>> load_xlsa17("/nonexistent", "AWA2")
      Traceback (most recent call last):
      ...
      FileNotFoundError: xlsa17 data set folder /nonexistent/AWA2 not found ...
    """
    folder = Path(root) / dataset
    if not folder.is_dir():
        raise FileNotFoundError(f"xlsa17 data set folder {folder} not found (expected <root>/<DATASET>/ "
                                f"with res101.mat and att_splits.mat; DATASET e.g. one of {DATASETS} "
                                f"or the name of your own folder)")
    att_path, res_path = folder / "att_splits.mat", folder / "res101.mat"
    att = load_att_splits(att_path)
    if not res_path.is_file() and (folder / "features.npy").is_file():
        res_path = folder / "features.npy"
        features, labels = load_npy_features(folder)
        files = None
    else:
        features, labels, files = load_res101(res_path)
    n = labels.shape[0]
    if labels.size and labels.max() >= att.num_classes:
        if res_path.suffix == ".npy":
            raise ValueError(f"{folder / 'labels.npy'} has class id {int(labels.max())} but {att_path} field 'att' "
                             f"has {att.num_classes} classes: labels.npy holds 0-based ids in [0, {att.num_classes})")
        raise ValueError(f"{res_path}: field 'labels' has class {int(labels.max()) + 1} (1-based) but "
                         f"{att_path} field 'att' has {att.num_classes} classes")
    for key, loc in att.splits.items():
        if loc.size and loc.max() >= n:
            raise ValueError(f"{att_path}: field {SPLIT_FIELDS[key]!r} has index {int(loc.max()) + 1} (1-based) "
                             f"beyond the {n} examples of {res_path}")
    seen = np.unique(labels[att.splits["trainval"]])
    unseen = np.unique(labels[att.splits["test_unseen"]])
    leaked = np.intersect1d(seen, unseen)
    if leaked.size:
        raise ValueError(f"{att_path}: field 'trainval_loc' holds examples of unseen classes "
                         f"{[att.class_names[c] for c in leaked[:5]]} (classes of 'test_unseen_loc')")
    stray = np.setdiff1d(np.unique(labels[att.splits["test_seen"]]), seen)
    if stray.size:
        raise ValueError(f"{att_path}: field 'test_seen_loc' holds classes absent from 'trainval_loc': "
                         f"{[att.class_names[c] for c in stray[:5]]}")
    return Xlsa17Data(features, labels, att.attributes, att.original_attributes, att.class_names,
                      att.splits, seen, unseen, files)


def load_npy_features(folder: str | os.PathLike) -> tuple[np.ndarray, np.ndarray]:
    """Reads ``features.npy`` (N, d) and ``labels.npy`` (N,) of 0-based class ids from ``folder``.

    Example:
      >>> import tempfile
      >>> d = Path(tempfile.mkdtemp())
      >>> np.save(d / "features.npy", np.ones((3, 5))); np.save(d / "labels.npy", np.array([0, 2, 1]))
      >>> features, labels = load_npy_features(d)
      >>> features.shape, features.dtype, labels.tolist()
      ((3, 5), dtype('float32'), [0, 2, 1])
    """
    folder = Path(folder)
    paths = {name: folder / f"{name}.npy" for name in ("features", "labels")}
    for path in paths.values():
        if not path.is_file():
            raise FileNotFoundError(f"{path} not found (features.npy and labels.npy go together)")
    features, labels = np.load(paths["features"]), np.load(paths["labels"])
    if features.ndim != 2:
        raise ValueError(f"{paths['features']} must be 2-D (N images, d features), got shape {features.shape}")
    if labels.ndim != 1 or labels.shape[0] != features.shape[0]:
        raise ValueError(f"{paths['labels']} must be 1-D with one label per row of features.npy "
                         f"({features.shape[0]}), got shape {labels.shape}")
    if not np.issubdtype(labels.dtype, np.integer) or (labels.size and labels.min() < 0):
        raise ValueError(f"{paths['labels']} must hold 0-based integer class ids")
    return np.ascontiguousarray(features, dtype=np.float32), labels.astype(np.int64)


def write_xlsa17(folder: str | os.PathLike, *, features, labels, attributes, class_names, trainval,
                 test_seen, test_unseen, val_classes=(), image_files=None) -> None:
    """Writes ``res101.mat`` and ``att_splits.mat`` in ``folder`` from NumPy arrays (0-based).

    Makes an xlsa17-format data set of one's own features: ``features`` (N, d) (any ``d``),
    ``labels`` (N,) class ids, ``attributes`` (C, p) class vectors (row ``c`` for class ``c``),
    ``class_names`` (C), and the image index sets ``trainval`` (images of the seen classes),
    ``test_seen`` (other images of seen classes), ``test_unseen`` (the unseen classes' images).
    ``val_classes`` (seen class ids) become ``val_loc`` (their ``trainval`` images, the
    class-disjoint validation split of Xian et al.), the rest ``train_loc``. Stored with the
    release's conventions: ``d × N`` features, ``p × C`` attributes (``att`` L2-normalised per
    class, ``original_att`` as given), 1-based labels and indices.

    Example (3 classes, the last one unseen; 6 images of 4 features):
      >>> import tempfile
      >>> root = Path(tempfile.mkdtemp())
      >>> write_xlsa17(root / "MINE", features=np.arange(24.0).reshape(6, 4),
      ...              labels=np.array([0, 1, 0, 1, 2, 2]), attributes=np.eye(3, 2) + 1,
      ...              class_names=["cat", "dog", "fox"], trainval=[0, 1], test_seen=[2, 3],
      ...              test_unseen=[4, 5])
      >>> data = load_xlsa17(root, "MINE")
      >>> data.features.shape, data.unseen_classes.tolist(), data.splits["test_seen"].tolist()
      ((6, 4), [2], [2, 3])
    """
    folder = Path(folder)
    features, labels = np.asarray(features, np.float32), np.asarray(labels).reshape(-1)
    attributes = np.asarray(attributes, np.float64)
    if features.ndim != 2 or features.shape[0] != labels.shape[0]:
        raise ValueError(f"`features` must be (N, d) with N = {labels.shape[0]} labels, got {features.shape}")
    if attributes.ndim != 2 or attributes.shape[0] != len(class_names):
        raise ValueError(f"`attributes` must be (C, p) with C = {len(class_names)} class names, "
                         f"got {attributes.shape}")
    if labels.size and (labels.min() < 0 or labels.max() >= len(class_names)):
        raise ValueError(f"`labels` must be 0-based class ids in [0, {len(class_names)})")
    trainval = np.asarray(trainval, np.int64).reshape(-1)
    in_val = np.isin(labels[trainval], np.asarray(val_classes, np.int64))
    norms = np.maximum(np.linalg.norm(attributes, axis=1, keepdims=True), 1e-12)
    loc = lambda idx: (np.asarray(idx, np.int64).reshape(-1, 1) + 1).astype(np.float64)
    folder.mkdir(parents=True, exist_ok=True)
    res = {"features": features.T, "labels": loc(labels)}
    if image_files is not None:
        res["image_files"] = np.array([[np.array([str(f)])] for f in image_files], dtype=object)
    scipy.io.savemat(os.fspath(folder / "res101.mat"), res)
    names = np.empty((len(class_names), 1), dtype=object)
    for c, name in enumerate(class_names):
        names[c, 0] = np.array([str(name)])
    scipy.io.savemat(os.fspath(folder / "att_splits.mat"), {
        "att": (attributes / norms).T, "original_att": attributes.T, "allclasses_names": names,
        "trainval_loc": loc(trainval), "train_loc": loc(trainval[~in_val]), "val_loc": loc(trainval[in_val]),
        "test_seen_loc": loc(test_seen), "test_unseen_loc": loc(test_unseen),
    })
