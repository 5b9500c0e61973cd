"""PASCAL VOC 2007 (tfds ``voc/2007``) examples mapped to this project's layout.

tfds ``voc/2007`` examples (read with ``tfds.data_source``, no TensorFlow) have ``image`` (H, W, 3),
``image/filename``, ``labels`` / ``labels_no_difficult`` (lists of class ids) and ``objects`` with
per-object ``label``, ``bbox`` (``[ymin, xmin, ymax, xmax]`` normalised, as ours), ``is_difficult``,
``is_truncated`` and ``pose``. ``voc_example`` turns one into:

* ``image`` (H, W, 3) uint8, resized (bilinear) to ``image_size`` when given (boxes are normalised,
  so they are unchanged);
* ``labels`` (20,) uint8 multi-hot over **all** objects, difficult ones included: the training
  convention of the reference code (SPEC A8), kept on purpose;
* ``difficult`` (20,) uint8: classes whose objects in the image are all difficult. The VOC evaluation
  ignores these (image, class) pairs: pass ``where=1 - difficult`` to the AP metric;
* ``boxes`` (k, 4) float32, ``label_per_box`` (k,) int64, ``box_difficult`` (k,) bool;
* ``file_name`` (str) and ``index`` (int64, when given).

``voc_source`` wraps a data source so that ``make_train_dataset`` / ``make_eval_dataset`` read the
mapped examples (give ``image_size``, VOC images differ in size, and ``max_boxes=64``: VOC 2007 images
hold up to 42 objects). Note that ``pipeline.pad_ragged`` does not carry ``difficult`` or
``box_difficult`` into batches; read them from the source for evaluation.

With the prepared tfds data (not run here; the VOC download is not reachable)::

    train = voc_source(tfds.data_source("voc/2007", split="trainval", data_dir=d), image_size=(224, 224))
    batches = make_train_dataset(train, batch_size=16, max_boxes=64, mean=IMAGENET_MEAN, std=IMAGENET_STD)

Example (any random-access source of tfds-layout examples works, here a list of one):
  >>> from wsl_jax.data import make_eval_dataset
  >>> ex = {"image": np.zeros((6, 8, 3), np.uint8), "image/filename": "000005.jpg",
  ...       "labels": [8], "labels_no_difficult": [8],
  ...       "objects": {"label": [8], "is_difficult": [False], "is_truncated": [False], "pose": [0],
  ...                   "bbox": np.array([[0, 0, .5, .5]], np.float32)}}
  >>> source = voc_source([ex], image_size=(4, 4))
  >>> source[0]["file_name"], VOC_CLASSES[int(source[0]["label_per_box"][0])]
  ('000005.jpg', 'chair')
  >>> batch = next(iter(make_eval_dataset(source, batch_size=2, max_boxes=64)))
  >>> batch["image"].shape, batch["valid"].tolist()
  ((2, 4, 4, 3), [True, False])
"""
from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
from PIL import Image

VOC_CLASSES = ("aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair", "cow",
               "diningtable", "dog", "horse", "motorbike", "person", "pottedplant", "sheep", "sofa",
               "train", "tvmonitor")
NUM_VOC_CLASSES = len(VOC_CLASSES)


def _field(objects: Mapping[str, Any], name: str, dtype, shape_tail=()) -> np.ndarray:
    if name not in objects:
        raise ValueError(f"VOC example field 'objects/{name}' is missing")
    return np.asarray(objects[name], dtype).reshape((-1,) + tuple(shape_tail))


def voc_example(example: Mapping[str, Any], image_size: tuple[int, int] | None = None,
                index: int | None = None) -> dict[str, Any]:
    """One tfds ``voc/2007`` example → our layout (see the module docstring).

    Raises ``ValueError`` naming the field when ``objects`` fields disagree in length or a class id
    is out of range.

    >>> ex = {"image": np.zeros((6, 8, 3), np.uint8), "image/filename": "000005.jpg",
    ...       "labels": [8, 14], "labels_no_difficult": [8],
    ...       "objects": {"label": [8, 14, 8], "is_difficult": [False, True, True],
    ...                   "bbox": np.array([[0, 0, .5, .5], [.5, .5, 1, 1], [0, .5, .5, 1]], np.float32),
    ...                   "is_truncated": [False] * 3, "pose": [0] * 3}}
    >>> out = voc_example(ex, image_size=(4, 4))
    >>> out["image"].shape, np.flatnonzero(out["labels"]).tolist(), np.flatnonzero(out["difficult"]).tolist()
    ((4, 4, 3), [8, 14], [14])
    >>> out["label_per_box"].tolist(), out["box_difficult"].tolist()
    ([8, 14, 8], [False, True, True])
    """
    image = np.asarray(example["image"])
    if image.ndim != 3 or image.shape[-1] != 3:
        raise ValueError(f"VOC example field 'image' must be (H, W, 3), got shape {image.shape}")
    if image_size is not None and tuple(image.shape[:2]) != tuple(image_size):
        image = np.asarray(Image.fromarray(image).resize((int(image_size[1]), int(image_size[0])),
                                                         Image.BILINEAR), np.uint8)
    objects = example.get("objects")
    if objects is None:
        raise ValueError("VOC example field 'objects' is missing")
    label = _field(objects, "label", np.int64)
    boxes = _field(objects, "bbox", np.float32, (4,))
    difficult = _field(objects, "is_difficult", bool)
    sizes = {"label": len(label), "bbox": len(boxes), "is_difficult": len(difficult)}
    if len(set(sizes.values())) != 1:
        raise ValueError(f"VOC example 'objects' fields disagree in length: {sizes}")
    if label.size and (label.min() < 0 or label.max() >= NUM_VOC_CLASSES):
        raise ValueError(f"VOC example field 'objects/label' has ids outside 0..{NUM_VOC_CLASSES - 1}: "
                         f"{label.tolist()}")
    labels = np.zeros(NUM_VOC_CLASSES, np.uint8)
    labels[label] = 1
    easy = np.zeros(NUM_VOC_CLASSES, np.uint8)
    easy[label[~difficult]] = 1
    out = {
        "image": image,
        "labels": labels,
        "difficult": (labels & (1 - easy)).astype(np.uint8),
        "boxes": boxes,
        "label_per_box": label,
        "box_difficult": difficult,
        "file_name": example.get("image/filename", ""),
    }
    if isinstance(out["file_name"], bytes):
        out["file_name"] = out["file_name"].decode()
    if index is not None:
        out["index"] = np.int64(index)
    return out


class MappedSource(Sequence):
    """A random-access source whose items are ``fn(source[i], index=i)``; grain reads it like a tfds one.

    >>> src = MappedSource([{"v": 1}, {"v": 2}], lambda ex, index: {"v": ex["v"] * 10, "index": index})
    >>> len(src), src[1]
    (2, {'v': 20, 'index': 1})
    """

    def __init__(self, source, fn: Callable[..., dict]):
        self.source = source
        self.fn = fn

    def __len__(self) -> int:
        return len(self.source)

    def __getitem__(self, i):
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(len(self)))]
        if not -len(self) <= i < len(self):
            raise IndexError(f"index {i} out of range for a source of {len(self)} examples")
        i = int(i) % len(self)
        return self.fn(self.source[i], index=i)


def voc_source(source, image_size: tuple[int, int] | None = None) -> MappedSource:
    """A tfds ``voc/2007`` data source whose examples are mapped by ``voc_example`` (with ``index``).

    Typical use: ``voc_source(tfds.data_source("voc/2007", split="test", data_dir=d), (448, 448))``;
    ``test[0]["difficult"]`` then gives the classes to ignore at evaluation for that image.

    Example (a one-example source; its only object, a cat, is difficult):
      >>> ex = {"image": np.zeros((6, 8, 3), np.uint8), "image/filename": "000001.jpg",
      ...       "labels": [7], "labels_no_difficult": [],
      ...       "objects": {"label": [7], "is_difficult": [True], "is_truncated": [False],
      ...                   "pose": [0], "bbox": np.zeros((1, 4), np.float32)}}
      >>> test = voc_source([ex], image_size=(4, 4))
      >>> ex = test[0]
      >>> np.flatnonzero(ex["difficult"]).tolist(), int(ex["index"]), ex["image"].shape
      ([7], 0, (4, 4, 3))
    """
    return MappedSource(source, lambda ex, index: voc_example(ex, image_size=image_size, index=index))
