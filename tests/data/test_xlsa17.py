"""The xlsa17 loader: small consistent files written here, and the real att_splits.mat files if present."""
from pathlib import Path

import numpy as np
import pytest
import scipy.io

from wsl_jax.data.xlsa17 import load_att_splits, load_res101, load_xlsa17

REAL = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "zsl" / "xlsa17"
# (classes, attributes, seen, unseen) from SPEC B3 / the GBU paper
EXPECTED = {"AWA1": (50, 85, 40, 10), "AWA2": (50, 85, 40, 10), "SUN": (717, 102, 645, 72),
            "APY": (32, 64, 20, 12), "CUB": (200, 312, 150, 50)}


def _cell(strings):
    cell = np.empty((len(strings), 1), dtype=object)
    for i, s in enumerate(strings):
        cell[i, 0] = np.array([s])
    return cell


def _loc(indices_0based):
    return (np.asarray(indices_0based) + 1).astype(np.uint16).reshape(-1, 1)


def write_res101(folder, labels_0based, d=2048, seed=0, image_files=True):
    n = len(labels_0based)
    rng = np.random.default_rng(seed)
    fields = {
        "features": rng.random((d, n)).astype(np.float32),
        "labels": (np.asarray(labels_0based) + 1).astype(np.uint8 if n < 256 else np.int32).reshape(-1, 1),
    }
    if image_files:  # optional for the loader; slow to write for tens of thousands of entries
        fields["image_files"] = _cell([f"/BS/xian/images/{i:05d}.jpg" for i in range(n)])
    scipy.io.savemat(folder / "res101.mat", fields)


def make_toy(root, dataset="TOY", **overrides):
    """5 classes (0-2 seen, 3-4 unseen), 3 attributes, 30 images; 1-based MATLAB conventions."""
    folder = root / dataset
    folder.mkdir(parents=True)
    labels = np.arange(30) % 5
    seen_idx, unseen_idx = np.flatnonzero(labels < 3), np.flatnonzero(labels >= 3)
    original = np.random.default_rng(1).random((3, 5))
    att = {
        "att": original / np.linalg.norm(original, axis=0), "original_att": original,
        "allclasses_names": _cell([f"class{c}" for c in range(5)]),
        "trainval_loc": _loc(seen_idx[:12]), "train_loc": _loc(seen_idx[:8]), "val_loc": _loc(seen_idx[8:12]),
        "test_seen_loc": _loc(seen_idx[12:]), "test_unseen_loc": _loc(unseen_idx),
    }
    att.update({k: v for k, v in overrides.items() if k != "labels"})
    att = {k: v for k, v in att.items() if v is not None}
    scipy.io.savemat(folder / "att_splits.mat", att)
    write_res101(folder, overrides.get("labels", labels))
    return folder, labels, seen_idx, unseen_idx


def test_toy_round_trip(tmp_path):
    folder, labels, seen_idx, unseen_idx = make_toy(tmp_path)
    data = load_xlsa17(tmp_path, "TOY")
    raw = scipy.io.loadmat(folder / "res101.mat")
    assert data.features.shape == (30, 2048) and data.features.dtype == np.float32
    np.testing.assert_array_equal(data.features, raw["features"].T)
    np.testing.assert_array_equal(data.labels, labels)
    assert data.attributes.shape == (5, 3)
    np.testing.assert_allclose(np.linalg.norm(data.attributes, axis=1), 1.0, rtol=1e-6)
    assert data.class_names == [f"class{c}" for c in range(5)]
    np.testing.assert_array_equal(data.splits["trainval"], seen_idx[:12])
    np.testing.assert_array_equal(data.splits["test_unseen"], unseen_idx)
    assert data.seen_classes.tolist() == [0, 1, 2] and data.unseen_classes.tolist() == [3, 4]
    assert data.image_files[3] == "/BS/xian/images/00003.jpg"


def test_missing_folder_and_files(tmp_path):
    with pytest.raises(FileNotFoundError, match="NOPE"):
        load_xlsa17(tmp_path, "NOPE")
    (tmp_path / "EMPTY").mkdir()
    with pytest.raises(FileNotFoundError, match="att_splits.mat"):
        load_xlsa17(tmp_path, "EMPTY")


def test_missing_field_names_file_and_field(tmp_path):
    make_toy(tmp_path, test_unseen_loc=None)
    with pytest.raises(ValueError, match=r"att_splits.mat: field 'test_unseen_loc' is missing"):
        load_xlsa17(tmp_path, "TOY")


def test_wrong_shapes(tmp_path):
    make_toy(tmp_path, allclasses_names=_cell(["a", "b"]))
    with pytest.raises(ValueError, match="'allclasses_names' has 2 names"):
        load_att_splits(tmp_path / "TOY" / "att_splits.mat")
    scipy.io.savemat(tmp_path / "res.mat", {"features": np.zeros((4, 3)), "labels": np.ones((2, 1))})
    with pytest.raises(ValueError, match=r"res.mat: field 'labels' has 2 entries, 'features' has 3"):
        load_res101(tmp_path / "res.mat")
    scipy.io.savemat(tmp_path / "res2.mat", {"features": np.zeros((4, 3)), "labels": np.ones((3, 2))})
    with pytest.raises(ValueError, match="'labels' must be a vector"):
        load_res101(tmp_path / "res2.mat")


def test_index_out_of_range(tmp_path):
    make_toy(tmp_path, val_loc=np.array([[31]], np.uint16))
    with pytest.raises(ValueError, match=r"field 'val_loc' has index 31 .* beyond the 30 examples"):
        load_xlsa17(tmp_path, "TOY")


def test_zero_based_indices_are_rejected(tmp_path):
    make_toy(tmp_path, train_loc=np.array([[0], [1]], np.uint16))
    with pytest.raises(ValueError, match="'train_loc' must hold 1-based"):
        load_xlsa17(tmp_path, "TOY")


def test_unseen_class_in_trainval(tmp_path):
    _, _, seen_idx, unseen_idx = make_toy(tmp_path, labels=np.arange(30) % 5)
    # move one unseen image into trainval (and out of test_unseen, keeping the index sets disjoint)
    make_toy(tmp_path / "b", trainval_loc=_loc(np.r_[seen_idx[:12], unseen_idx[0]]),
             test_unseen_loc=_loc(unseen_idx[1:]))
    with pytest.raises(ValueError, match=r"'trainval_loc' holds examples of unseen classes \['class3'\]"):
        load_xlsa17(tmp_path / "b", "TOY")


def test_overlapping_splits(tmp_path):
    _, _, seen_idx, _ = make_toy(tmp_path)
    make_toy(tmp_path / "b", test_seen_loc=_loc(seen_idx[10:]))
    with pytest.raises(ValueError, match="'trainval_loc' and 'test_seen_loc' share 2 indices"):
        load_xlsa17(tmp_path / "b", "TOY")


@pytest.mark.parametrize("dataset", sorted(EXPECTED))
def test_real_att_splits(dataset, tmp_path):
    path = REAL / dataset / "att_splits.mat"
    if not path.is_file():
        pytest.skip(f"real xlsa17 file not found: {path}")
    num_classes, num_att, num_seen, num_unseen = EXPECTED[dataset]
    att = load_att_splits(path)
    assert att.attributes.shape == (num_classes, num_att) and len(att.class_names) == num_classes
    np.testing.assert_allclose(np.linalg.norm(att.attributes, axis=1), 1.0, rtol=1e-5)
    assert all(loc.min() >= 0 for loc in att.splits.values())
    # The real res101.mat (features and labels) is not available: pair the real index sets with a
    # small res101.mat (d=4) whose labels put trainval/test_seen images in the first `num_seen`
    # classes and test_unseen images in the others, to exercise the range and consistency checks.
    n = 1 + max(int(loc.max()) for loc in att.splits.values())
    labels = np.zeros(n, np.int64)
    for key in ("trainval", "test_seen"):
        labels[att.splits[key]] = att.splits[key] % num_seen
    labels[att.splits["test_unseen"]] = num_seen + att.splits["test_unseen"] % num_unseen
    folder = tmp_path / dataset
    folder.mkdir()
    (folder / "att_splits.mat").symlink_to(path)
    write_res101(folder, labels, d=4, image_files=False)
    data = load_xlsa17(tmp_path, dataset)
    assert data.features.shape == (n, 4) and data.image_files is None
    assert len(data.seen_classes) == num_seen and len(data.unseen_classes) == num_unseen


def _own_data(n_classes=6, d=7, p=3, per_class=10, seed=0):
    """Features of dimension d linear in p-dimensional class vectors; the last 2 classes unseen."""
    rng = np.random.default_rng(seed)
    attributes = rng.normal(size=(n_classes, p))
    labels = np.repeat(np.arange(n_classes), per_class)
    features = attributes[labels] @ rng.normal(size=(p, d)) + 0.05 * rng.normal(size=(len(labels), d))
    seen = labels < n_classes - 2
    seen_idx, unseen_idx = np.flatnonzero(seen), np.flatnonzero(~seen)
    test_seen = seen_idx[::5]  # every 5th seen image
    trainval = np.setdiff1d(seen_idx, test_seen)
    return features, labels, attributes, trainval, test_seen, unseen_idx


def test_write_xlsa17_round_trip_any_name_and_dimension(tmp_path):
    from wsl_jax.data.xlsa17 import write_xlsa17

    features, labels, attributes, trainval, test_seen, test_unseen = _own_data(d=7)
    names = [f"bird {c}" for c in range(6)]
    write_xlsa17(tmp_path / "My Birds", features=features, labels=labels, attributes=attributes,
                 class_names=names, trainval=trainval, test_seen=test_seen, test_unseen=test_unseen,
                 val_classes=[3], image_files=[f"img{i}.jpg" for i in range(len(labels))])
    data = load_xlsa17(tmp_path, "My Birds")
    np.testing.assert_array_equal(data.features, features.astype(np.float32))
    np.testing.assert_array_equal(data.labels, labels)
    np.testing.assert_allclose(data.original_attributes, attributes, rtol=1e-6)
    np.testing.assert_allclose(np.linalg.norm(data.attributes, axis=1), 1.0, rtol=1e-6)
    assert data.class_names == names and data.image_files[2] == "img2.jpg"
    np.testing.assert_array_equal(data.splits["trainval"], trainval)
    np.testing.assert_array_equal(data.splits["val"], trainval[labels[trainval] == 3])
    np.testing.assert_array_equal(data.splits["train"], trainval[labels[trainval] != 3])
    np.testing.assert_array_equal(data.splits["test_unseen"], test_unseen)
    assert data.seen_classes.tolist() == [0, 1, 2, 3] and data.unseen_classes.tolist() == [4, 5]
    # What the file holds is the release's layout: d x N features, p x C att, 1-based indices.
    raw = scipy.io.loadmat(tmp_path / "My Birds" / "res101.mat")
    assert raw["features"].shape == (7, 60) and raw["labels"].min() == 1
    raw = scipy.io.loadmat(tmp_path / "My Birds" / "att_splits.mat")
    assert raw["att"].shape == (3, 6) and raw["trainval_loc"].min() == trainval.min() + 1


def test_npy_features_and_labels_replace_res101(tmp_path):
    from wsl_jax.data.xlsa17 import write_xlsa17

    features, labels, attributes, trainval, test_seen, test_unseen = _own_data(d=5)
    folder = tmp_path / "OWN"
    write_xlsa17(folder, features=features, labels=labels, attributes=attributes,
                 class_names=list("abcdef"), trainval=trainval, test_seen=test_seen,
                 test_unseen=test_unseen)
    (folder / "res101.mat").unlink()
    np.save(folder / "features.npy", features * 2)
    np.save(folder / "labels.npy", labels)
    data = load_xlsa17(tmp_path, "OWN")
    np.testing.assert_array_equal(data.features, (features * 2).astype(np.float32))
    np.testing.assert_array_equal(data.labels, labels)
    assert data.image_files is None and data.splits["val"].size == 0
    np.save(folder / "labels.npy", labels + 1)  # 1-based by mistake: class 6 of 6
    with pytest.raises(ValueError, match="labels.npy holds 0-based ids in \\[0, 6\\)"):
        load_xlsa17(tmp_path, "OWN")
    np.save(folder / "labels.npy", labels[:-1])
    with pytest.raises(ValueError, match="one label per row of features.npy"):
        load_xlsa17(tmp_path, "OWN")
    (folder / "labels.npy").unlink()
    with pytest.raises(FileNotFoundError, match="labels.npy not found"):
        load_xlsa17(tmp_path, "OWN")


def test_write_xlsa17_bad_inputs(tmp_path):
    from wsl_jax.data.xlsa17 import write_xlsa17

    features, labels, attributes, trainval, test_seen, test_unseen = _own_data()
    kw = {"features": features, "labels": labels, "attributes": attributes, "class_names": list("abcdef"),
          "trainval": trainval, "test_seen": test_seen, "test_unseen": test_unseen}
    with pytest.raises(ValueError, match="`attributes` must be \\(C, p\\) with C = 5"):
        write_xlsa17(tmp_path / "X", **(kw | {"class_names": list("abcde")}))
    with pytest.raises(ValueError, match="`labels` must be 0-based class ids in \\[0, 6\\)"):
        write_xlsa17(tmp_path / "X", **(kw | {"labels": labels + 1}))
    with pytest.raises(ValueError, match="`features` must be \\(N, d\\) with N = 60"):
        write_xlsa17(tmp_path / "X", **(kw | {"features": features[:-1]}))
