"""Data: cluttered-digit tfds builders (array_record, no TensorFlow) and the grain input pipeline.

Importing this package registers the tfds builders ``cluttered_digits`` and ``cluttered_mnist``.
It also registers ``cifar_mosaic`` (CIFAR-10 mosaics with boxes and tile masks) and ``labeled_image_folder``
(``<root>/<split>/<class>/`` images), and provides the VOC 2007 adapter (``voc_source``) and the
xlsa17 zero-shot loader (``load_xlsa17``).

Example (build the ``tiny`` config, then draw a training batch):
  >>> import tempfile
  >>> from wsl_jax import data
  >>> data_dir = tempfile.mkdtemp()
  >>> _ = data.prepare_dataset("cluttered_digits/tiny", data_dir)
  Downloading and preparing dataset ...
  Dataset cluttered_digits downloaded and prepared to ...
  >>> source = data.open_source("cluttered_digits/tiny", "train", data_dir, image_size=(32, 32))
  >>> batch = next(iter(data.make_train_dataset(source, batch_size=8, seed=0, random_flip=False)))
  >>> batch["image"].shape, batch["labels"].shape, bool(batch["valid"].all())
  ((8, 32, 32, 1), (8, 10), True)
"""
from wsl_jax.data.cifar_mosaic import CIFAR10_CLASSES, CifarMosaic, MosaicConfig, read_cifar_archive
from wsl_jax.data.clutter import (
                                   CanvasSpec,
                                   DigitPool,
                                   compose_canvas,
                                   example_rng,
                                   split_pool_indices,
)
from wsl_jax.data.cluttered_digits import ClutteredConfig, ClutteredDigits, load_sklearn_digits
from wsl_jax.data.cluttered_mnist import ClutteredMnist
from wsl_jax.data.idx import load_mnist, read_idx
from wsl_jax.data.image_folder import LabeledImageFolder, scan_image_folder
from wsl_jax.data.pipeline import (
                                   augment,
                                   make_eval_dataset,
                                   make_global_batch,
                                   make_train_dataset,
                                   normalize,
                                   num_eval_batches,
                                   pad_ragged,
                                   shard_bounds,
)
from wsl_jax.data.source import open_source, prepare_dataset
from wsl_jax.data.voc import VOC_CLASSES, MappedSource, voc_example, voc_source
from wsl_jax.data.xlsa17 import Xlsa17Data, load_att_splits, load_res101, load_xlsa17

__all__ = [
    "CanvasSpec", "ClutteredConfig", "ClutteredDigits", "ClutteredMnist", "DigitPool", "augment",
    "compose_canvas", "example_rng", "load_mnist", "load_sklearn_digits", "make_eval_dataset",
    "make_global_batch", "make_train_dataset", "normalize", "num_eval_batches", "open_source",
    "pad_ragged", "prepare_dataset", "read_idx", "shard_bounds", "split_pool_indices",
    # CIFAR mosaics, image folders, VOC 2007, xlsa17
    "CIFAR10_CLASSES", "CifarMosaic", "LabeledImageFolder", "MappedSource", "MosaicConfig", "VOC_CLASSES",
    "Xlsa17Data", "load_att_splits", "load_res101", "load_xlsa17", "read_cifar_archive",
    "scan_image_folder", "voc_example", "voc_source",
]
