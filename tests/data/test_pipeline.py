"""The grain pipeline over the tiny cluttered_digits build, source errors and global batches."""
import grain
import jax
import numpy as np
import pytest

from wsl_jax.data.cluttered_digits import ClutteredDigits
from wsl_jax.data.pipeline import (
    augment,
    make_eval_dataset,
    make_global_batch,
    make_train_dataset,
    normalize,
    num_eval_batches,
    pad_ragged,
)
from wsl_jax.data.source import open_source, prepare_dataset

NAME = "cluttered_digits/tiny"


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    directory = tmp_path_factory.mktemp("tfds_pipeline")
    ClutteredDigits(config="tiny", data_dir=str(directory)).download_and_prepare(file_format="array_record")
    return directory


@pytest.fixture(scope="module")
def train_source(data_dir):
    return open_source(NAME, "train", data_dir, image_size=(32, 32))


def _by_index(source):
    return {int(source[i]["index"]): source[i] for i in range(len(source))}


def _take(iterator, n):
    return [next(iterator) for _ in range(n)]


def _assert_batches_equal(a, b):
    assert a.keys() == b.keys()
    for key in a:
        np.testing.assert_array_equal(a[key], b[key], err_msg=key)


# ------------------------------------------------------------------------------ open_source errors


def test_open_source_errors(data_dir, tmp_path):
    with pytest.raises(FileNotFoundError, match="does_not_exist"):
        open_source(NAME, "train", tmp_path / "does_not_exist")
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="empty"):
        open_source(NAME, "train", tmp_path / "empty")
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "unrelated.txt").write_text("x")
    with pytest.raises(FileNotFoundError, match="not prepared"):
        open_source(NAME, "train", tmp_path / "other")
    with pytest.raises(ValueError, match="'dev'.*available.*train"):
        open_source(NAME, "dev", data_dir)
    with pytest.raises(ValueError, match="field 'image'.*\\(32, 32\\).*\\(64, 64\\)"):
        open_source(NAME, "train", data_dir, image_size=(64, 64))
    assert len(open_source(NAME, "test[:5]", data_dir)) == 5


def test_prepare_dataset_reuses_a_prepared_build(data_dir):
    info_file = next(data_dir.glob("cluttered_digits/tiny/*/dataset_info.json"))
    before = info_file.stat().st_mtime_ns
    builder = prepare_dataset(NAME, data_dir)
    assert info_file.stat().st_mtime_ns == before
    assert {s: builder.info.splits[s].num_examples for s in ("train", "validation", "test")} == {
        "train": 20, "validation": 20, "test": 20}
    assert builder.info.features["image"].shape == (32, 32, 1)


def test_pad_ragged_errors():
    example = {"image": np.zeros((8, 8, 1), np.uint8), "labels": np.zeros(10),
               "boxes": [np.array([0, 0, .5, .5], np.float32)] * 3, "label_per_box": [1, 2, 3]}
    with pytest.raises(ValueError, match="field 'boxes'.*max_boxes=2"):
        pad_ragged(example, max_boxes=2)
    with pytest.raises(ValueError, match="field 'image'"):
        pad_ragged(example, image_size=(16, 16))


# ------------------------------------------------------------------------------ training batches


def test_train_batches_without_augmentation_are_the_normalised_source(train_source):
    examples = _by_index(train_source)
    it = iter(make_train_dataset(train_source, batch_size=8, seed=1, random_flip=False, crop_padding=0,
                                 mean=(0.25,), std=(0.5,)))
    batch = next(it)
    assert batch["image"].shape == (8, 32, 32, 1) and batch["image"].dtype == np.float32
    assert batch["boxes"].shape == (8, 4, 4) and batch["box_mask"].shape == (8, 4)
    assert batch["mask"].shape == (8, 32, 32) and batch["valid"].all()
    for row, index in enumerate(batch["index"]):
        e = examples[int(index)]
        np.testing.assert_allclose(batch["image"][row], (e["image"] / 255.0 - 0.25) / 0.5, atol=1e-6)
        np.testing.assert_array_equal(batch["labels"][row], e["labels"])
        k = len(e["boxes"])
        assert batch["box_mask"][row].sum() == k
        np.testing.assert_array_equal(batch["boxes"][row, :k], np.asarray(e["boxes"]))
        assert (batch["boxes"][row, k:] == 0).all() and (batch["label_per_box"][row, k:] == -1).all()


def test_train_order_deterministic_from_seed_and_reshuffled_per_epoch(train_source):
    def indices(seed, n=5):
        it = iter(make_train_dataset(train_source, batch_size=4, seed=seed))
        return np.concatenate([b["index"] for b in _take(it, n)])

    first = indices(0)
    np.testing.assert_array_equal(first, indices(0))
    assert not np.array_equal(first, indices(1))
    assert sorted(first.tolist()) == list(range(20))  # 5 batches of 4 = one epoch, each example once
    assert not np.array_equal(first, np.arange(20))
    epochs = np.concatenate([b["index"] for b in _take(iter(make_train_dataset(train_source, batch_size=4)), 10)])
    assert not np.array_equal(epochs[:20], epochs[20:])  # a new permutation in epoch 2


def test_iterator_state_restores_the_exact_next_batch(train_source):
    dataset = make_train_dataset(train_source, batch_size=6, seed=3)
    it = iter(dataset)
    _take(it, 4)  # crosses the epoch boundary (3 batches per epoch)
    state = it.get_state()
    expected = _take(it, 3)
    restored = iter(make_train_dataset(train_source, batch_size=6, seed=3))
    restored.set_state(state)
    for a, b in zip(expected, _take(restored, 3)):
        _assert_batches_equal(a, b)


def test_finite_epochs_and_sharding_cover_the_data(train_source):
    seen = []
    for shard in range(2):
        options = grain.sharding.ShardOptions(shard_index=shard, shard_count=2, drop_remainder=True)
        batches = list(make_train_dataset(train_source, batch_size=5, num_epochs=1, shard_options=options))
        assert len(batches) == 2
        seen.append(set(np.concatenate([b["index"] for b in batches]).tolist()))
    assert not seen[0] & seen[1] and len(seen[0] | seen[1]) == 20
    with pytest.raises(ValueError, match="smaller than batch_size"):
        make_train_dataset(train_source, batch_size=32)


@pytest.mark.parametrize("shard_count", [2, 4])
def test_global_batches_do_not_depend_on_the_shard_count(train_source, shard_count):
    """Per-process rows, concatenated in process order, are the one-process batches (augmented)."""
    def batches(count, index, n=7):  # 7 global batches of 8 cross two epochs of 20 examples
        options = grain.sharding.ShardOptions(shard_index=index, shard_count=count)
        it = iter(make_train_dataset(train_source, batch_size=8 // count, seed=5, shard_options=options))
        return _take(it, n)

    single = batches(1, 0)
    shards = [batches(shard_count, i) for i in range(shard_count)]
    for step, expected in enumerate(single):
        _assert_batches_equal(expected, {k: np.concatenate([s[step][k] for s in shards])
                                         for k in expected})


def test_sharded_iterator_state_restores_the_exact_next_batch(train_source):
    options = grain.sharding.ShardOptions(shard_index=1, shard_count=2)
    it = iter(make_train_dataset(train_source, batch_size=3, seed=2, shard_options=options))
    _take(it, 5)
    state = it.get_state()
    expected = _take(it, 2)
    restored = iter(make_train_dataset(train_source, batch_size=3, seed=2, shard_options=options))
    restored.set_state(state)
    for a, b in zip(expected, _take(restored, 2)):
        _assert_batches_equal(a, b)


def _check_mask_box_consistency(out, size=32):
    for box, cls, ok in zip(out["boxes"], out["label_per_box"], out["box_mask"]):
        if not ok:
            assert cls == -1 and (box == 0).all()
            continue
        y0, x0, y1, x1 = np.round(box * size).astype(int)
        ys, xs = np.nonzero(out["mask"] == cls + 1)
        assert ((ys >= y0) & (ys < y1) & (xs >= x0) & (xs < x1)).any()  # the box holds its digit
    for cls in set(np.unique(out["mask"]).tolist()) - {0, 255}:  # labelled pixels lie in their boxes
        ys, xs = np.nonzero(out["mask"] == cls)
        inside = np.zeros_like(ys, bool)
        for box, c, ok in zip(out["boxes"], out["label_per_box"], out["box_mask"]):
            if ok and c + 1 == cls:
                y0, x0, y1, x1 = np.round(box * size).astype(int)
                inside |= (ys >= y0) & (ys < y1) & (xs >= x0) & (xs < x1)
        assert inside.all()


def test_augmentation_keeps_image_mask_and_boxes_consistent(train_source):
    flips = kept = shifts = 0
    for i in range(len(train_source)):
        raw = pad_ragged(train_source[i])
        _check_mask_box_consistency(raw)
        for seed in range(4):
            rng = np.random.default_rng(seed)
            flip_only = augment(raw, rng, random_flip=True, crop_padding=0)
            if np.array_equal(flip_only["image"], raw["image"][:, ::-1]) and not np.array_equal(
                    raw["image"], raw["image"][:, ::-1]):
                flips += 1
                np.testing.assert_array_equal(flip_only["mask"], raw["mask"][:, ::-1])
            else:
                kept += 1
                np.testing.assert_array_equal(flip_only["image"], raw["image"])
            _check_mask_box_consistency(flip_only)
            crop_only = augment(raw, rng, random_flip=False, crop_padding=4)
            shifts += not np.array_equal(crop_only["image"], raw["image"])
            assert crop_only["image"].shape == raw["image"].shape == (32, 32, 1)
            assert crop_only["image"].sum() <= raw["image"].sum()  # shifting only loses border pixels
            _check_mask_box_consistency(crop_only)
            _check_mask_box_consistency(augment(raw, rng, random_flip=True, crop_padding=6))
    assert flips > 10 and kept > 10 and shifts > 40


def test_normalize_uses_mean_and_std():
    out = normalize({"image": np.array([[[0], [255]]], np.uint8)}, mean=(0.5,), std=(0.25,))
    np.testing.assert_allclose(out["image"].ravel(), [-2.0, 2.0])


# ------------------------------------------------------------------------------ evaluation


@pytest.mark.parametrize("batch_size,shard_count", [(8, 1), (8, 3), (6, 2)])
def test_eval_reads_every_example_exactly_once(data_dir, batch_size, shard_count):
    source = open_source(NAME, "validation", data_dir)
    valid_indices, counts = [], set()
    for shard in range(shard_count):
        options = grain.sharding.ShardOptions(shard_index=shard, shard_count=shard_count)
        batches = list(make_eval_dataset(source, batch_size=batch_size, shard_options=options))
        counts.add(len(batches))
        for b in batches:
            assert b["image"].shape[0] == batch_size
            valid_indices += b["index"][b["valid"]].tolist()
            padded = ~b["valid"]
            assert (b["labels"][padded] == 0).all() and not b["box_mask"][padded].any()
    assert counts == {num_eval_batches(20, batch_size, shard_count)}  # the same count on every shard
    assert sorted(valid_indices) == list(range(20))


def test_eval_is_not_augmented_and_in_source_order(data_dir):
    source = open_source(NAME, "test", data_dir)
    batches = list(make_eval_dataset(source, batch_size=8, mean=(0.0,), std=(1.0,)))
    assert [int(b["valid"].sum()) for b in batches] == [8, 8, 4]
    images = np.concatenate([b["image"] for b in batches])[:20]
    np.testing.assert_allclose(images, np.stack([source[i]["image"] for i in range(20)]) / 255.0, atol=1e-6)


# ------------------------------------------------------------------------------ global batches


def test_make_global_batch_on_eight_devices(data_dir):
    assert jax.device_count() == 8, "the root conftest.py sets 8 CPU devices"
    mesh = jax.make_mesh((8,), ("data",))
    source = open_source(NAME, "test", data_dir)
    host = next(iter(make_eval_dataset(source, batch_size=16)))
    batch = make_global_batch(host, mesh)
    for key, value in host.items():
        array = batch[key]
        assert isinstance(array, jax.Array) and array.shape == value.shape
        assert array.sharding.spec == jax.sharding.PartitionSpec("data")
        assert len(array.addressable_shards) == 8
        for shard in array.addressable_shards:
            assert shard.data.shape[0] == 2
            np.testing.assert_array_equal(np.asarray(shard.data), value[shard.index])
        np.testing.assert_array_equal(np.asarray(array), value)
    total = jax.jit(lambda x: x.sum())(batch["image"])
    np.testing.assert_allclose(total, host["image"].sum(), rtol=1e-5)
    with pytest.raises(ValueError, match="not divisible"):
        make_global_batch({"x": np.zeros((6, 2))}, mesh)


def test_pad_ragged_keeps_voc_difficult_flags():
    example = {"image": np.zeros((4, 4, 3), np.uint8), "labels": np.eye(20, dtype=np.uint8)[3],
               "difficult": np.eye(20, dtype=bool)[3], "boxes": [np.array([0, 0, .5, .5])] * 2,
               "label_per_box": [3, 3], "box_difficult": [True, False]}
    out = pad_ragged(example, max_boxes=3)
    assert out["difficult"].dtype == bool and out["difficult"].tolist() == example["difficult"].tolist()
    assert out["box_difficult"].tolist() == [True, False, False]
