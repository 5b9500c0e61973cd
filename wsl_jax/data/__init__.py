"""Data: cluttered-digit tfds builders (array_record, no TensorFlow) and the grain input pipeline.

Importing this package registers the tfds builders ``cluttered_digits`` and ``cluttered_mnist``.

Example (not run)::

    from wsl_jax import data
    data.prepare_dataset("cluttered_digits/tiny", "/tmp/tfds")
    source = data.open_source("cluttered_digits/tiny", "train", "/tmp/tfds", image_size=(32, 32))
    batches = iter(data.make_train_dataset(source, batch_size=8, seed=0, random_flip=False))
"""
from wsl_jax.data.clutter import CanvasSpec, DigitPool, compose_canvas, example_rng, split_pool_indices
from wsl_jax.data.cluttered_digits import ClutteredConfig, ClutteredDigits, load_sklearn_digits
from wsl_jax.data.cluttered_mnist import ClutteredMnist
from wsl_jax.data.idx import load_mnist, read_idx
from wsl_jax.data.pipeline import (augment, make_eval_dataset, make_global_batch, make_train_dataset,
                                   normalize, num_eval_batches, pad_ragged, shard_bounds)
from wsl_jax.data.source import open_source, prepare_dataset

__all__ = [
    "CanvasSpec", "ClutteredConfig", "ClutteredDigits", "ClutteredMnist", "DigitPool", "augment",
    "compose_canvas", "example_rng", "load_mnist", "load_sklearn_digits", "make_eval_dataset",
    "make_global_batch", "make_train_dataset", "normalize", "num_eval_batches", "open_source",
    "pad_ragged", "prepare_dataset", "read_idx", "shard_bounds", "split_pool_indices",
]
