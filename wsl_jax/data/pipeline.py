"""grain input pipeline over tfds array_record sources, and host-to-global batch placement.

Stages, per example: ``pad_ragged`` (lists of boxes to fixed arrays with a validity mask) →
``augment`` (training only: random horizontal flip and pad-and-crop, on uint8) → ``normalize``
(float32 in [0, 1], then ``(x - mean) / std``); then batching. Orders are deterministic from the seed
and the iterators' ``get_state()`` / ``set_state()`` resume at the exact next batch (with the default
``worker_count=0``; a checkpoint is tied to its worker count).

Per-process sharding follows ``grain.sharding.ShardOptions`` (default: ``ShardByJaxProcess``). In
training every process defines the same globally shuffled, augmented stream and reads only its rows
of each global batch, so the global batches (and their augmentations, seeded by the global example
index) are the same whatever the process count. Evaluation takes a contiguous slice of the source
per process and reads every example of it exactly once: the last batch is padded with zero examples
and each batch has a boolean ``valid`` field; all shards yield the same number of batches, as
multi-host collectives require.

Batch fields: ``image`` (B, H, W, C) float32, ``labels`` (B, 10) float32, ``valid`` (B,) bool, and when
the source has them ``mask`` (B, H, W) uint8, ``boxes`` (B, max_boxes, 4) float32 (zero padded),
``box_mask`` (B, max_boxes) bool, ``label_per_box`` (B, max_boxes) int32 (-1 padded), ``index`` (B,) int64.

Caveat: horizontal flips change what a digit looks like; pass ``random_flip=False`` for digit data.

Example (build the ``tiny`` cluttered digits, place a batch on the mesh, resume the iterator):
  >>> import tempfile
  >>> from wsl_jax.data import open_source, prepare_dataset
  >>> data_dir = tempfile.mkdtemp()
  >>> _ = prepare_dataset("cluttered_digits/tiny", data_dir)
  Downloading and preparing dataset ...
  Dataset cluttered_digits downloaded and prepared to ...
  >>> source = open_source("cluttered_digits/tiny", "train", data_dir, image_size=(32, 32))
  >>> it = iter(make_train_dataset(source, batch_size=8, seed=0, random_flip=False))
  >>> host = next(it)
  >>> host["boxes"].shape, host["box_mask"].shape
  ((8, 4, 4), (8, 4))
  >>> mesh = jax.make_mesh((jax.device_count(),), ("data",))
  >>> batch = make_global_batch({k: host[k] for k in ("image", "labels", "valid")}, mesh)
  >>> batch["image"].shape, batch["image"].sharding.spec == P("data")
  ((8, 32, 32, 1), True)
  >>> state = it.get_state()
  >>> expected = next(it)["index"]
  >>> it.set_state(state)
  >>> bool((next(it)["index"] == expected).all())
  True
"""
from __future__ import annotations

import functools
import math
from collections.abc import Mapping, Sequence
from typing import Any

import grain
import jax
import numpy as np
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P

DEFAULT_MEAN = (0.5,)
DEFAULT_STD = (0.5,)


def pad_ragged(example: Mapping[str, Any], max_boxes: int = 4,
               image_size: tuple[int, int] | None = None) -> dict[str, np.ndarray]:
    """Decoded tfds example → fixed-shape uint8/float arrays (boxes padded to ``max_boxes``).

    Raises ``ValueError`` naming the field when the image is not ``image_size`` or an example has
    more than ``max_boxes`` boxes.

    >>> ex = {"image": np.zeros((4, 4, 1), np.uint8), "labels": np.eye(10, dtype=np.uint8)[2],
    ...       "boxes": [np.array([0, 0, .5, .5], np.float32)], "label_per_box": [2]}
    >>> out = pad_ragged(ex, max_boxes=3)
    >>> out["boxes"].shape, out["box_mask"].tolist(), out["label_per_box"].tolist()
    ((3, 4), [True, False, False], [2, -1, -1])
    """
    image = np.asarray(example["image"])
    if image.ndim == 2:
        image = image[..., None]
    if image.ndim != 3:
        raise ValueError(f"field 'image' must be (H, W, C), got shape {image.shape}")
    if image_size is not None and tuple(image.shape[:2]) != tuple(image_size):
        raise ValueError(f"field 'image' has size {tuple(image.shape[:2])}, expected {tuple(image_size)}")
    out = {"image": image, "labels": np.asarray(example["labels"], np.float32), "valid": np.bool_(True)}
    if "mask" in example:
        mask = np.asarray(example["mask"])
        out["mask"] = mask[..., 0] if mask.ndim == 3 else mask
    if "boxes" in example:
        boxes = np.asarray(example["boxes"], np.float32).reshape(-1, 4)
        k = boxes.shape[0]
        if k > max_boxes:
            raise ValueError(f"field 'boxes' has {k} boxes, more than max_boxes={max_boxes}")
        out["boxes"] = np.zeros((max_boxes, 4), np.float32)
        out["boxes"][:k] = boxes
        out["box_mask"] = np.arange(max_boxes) < k
        out["label_per_box"] = np.full((max_boxes,), -1, np.int32)
        if "label_per_box" in example:
            out["label_per_box"][:k] = np.asarray(example["label_per_box"], np.int32).reshape(-1)
        if "box_difficult" in example:  # VOC: difficult objects, padded with False.
            out["box_difficult"] = np.zeros((max_boxes,), bool)
            out["box_difficult"][:k] = np.asarray(example["box_difficult"], bool).reshape(-1)
    if "difficult" in example:  # VOC: classes to ignore at evaluation (``where=~difficult``).
        out["difficult"] = np.asarray(example["difficult"], bool)
    if "index" in example:
        out["index"] = np.int64(example["index"])
    return out


def augment(example: dict[str, np.ndarray], rng: np.random.Generator, *, random_flip: bool = True,
            crop_padding: int = 4) -> dict[str, np.ndarray]:
    """Random horizontal flip and pad-and-crop of a ``pad_ragged`` example (image, mask and boxes).

    The crop pads ``crop_padding`` zero pixels per side and cuts back the original size at a random
    offset; boxes are shifted and clipped, and those left empty are dropped from ``box_mask``.

    >>> ex = pad_ragged({"image": np.zeros((8, 8, 1), np.uint8), "labels": np.zeros(10),
    ...                  "boxes": [np.array([0, 0, .5, .25], np.float32)]}, max_boxes=2)
    >>> augment(ex, np.random.default_rng(0), crop_padding=2)["image"].shape
    (8, 8, 1)
    """
    out = dict(example)
    image = example["image"]
    h, w = image.shape[:2]
    boxes = example.get("boxes")
    if random_flip and rng.random() < 0.5:
        out["image"] = image = image[:, ::-1]
        if "mask" in out:
            out["mask"] = out["mask"][:, ::-1]
        if boxes is not None:
            boxes = np.stack([boxes[:, 0], 1 - boxes[:, 3], boxes[:, 2], 1 - boxes[:, 1]], axis=1)
    if crop_padding > 0:
        dy, dx = (int(v) for v in rng.integers(0, 2 * crop_padding + 1, size=2))
        pad = ((crop_padding, crop_padding), (crop_padding, crop_padding))
        out["image"] = np.pad(image, pad + ((0, 0),))[dy:dy + h, dx:dx + w]
        if "mask" in out:
            out["mask"] = np.pad(out["mask"], pad)[dy:dy + h, dx:dx + w]
        if boxes is not None:
            shift = np.array([crop_padding - dy, crop_padding - dx] * 2, np.float32) / np.array([h, w] * 2)
            boxes = np.clip(boxes + shift, 0.0, 1.0)
    if boxes is not None:
        keep = example["box_mask"] & (boxes[:, 2] > boxes[:, 0]) & (boxes[:, 3] > boxes[:, 1])
        out["boxes"] = np.where(keep[:, None], boxes, 0.0).astype(np.float32)
        out["box_mask"] = keep
        out["label_per_box"] = np.where(keep, example["label_per_box"], -1).astype(np.int32)
    out["image"] = np.ascontiguousarray(out["image"])
    if "mask" in out:
        out["mask"] = np.ascontiguousarray(out["mask"])
    return out


def normalize(example: dict[str, np.ndarray], mean: Sequence[float] = DEFAULT_MEAN,
              std: Sequence[float] = DEFAULT_STD) -> dict[str, np.ndarray]:
    """``image`` uint8 → float32 ``(x / 255 - mean) / std`` (per channel, broadcast).

    >>> normalize({"image": np.full((1, 1, 1), 255, np.uint8)}, mean=(0.0,), std=(1.0,))["image"].item()
    1.0
    """
    out = dict(example)
    image = np.asarray(example["image"], np.float32) / np.float32(255.0)
    out["image"] = (image - np.asarray(mean, np.float32)) / np.asarray(std, np.float32)
    return out


def shard_bounds(num_examples: int, shard_options: grain.sharding.ShardOptions) -> tuple[int, int]:
    """Contiguous ``[start, end)`` of one shard; remainders go to the first shards unless dropped.

    >>> shard_bounds(10, grain.sharding.ShardOptions(shard_index=1, shard_count=3))
    (4, 7)
    >>> shard_bounds(10, grain.sharding.ShardOptions(shard_index=1, shard_count=3, drop_remainder=True))
    (3, 6)
    """
    index, count = shard_options.shard_index, shard_options.shard_count
    if not 0 <= index < count:
        raise ValueError(f"shard_index {index} out of range for shard_count {count}")
    base, extra = divmod(num_examples, count)
    if shard_options.drop_remainder:
        return index * base, (index + 1) * base
    start = index * base + min(index, extra)
    return start, start + base + (index < extra)


def num_eval_batches(num_examples: int, batch_size: int, shard_count: int = 1) -> int:
    """Batches every shard yields in evaluation: enough for the largest shard.

    >>> num_eval_batches(20, 8), num_eval_batches(20, 8, shard_count=3)
    (3, 1)
    """
    return math.ceil(math.ceil(num_examples / shard_count) / batch_size)


def _process_fn(max_boxes, image_size):
    return functools.partial(pad_ragged, max_boxes=max_boxes, image_size=image_size)


def _finish(dataset: grain.MapDataset, read_threads: int, worker_count: int) -> grain.IterDataset:
    iter_ds = dataset.to_iter_dataset(grain.ReadOptions(num_threads=read_threads,
                                                        prefetch_buffer_size=max(2 * read_threads, 1)))
    if worker_count > 0:
        iter_ds = iter_ds.mp_prefetch(grain.MultiprocessingOptions(num_workers=worker_count))
    return iter_ds


def make_train_dataset(source, *, batch_size: int, seed: int = 0, num_epochs: int | None = None,
                       shuffle: bool = True, random_flip: bool = True, crop_padding: int = 4,
                       mean: Sequence[float] = DEFAULT_MEAN, std: Sequence[float] = DEFAULT_STD,
                       max_boxes: int = 4, image_size: tuple[int, int] | None = None,
                       shard_options: grain.sharding.ShardOptions | None = None,
                       read_threads: int = 2, worker_count: int = 0) -> grain.IterDataset:
    """Shuffled, augmented, repeated (``num_epochs=None``: forever) batches of this process's rows.

    ``batch_size`` is this process's (host-local) batch; with ``shard_count`` shards (default:
    ``ShardByJaxProcess``, one per JAX process) the global batch has ``batch_size * shard_count``
    rows. Global batch ``t`` is examples ``[t·G, (t+1)·G)`` of one shuffled, augmented stream over
    the whole source (``G`` the global batch size, augmentation seeded by the position in that
    stream), and shard ``i`` yields its rows ``[i·batch_size, (i+1)·batch_size)``, reading only those
    examples. The global batches, in process order, are therefore the same for any shard count.
    Incomplete final global batches are dropped. ``iter(...)`` gives a checkpointable iterator
    (``get_state`` / ``set_state``); its state is per shard.

    >>> source = [{"image": np.full((4, 4, 1), i, np.uint8), "labels": np.zeros(10)} for i in range(6)]
    >>> batch = next(iter(make_train_dataset(source, batch_size=2, crop_padding=0)))
    >>> batch["image"].shape, batch["valid"].tolist()
    ((2, 4, 4, 1), [True, True])

    Two shards of 1 row give the rows of one shard of 2:

    >>> def rows(**kw):
    ...     batches = make_train_dataset(source, crop_padding=0, mean=(0.0,), std=(1 / 255,), **kw)
    ...     return next(iter(batches))["image"][:, 0, 0, 0].tolist()
    >>> halves = [rows(batch_size=1, shard_options=grain.sharding.ShardOptions(i, 2)) for i in (0, 1)]
    >>> halves[0] + halves[1] == rows(batch_size=2)
    True
    """
    if shard_options is None:
        shard_options = grain.sharding.ShardByJaxProcess()
    index, count = shard_options.shard_index, shard_options.shard_count
    if not 0 <= index < count:
        raise ValueError(f"shard_index {index} out of range for shard_count {count}")
    if len(source) < batch_size * count:
        raise ValueError(f"source of {len(source)} examples is smaller than batch_size={batch_size} "
                         f"x {count} shards")
    ds = grain.MapDataset.source(source).seed(seed)
    if shuffle:
        ds = ds.shuffle()
    ds = ds.repeat(num_epochs)
    ds = ds.map(_process_fn(max_boxes, image_size))
    if random_flip or crop_padding > 0:
        ds = ds.random_map(functools.partial(augment, random_flip=random_flip, crop_padding=crop_padding))
    ds = ds.map(functools.partial(normalize, mean=mean, std=std))
    # Row blocks of batch_size; global batch t is blocks [t·count, (t+1)·count), this shard takes one.
    blocks = ds.batch(batch_size, drop_remainder=True)
    if count > 1:
        blocks = blocks[:len(blocks) // count * count][index::count]
    return _finish(blocks, read_threads, worker_count)


def make_eval_dataset(source, *, batch_size: int, mean: Sequence[float] = DEFAULT_MEAN,
                      std: Sequence[float] = DEFAULT_STD, max_boxes: int = 4,
                      image_size: tuple[int, int] | None = None,
                      shard_options: grain.sharding.ShardOptions | None = None,
                      read_threads: int = 2, worker_count: int = 0) -> grain.IterDataset:
    """One pass in source order over this process's shard; the last batch padded, ``valid`` marking real rows.

    Every shard yields ``num_eval_batches(len(source), batch_size, shard_count)`` batches.

    >>> source = [{"image": np.zeros((4, 4, 1), np.uint8), "labels": np.zeros(10)} for _ in range(5)]
    >>> [int(b["valid"].sum()) for b in make_eval_dataset(source, batch_size=4)]
    [4, 1]
    """
    if shard_options is None:
        shard_options = grain.sharding.ShardByJaxProcess()
    full = grain.sharding.ShardOptions(shard_options.shard_index, shard_options.shard_count, False)
    start, end = shard_bounds(len(source), full)
    if len(source) == 0:
        raise ValueError("cannot evaluate on an empty source")
    process = _process_fn(max_boxes, image_size)
    shard = grain.MapDataset.source(source)[start:end].map(process)
    filler = {k: np.zeros_like(v) for k, v in process(source[0]).items()}
    if "label_per_box" in filler:
        filler["label_per_box"] -= 1
    padded_len = num_eval_batches(len(source), batch_size, full.shard_count) * batch_size
    size = end - start

    def example(i: int) -> dict[str, np.ndarray]:
        return shard[i] if i < size else dict(filler)

    ds = grain.MapDataset.range(padded_len).map(example)
    ds = ds.map(functools.partial(normalize, mean=mean, std=std))
    return _finish(ds.batch(batch_size, drop_remainder=False), read_threads, worker_count)


def make_global_batch(host_batch: Mapping[str, Any], mesh: jax.sharding.Mesh, axis: str = "data"):
    """Host-local NumPy batch → global ``jax.Array``s sharded along ``axis`` (leading dimension).

    Each process passes its own rows; the global batch is their concatenation in process order.

    >>> mesh = jax.make_mesh((jax.device_count(),), ("data",))
    >>> batch = make_global_batch({"x": np.arange(jax.device_count() * 2.0)}, mesh)
    >>> batch["x"].shape == (jax.device_count() * 2,), batch["x"].sharding.spec == P("data")
    (True, True)
    """
    sharding = NamedSharding(mesh, P(axis))
    per_process = mesh.shape[axis] // jax.process_count()

    def place(x):
        x = np.asarray(x)
        if x.ndim == 0 or x.shape[0] % max(per_process, 1):
            raise ValueError(f"host batch dimension {x.shape[:1]} is not divisible by the {per_process} "
                             f"local devices of mesh axis {axis!r}")
        return jax.make_array_from_process_local_data(sharding, x)

    return jax.tree.map(place, dict(host_batch))
