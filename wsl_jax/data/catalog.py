"""The data sets a training config can name, prepared and opened from its ``config.data`` block.

``open_splits(data_config)`` returns the train/validation/test random-access sources that the grain
pipeline reads, preparing the data set first when that can be done here:

* ``cluttered_digits[/config]``, ``cluttered_mnist[/config]``, ``cifar_mosaic[/config]``: this
  package's tfds builders, built once under ``data.dir`` (``data.builder_kwargs`` go to the builder,
  e.g. ``mnist_dir`` or ``cifar_path``);
* ``voc/2007``: tfds's PASCAL VOC 2007, mapped by :func:`wsl_jax.data.voc.voc_source` (multi-hot
  labels with difficult objects counted, a ``difficult`` mask for evaluation, images resized to
  ``data.image_size``). tfds downloads and prepares it on the first run (about 900 MB; preparing
  needs network access), or point ``data.dir`` at a tfds directory that already holds it;
* ``labeled_image_folder``: a ``<data.root>/<split>/<class>/*.jpg`` tree (MIT67, 15-Scene, …) built
  into ``data.dir`` at ``data.image_size``.

Errors name the config field: an unknown ``data.name`` lists the known ones, a missing image folder
names ``data.root``.

Example:
  >>> import ml_collections
  >>> data = ml_collections.ConfigDict({"name": "no_such_set", "dir": "/tmp"})
  >>> open_splits(data)
  Traceback (most recent call last):
  ...
  ValueError: config data.name='no_such_set' is not a known data set; known: cifar_mosaic, cluttered_digits, cluttered_mnist, labeled_image_folder, voc/2007
"""

from __future__ import annotations

import os
from pathlib import Path

import tensorflow_datasets as tfds

from wsl_jax.data import cifar_mosaic  # noqa: F401  (registers the builder)
from wsl_jax.data.image_folder import LabeledImageFolder
from wsl_jax.data.source import open_source, prepare_dataset
from wsl_jax.data.voc import voc_source

__all__ = ["KNOWN_DATASETS", "open_splits", "pipeline_options"]

_OUR_BUILDERS = ("cifar_mosaic", "cluttered_digits", "cluttered_mnist")
KNOWN_DATASETS = (*_OUR_BUILDERS, "labeled_image_folder", "voc/2007")
_SPLITS = ("train", "val", "test")


def _split_names(data_config) -> dict[str, str]:
    return {split: data_config.get(f"{split}_split", split) for split in _SPLITS}


def _open_voc(data_config, data_dir: str) -> dict:
    builder = tfds.builder(data_config.name, data_dir=data_dir)
    try:
        builder.download_and_prepare(file_format="array_record")
    except Exception as error:  # Re-raised with what the user can do.
        raise RuntimeError(
            f"could not prepare {data_config.name!r} under data.dir={data_dir!r} "
            f"({type(error).__name__}: {error}). Preparing it needs network access once; or set "
            "data.dir to a tfds directory that already holds it in array_record format."
        ) from error
    size = tuple(data_config.image_size)
    return {
        split: voc_source(tfds.data_source(data_config.name, split=name, data_dir=data_dir), size)
        for split, name in _split_names(data_config).items()
    }


def _open_image_folder(data_config, data_dir: str) -> dict:
    root = data_config.get("root", None)
    if not root or not Path(root).expanduser().is_dir():
        raise FileNotFoundError(
            f"config data.root={root!r} must be a folder of <split>/<class>/ images "
            "for data.name='labeled_image_folder'"
        )
    size = tuple(data_config.image_size)
    builder = LabeledImageFolder(
        data_dir=data_dir,
        root=Path(root).expanduser(),
        image_size=size,
        skip_corrupt=data_config.get("skip_corrupt_images", False),
    )
    builder.download_and_prepare(file_format="array_record")
    sources = {}
    for split, name in _split_names(data_config).items():
        if name.split("[", 1)[0] not in builder.info.splits:
            raise ValueError(
                f"config data.{split}_split={name!r} is not a sub-folder of data.root={root!r}; "
                f"found: {sorted(builder.info.splits)}"
            )
        sources[split] = builder.as_data_source(split=name)
    return sources


def open_splits(data_config) -> dict:
    """``{"train", "val", "test"}`` → random-access source, preparing the data set if needed.

    ``data_config`` is the ``config.data`` block: ``name``, ``dir``, ``image_size``, the split names
    ``train_split`` / ``val_split`` / ``test_split``, and per data set ``root`` or
    ``builder_kwargs``. See the module docstring.

    Example:
      >>> import tempfile
      >>> import ml_collections
      >>> data = ml_collections.ConfigDict({
      ...     "name": "cluttered_digits/tiny", "dir": tempfile.mkdtemp(), "image_size": (32, 32),
      ...     "train_split": "train", "val_split": "validation", "test_split": "test"})
      >>> sources = open_splits(data)
      Downloading and preparing dataset ...
      Dataset cluttered_digits downloaded and prepared to ...
      >>> {split: len(source) for split, source in sources.items()}
      {'train': 20, 'val': 20, 'test': 20}
    """
    name = data_config.name
    data_dir = os.fspath(Path(data_config.dir).expanduser())
    base = name.split("/", 1)[0]
    if name == "voc/2007":
        return _open_voc(data_config, data_dir)
    if name == "labeled_image_folder":
        return _open_image_folder(data_config, data_dir)
    if base not in _OUR_BUILDERS:
        raise ValueError(
            f"config data.name={name!r} is not a known data set; known: {', '.join(KNOWN_DATASETS)}"
        )
    prepare_dataset(name, data_dir, **dict(data_config.get("builder_kwargs", {})))
    size = tuple(data_config.image_size)
    return {
        split: open_source(name, split_name, data_dir, size)
        for split, split_name in _split_names(data_config).items()
    }


def pipeline_options(data_config) -> dict:
    """Keyword arguments for the input pipelines that ``config.data`` sets: ``mean`` / ``std`` of the
    input normalisation (ImageNet weights) and ``max_boxes``.

    >>> import ml_collections
    >>> pipeline_options(ml_collections.ConfigDict({"name": "voc/2007", "max_boxes": 64,
    ...                                             "mean": [0.485, 0.456, 0.406]}))
    {'mean': (0.485, 0.456, 0.406), 'max_boxes': 64}
    """
    options = {k: tuple(data_config[k]) for k in ("mean", "std") if data_config.get(k) is not None}
    if data_config.get("max_boxes") is not None:
        options["max_boxes"] = int(data_config.max_boxes)
    return options
