"""tfds builder ``labeled_image_folder``: images in ``<root>/<split>/<class>/*.jpg|png`` (MIT67 layout).

Every sub-folder of ``root`` is a split (``train``, ``test``, ...), every sub-folder of a split a class.
The class list is the sorted union of the class folder names over all splits; ``label`` is the position
in that list. Examples are generated in (class, file name) order.

Images are stored as the original file bytes when the file is an RGB JPEG or PNG, else converted to
RGB and stored as PNG; with ``image_size=(h, w)`` every image is resized (bilinear) to that size and
stored as PNG, so the examples batch directly with ``wsl_jax.data.make_train_dataset``.

Errors name the offending path: a missing ``root`` (``FileNotFoundError``), a root without split
folders, a split folder without class folders, a class folder without images, or an image PIL cannot
decode (``ValueError``, which also says how to skip such images). With ``skip_corrupt=True``
(``config.data.skip_corrupt_images``) an image that cannot be decoded is left out instead, with a
warning naming it; the build then ends by listing every skipped file in one warning and in
``skipped_images.txt`` beside the prepared data.

Features: ``image`` ``Image((h, w, 3))`` (``(None, None, 3)`` without ``image_size``), ``label``
``ClassLabel(names=classes)``, ``labels`` ``Tensor((C,), uint8)`` multi-hot (one-hot here),
``file_name`` ``Text`` (path relative to the split folder), ``index`` ``int64``.

Builder arguments ``root`` and ``image_size`` are only needed to build: reading (``open_source``,
``tfds.data_source``) restores the features, class names included, from the prepared folder. The
prepared data live under ``<data_dir>/labeled_image_folder/default/1.0.0``: use one ``data_dir`` per
image folder (and per ``image_size``).

MIT67: ``prepare_dataset("labeled_image_folder", d, root="/data/MIT67", image_size=(224, 224))``.

Example (a folder of six small PNGs, two classes, two splits):
  >>> import tempfile
  >>> from wsl_jax.data import open_source, prepare_dataset
  >>> root, data_dir = Path(tempfile.mkdtemp()), tempfile.mkdtemp()
  >>> for split, cls, i in [("train", "bar", 0), ("train", "bar", 1), ("train", "cave", 0),
  ...                       ("train", "cave", 1), ("test", "bar", 0), ("test", "cave", 0)]:
  ...     (root / split / cls).mkdir(parents=True, exist_ok=True)
  ...     Image.new("RGB", (12, 10)).save(root / split / cls / f"{i}.png")
  >>> _ = prepare_dataset("labeled_image_folder", data_dir, root=root, image_size=(8, 8))
  Downloading and preparing dataset ...
  Dataset labeled_image_folder downloaded and prepared to ...
  >>> train = open_source("labeled_image_folder", "train", data_dir)  # no root needed to read
  >>> len(train), train[0]["image"].shape, sorted(int(train[i]["label"]) for i in range(len(train)))
  (4, (8, 8, 3), [0, 0, 1, 1])
"""
from __future__ import annotations

import io
import os
import warnings
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import tensorflow_datasets as tfds
from PIL import Image

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")


def _sub_folders(path: Path) -> list[Path]:
    return sorted((p for p in path.iterdir() if p.is_dir() and not p.name.startswith(".")), key=lambda p: p.name)


def scan_image_folder(root: str | os.PathLike) -> tuple[list[str], dict[str, list[tuple[Path, int]]]]:
    """Class names and, per split, the sorted ``(path, label)`` pairs of ``<root>/<split>/<class>/*``.

    >>> import tempfile
    >>> root = Path(tempfile.mkdtemp())
    >>> for split, cls in [("train", "b"), ("train", "a"), ("test", "a")]:
    ...     (root / split / cls).mkdir(parents=True); _ = (root / split / cls / "x.png").write_bytes(b"")
    >>> classes, files = scan_image_folder(root)
    >>> classes, sorted(files), [label for _, label in files["train"]]
    (['a', 'b'], ['test', 'train'], [0, 1])
    >>> import shutil; shutil.rmtree(root)
    """
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"image folder root {root} does not exist")
    splits = _sub_folders(root)
    if not splits:
        raise ValueError(f"image folder root {root} has no split folders (expected <root>/<split>/<class>/)")
    per_split: dict[str, list[tuple[Path, str]]] = {}
    for split_dir in splits:
        class_dirs = _sub_folders(split_dir)
        if not class_dirs:
            raise ValueError(f"split folder {split_dir} has no class folders (expected {split_dir}/<class>/)")
        items = []
        for class_dir in class_dirs:
            files = sorted(p for p in class_dir.iterdir()
                           if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
            if not files:
                raise ValueError(f"class folder {class_dir} has no images ({'/'.join(IMAGE_SUFFIXES)})")
            items.extend((f, class_dir.name) for f in files)
        per_split[split_dir.name] = items
    classes = sorted({cls for items in per_split.values() for _, cls in items})
    index = {c: i for i, c in enumerate(classes)}
    return classes, {s: [(p, index[c]) for p, c in items] for s, items in per_split.items()}


def load_image_file(path: str | os.PathLike, image_size: tuple[int, int] | None = None) -> bytes:
    """Encoded RGB image of ``path`` for ``tfds.features.Image``; ``ValueError`` naming a corrupt file.

    Keeps the original bytes of RGB JPEG/PNG files unless ``image_size`` asks for a resize (then PNG).

    Example:
      >>> import tempfile
      >>> path = Path(tempfile.mkdtemp()) / "gray.png"
      >>> Image.new("L", (6, 4)).save(path)
      >>> data = load_image_file(path, image_size=(2, 3))  # converted to RGB, resized, PNG
      >>> Image.open(io.BytesIO(data)).size, Image.open(io.BytesIO(data)).mode
      ((3, 2), 'RGB')
      >>> _ = path.write_bytes(b"not an image")
      >>> load_image_file(path)
      Traceback (most recent call last):
      ...
      ValueError: cannot decode image file .../gray.png: ...
    """
    path = Path(path)
    data = path.read_bytes()
    try:
        with Image.open(io.BytesIO(data)) as im:
            im.load()
            if image_size is None and im.format in ("JPEG", "PNG") and im.mode == "RGB":
                return data
            rgb = im.convert("RGB")
    except Exception as e:  # PIL raises several exception types on corrupt data
        raise ValueError(f"cannot decode image file {path}: {e}") from e
    if image_size is not None:
        rgb = rgb.resize((int(image_size[1]), int(image_size[0])), Image.BILINEAR)
    buffer = io.BytesIO()
    rgb.save(buffer, format="PNG")
    return buffer.getvalue()


class LabeledImageFolder(tfds.core.GeneratorBasedBuilder):
    """Image classification data set from a ``<root>/<split>/<class>/`` tree (see the module docstring).

    Keyword arguments: ``root`` (needed to build), ``image_size`` (optional ``(h, w)`` resize),
    ``skip_corrupt`` (leave out, and report, images that cannot be decoded; default: refuse them).

    Example (the class list comes from the folders; build with ``download_and_prepare``):
      >>> import tempfile
      >>> root = Path(tempfile.mkdtemp())
      >>> for split, cls in [("train", "kitchen"), ("train", "bar"), ("test", "bar")]:
      ...     (root / split / cls).mkdir(parents=True)
      ...     Image.new("RGB", (4, 4)).save(root / split / cls / "0.png")
      >>> builder = LabeledImageFolder(data_dir=tempfile.mkdtemp(), root=root, image_size=(4, 4))
      >>> builder.info.features["label"].names, builder.info.features["image"].shape
      (['bar', 'kitchen'], (4, 4, 3))
    """

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": "Initial release."}

    def __init__(self, *, root: str | os.PathLike | None = None,
                 image_size: tuple[int, int] | None = None, skip_corrupt: bool = False, **kwargs):
        self._root = None if root is None else Path(root)
        self._skip_corrupt = bool(skip_corrupt)
        self.skipped: list[str] = []  # Files left out by the last build (skip_corrupt=True).
        self._image_size = None if image_size is None else (int(image_size[0]), int(image_size[1]))
        self._scan = None
        super().__init__(**kwargs)

    def scan(self) -> tuple[list[str], dict[str, list[tuple[Path, int]]]]:
        """``scan_image_folder(root)``, cached; ``ValueError`` when no ``root`` was given.

        Example (not run)::

            classes, files = LabeledImageFolder(root="/data/MIT67").scan()
        """
        if self._root is None:
            raise ValueError("LabeledImageFolder needs root=<folder of <split>/<class>/ images> to build")
        if self._scan is None:
            self._scan = scan_image_folder(self._root)
        return self._scan

    def _features(self) -> tfds.features.FeaturesDict:
        if self._root is None:
            stored = Path(os.fspath(self._data_dir)) / "features.json"
            if stored.is_file():  # reading a prepared data set: features (and class names) from disk
                return tfds.features.FeatureConnector.from_config(os.fspath(self._data_dir))
            raise ValueError(f"labeled_image_folder is not prepared under {self._data_dir}; "
                             "build it with root=<folder of <split>/<class>/ images>")
        classes, _ = self.scan()
        h, w = self._image_size if self._image_size is not None else (None, None)
        return tfds.features.FeaturesDict({
            "image": tfds.features.Image(shape=(h, w, 3)),
            "label": tfds.features.ClassLabel(names=classes),
            "labels": tfds.features.Tensor(shape=(len(classes),), dtype=np.uint8),
            "file_name": tfds.features.Text(),
            "index": np.int64,
        })

    def _info(self) -> tfds.core.DatasetInfo:
        return tfds.core.DatasetInfo(
            builder=self,
            description=f"Labelled images read from {self._root} (<split>/<class>/ layout).",
            supervised_keys=("image", "label"),
            features=self._features(),
        )

    def _split_generators(self, dl_manager):
        del dl_manager  # everything is local
        _, files = self.scan()
        self.skipped = []
        return {split: self._generate_examples(items) for split, items in files.items()}

    def _download_and_prepare(self, dl_manager, download_config=None):
        super()._download_and_prepare(dl_manager, download_config=download_config)
        if self.skipped:  # Written into the folder tfds is preparing; it moves with the data.
            Path(os.fspath(self.data_dir), "skipped_images.txt").write_text("\n".join(self.skipped) + "\n")
            warnings.warn(f"labeled_image_folder: {len(self.skipped)} image(s) could not be decoded "
                          f"and were left out: {', '.join(self.skipped[:10])}"
                          f"{' …' if len(self.skipped) > 10 else ''}", stacklevel=2)

    def _generate_examples(self, items: list[tuple[Path, int]]) -> Iterator[tuple[int, dict]]:
        classes, _ = self.scan()
        for i, (path, label) in enumerate(items):
            try:
                image = load_image_file(path, self._image_size)
            except ValueError as error:
                if not self._skip_corrupt:
                    raise ValueError(f"{error} (set config data.skip_corrupt_images=True, builder "
                                     "argument skip_corrupt=True, to leave such images out)") from error
                warnings.warn(f"skipping {error}", stacklevel=2)
                self.skipped.append(str(path))
                continue
            multi_hot = np.zeros(len(classes), np.uint8)
            multi_hot[label] = 1
            yield i, {
                "image": image,
                "label": label,
                "labels": multi_hot,
                "file_name": f"{path.parent.name}/{path.name}",
                "index": i,
            }
