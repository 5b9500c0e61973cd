"""Default settings of a zero-shot run (``config.task == "zsl"``), shared by the zero-shot configs.

``base_config()`` holds every field :func:`wsl_jax.train.zero_shot.train_and_evaluate_zsl` reads;
the config files change what differs. Fields:

* ``protocol``: ``"gbu"`` (select the epoch on the validation classes, then retrain on all seen
  classes and test that model) or ``"train_only"`` (test the phase-1 model); see
  :mod:`wsl_jax.zsl.protocol`.
* ``zsl``: ``scheme`` (one of :data:`wsl_jax.zsl.SCHEMES`), ``n_neg``, ``lam`` (attribute
  regression weight), ``rank`` (0: ``p``), ``hidden_dims`` (MLP image map, ``()``: linear),
  ``init_bias``, ``class_vectors``, ``normalize_class_vectors``, and the scheme options
  ``margin`` / ``fallback`` (semi_hard), ``temperature`` (correlated), ``fractions`` (mixture),
  ``warmup_epochs`` / ``anneal_epochs`` (bootstrap: uniform, then annealed to hard).
* ``optimizer``: AdamW ``learning_rate``, ``weight_decay``.
* ``train``: ``epochs``, ``batch_size`` (global, divisible by the device count),
  ``num_devices`` (0: all), ``checkpoint_every`` / ``eval_every`` (epochs), ``keep_checkpoints``,
  ``log_test_curve`` (also log the unseen test accuracy per epoch, for learning curves; never
  used for model selection).
* ``eval.batch_size``; ``data`` and ``features``: see :mod:`wsl_jax.data.zsl_tasks`.

>>> from configs.zsl_base import base_config
>>> c = base_config()
>>> c.zsl.scheme = "semi_hard"  # what a config file changes
>>> c.task, sorted(c)
('zsl', ['data', 'eval', 'optimizer', 'progress_bar', 'protocol', 'seed', 'task', 'train', 'zsl'])
"""

from __future__ import annotations

import ml_collections

__all__ = ["XLSA17_DATASETS", "base_config", "synthetic_config", "xlsa17_config"]

XLSA17_DATASETS = ("APY", "AWA1", "AWA2", "CUB", "SUN")


def base_config() -> ml_collections.ConfigDict:
    """Every field of a ZSL config, with defaults (data fields are set by the config files).

    >>> c = base_config()
    >>> c.task, c.zsl.scheme, c.train.epochs
    ('zsl', 'hard', 30)
    """
    config = ml_collections.ConfigDict()
    config.task = "zsl"
    config.seed = 0
    config.progress_bar = True
    config.protocol = "gbu"  # or "train_only"; see wsl_jax.zsl.protocol

    config.data = ml_collections.ConfigDict()
    config.data.name = ""
    config.data.dir = ""
    config.data.val_fraction = 0.1

    config.zsl = ml_collections.ConfigDict()
    config.zsl.scheme = "hard"
    config.zsl.n_neg = 2
    config.zsl.lam = 0.1
    config.zsl.rank = 0
    config.zsl.hidden_dims = ()
    config.zsl.init_bias = 1.0
    config.zsl.class_vectors = "att"
    config.zsl.normalize_class_vectors = True
    config.zsl.margin = 1.0
    config.zsl.fallback = "hard"
    config.zsl.temperature = 0.1
    config.zsl.fractions = ml_collections.ConfigDict({"hard": 0.5, "uniform": 0.5})
    config.zsl.warmup_epochs = 5
    config.zsl.anneal_epochs = 5

    config.optimizer = ml_collections.ConfigDict()
    config.optimizer.learning_rate = 1e-3
    config.optimizer.weight_decay = 1e-4

    config.train = ml_collections.ConfigDict()
    config.train.epochs = 30
    config.train.batch_size = 256
    config.train.num_devices = 0
    config.train.checkpoint_every = 1
    config.train.eval_every = 1
    config.train.keep_checkpoints = 2
    # Stop when a loss exceeds this factor × max(1, the first step's loss); README "Faults".
    config.train.divergence_factor = 1e3
    config.train.log_test_curve = False

    config.eval = ml_collections.ConfigDict()
    config.eval.batch_size = 2048
    return config


def synthetic_config() -> ml_collections.ConfigDict:
    """A small synthetic task (features linear in random attributes): tests and benchmarks.

    >>> c = synthetic_config()
    >>> c.data.name, c.data.num_classes, c.train.batch_size
    ('synthetic', 12, 32)
    """
    config = base_config()
    config.progress_bar = False
    config.data.name = "synthetic"
    config.data.num_classes = 12
    config.data.num_unseen = 3
    config.data.num_val_classes = 2
    config.data.feature_dim = 16
    config.data.attribute_dim = 8
    config.data.examples_per_class = 40
    config.data.noise = 0.1
    config.data.data_seed = 0
    config.zsl.class_vectors = "random"
    config.zsl.n_neg = 3
    config.optimizer.learning_rate = 1e-2
    config.train.epochs = 3
    config.train.batch_size = 32
    config.eval.batch_size = 64
    return config


def xlsa17_config(dataset: str) -> ml_collections.ConfigDict:
    """Zero-shot ``dataset`` on the xlsa17 (GBU) proposed split, ResNet-101 features, ``att`` vectors.

    Reads ``<data.dir>/<dataset>/{res101.mat,att_splits.mat}`` (the xlsa17 release; not bundled;
    set ``--config.data.dir``). ``dataset`` is one of :data:`XLSA17_DATASETS` or the name of a
    folder of one's own in the same format (any feature dimension; ``features.npy`` +
    ``labels.npy`` may replace ``res101.mat``; see :mod:`wsl_jax.data.xlsa17` and
    :func:`wsl_jax.data.xlsa17.write_xlsa17`). The classes of ``val_loc`` are validation classes
    (held out of training in phase 1 of the GBU protocol: epoch selection and GZSL calibration;
    ``data.val_classes="none"`` turns that off); 10 % of the other trainval images are held out
    as seen-class validation images. Hard mining of 5 negatives, 30 epochs of batch 256.

    >>> c = xlsa17_config("CUB")
    >>> c.data.name, c.data.dataset, c.zsl.scheme, c.protocol
    ('xlsa17', 'CUB', 'hard', 'gbu')
    >>> xlsa17_config("MyBirds").data.dataset  # a folder of one's own
    'MyBirds'
    >>> xlsa17_config("a/b")
    Traceback (most recent call last):
    ...
    ValueError: dataset must be a folder name under config.data.dir (e.g. one of ...), got 'a/b'
    """
    if not dataset or "/" in dataset or "\\" in dataset or dataset in (".", ".."):
        raise ValueError(
            f"dataset must be a folder name under config.data.dir (e.g. one of "
            f"{XLSA17_DATASETS}), got {dataset!r}"
        )
    config = base_config()
    config.data.name = "xlsa17"
    config.data.dir = "/path/to/xlsa17/data"
    config.data.dataset = dataset
    config.data.val_classes = "xlsa17"  # the classes of val_loc, or "none"
    config.data.val_fraction = 0.1
    config.zsl.class_vectors = "att"  # or "original_att", or a (C, p) .npy path
    config.zsl.scheme = "hard"
    config.zsl.n_neg = 5
    config.train.epochs = 30
    config.train.batch_size = 256
    return config
