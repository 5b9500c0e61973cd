"""Building and opening prepared tfds data sets (array_record, no TensorFlow), with clear errors.

Example:
  >>> import tempfile
  >>> data_dir = tempfile.mkdtemp()
  >>> _ = prepare_dataset("cluttered_digits/tiny", data_dir)  # builds once, later calls reuse it
  Downloading and preparing dataset ...
  Dataset cluttered_digits downloaded and prepared to ...
  >>> train = open_source("cluttered_digits/tiny", "train", data_dir, image_size=(32, 32))
  >>> len(train), sorted(train[0])[:3]  # examples are dicts of NumPy arrays (and lists)
  (20, ['boxes', 'fragment_source_index', 'image'])
"""
from __future__ import annotations

import os
from pathlib import Path

import tensorflow_datasets as tfds

from wsl_jax.data import cluttered_digits, cluttered_mnist  # noqa: F401  (registers the builders)


def prepare_dataset(name: str, data_dir: str | os.PathLike, **builder_kwargs) -> tfds.core.DatasetBuilder:
    """Builds ``name`` (``"dataset/config"``) as array_record under ``data_dir`` unless already there.

    ``builder_kwargs`` go to the builder (e.g. ``mnist_dir=...`` for ``cluttered_mnist``).

    ``prepare_dataset("cluttered_digits", data_dir)`` builds the default config (9,000 canvases,
    about 25 s on two CPU cores).

    Example (a second call finds the prepared data and prints nothing):
      >>> import tempfile
      >>> data_dir = tempfile.mkdtemp()
      >>> builder = prepare_dataset("cluttered_digits/tiny", data_dir)
      Downloading and preparing dataset ...
      Dataset cluttered_digits downloaded and prepared to ...
      >>> builder = prepare_dataset("cluttered_digits/tiny", data_dir)
      >>> sorted((split, info.num_examples) for split, info in builder.info.splits.items())
      [('test', 20), ('train', 20), ('validation', 20)]
    """
    os.makedirs(data_dir, exist_ok=True)
    builder = tfds.builder(name, data_dir=os.fspath(data_dir), **builder_kwargs)
    builder.download_and_prepare(file_format="array_record")
    return builder


def open_source(name: str, split: str, data_dir: str | os.PathLike | None,
                image_size: tuple[int, int] | None = None):
    """The random-access ``tfds`` data source of a prepared ``split``, read without TensorFlow.

    Unlike ``tfds.data_source`` this never tries to build: it raises ``FileNotFoundError`` naming the
    path when ``data_dir`` is missing, empty or lacks the prepared data set, ``ValueError`` for an
    unknown split (naming the available ones) or when the stored ``image`` height and width differ
    from ``image_size``. Slicing syntax (``"train[:10]"``) is passed through to tfds.

    On a prepared ``data_dir`` (see :func:`prepare_dataset`), ``open_source("cluttered_digits/tiny",
    "validation", data_dir)[0]`` is a dict of NumPy arrays (``Sequence`` features as lists).

    Example (the errors name what is missing):
      >>> import tempfile
      >>> open_source("cluttered_digits/tiny", "train", tempfile.mkdtemp())
      Traceback (most recent call last):
      ...
      FileNotFoundError: data directory ... is empty; build 'cluttered_digits/tiny' first with ...
    """
    if data_dir is None:
        raise FileNotFoundError(f"no data_dir given for data set {name!r}")
    root = Path(data_dir)
    if not root.is_dir():
        raise FileNotFoundError(f"data directory {root} does not exist (data set {name!r})")
    if not any(root.iterdir()):
        raise FileNotFoundError(f"data directory {root} is empty; build {name!r} first with "
                                f"wsl_jax.data.source.prepare_dataset({name!r}, {str(root)!r})")
    builder = tfds.builder(name, data_dir=os.fspath(root))
    info_file = Path(os.fspath(builder.data_path)) / "dataset_info.json"
    if not info_file.is_file():
        raise FileNotFoundError(f"data set {name!r} is not prepared under {root} (missing {info_file}); "
                                f"build it with wsl_jax.data.source.prepare_dataset({name!r}, {str(root)!r})")
    available = sorted(builder.info.splits.keys())
    base_split = split.split("[", 1)[0]
    if base_split not in available:
        raise ValueError(f"split {split!r} does not exist in {name!r} under {root}; available: {available}")
    if image_size is not None and "image" in builder.info.features:
        stored = tuple(builder.info.features["image"].shape[:2])
        if stored != tuple(image_size):
            raise ValueError(f"field 'image' of {name!r} has size {stored}, config expects {tuple(image_size)}")
    return builder.as_data_source(split=split)
