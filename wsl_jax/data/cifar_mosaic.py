"""tfds builder ``cifar_mosaic``: canvases tiled with real CIFAR-10 images, with boxes.

Each canvas (default 128x128 RGB) holds ``min_objects..max_objects`` CIFAR-10 images, each resized
(bilinear) to a random square side in ``object_size`` and placed at a random offset inside its own cell
of a regular grid (``canvas_size // object_size[1]`` cells per side), so objects never overlap. The
background is a random gray level per canvas plus Gaussian noise (``background_noise``). A box is the
whole pasted square (CIFAR objects fill most of their 32x32 frame), and the segmentation mask labels
each pasted square with its class (a *tile* mask: the CIFAR image's own background counts as object).

Sources are read directly (``tarfile``) from the JPEG archive ``cifar10-jpg.tar.gz`` with members
``train/<class>/NNNN.jpg`` and ``test/<class>/NNNN.jpg``. Its path is resolved in this order: the
``cifar_path`` builder argument, the config's ``cifar_path``, then ``$WSL_JAX_CIFAR10``; with none of
them set, building raises an error that names them. Source pools are
disjoint: CIFAR train is split, stratified by class (``pool_seed``), into the train pool and the
validation pool (``validation_fraction``); the test canvases use CIFAR test. Canvases are
deterministic functions of ``(seed, split, index)``.

Features (conventions of ``wsl_jax.data.clutter``):

* ``image``: ``Image((S, S, 3))`` PNG, ``mask``: ``Image((S, S, 1))`` PNG (0 background, class + 1
  over each pasted image);
* ``labels``: ``Tensor((10,), uint8)`` multi-hot (CIFAR-10 class order, ``CIFAR10_CLASSES``);
* ``boxes``: ``Sequence(BBoxFeature())`` ``[ymin, xmin, ymax, xmax]`` normalised, max edges exclusive;
* ``label_per_box``: ``Sequence(ClassLabel(names=CIFAR10_CLASSES))``;
* ``source_index``: ``Sequence(int64)``, the position of each object's image in its CIFAR split
  ordered by (class, file name) (see ``read_cifar_archive``);
* ``index``: the example's position in generation order.

Example (the configs; building reads the CIFAR-10 archive, see :class:`CifarMosaic`):
  >>> [(c.name, c.canvas_size, c.num_examples("train")) for c in CifarMosaic.BUILDER_CONFIGS]
  [('default', 128, 20000), ('small', 128, 2000), ('small64', 64, 5000), ('large224', 224, 2000), ('tiny', 64, 8)]

Building and reading (not run here: it needs the archive)::

    from wsl_jax.data import prepare_dataset, open_source
    prepare_dataset("cifar_mosaic/small", "/tmp/tfds", cifar_path="/data/cifar10-jpg.tar.gz")
    source = open_source("cifar_mosaic/small", "train", "/tmp/tfds", image_size=(128, 128))
"""
from __future__ import annotations

import dataclasses
import io
import os
import tarfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import tensorflow_datasets as tfds
from PIL import Image

from wsl_jax.data.clutter import example_rng, split_pool_indices

CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
CIFAR_ENV = "WSL_JAX_CIFAR10"
SPLITS = ("train", "validation", "test")
_IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")


@dataclasses.dataclass(frozen=True)
class CifarImages:
    """Encoded images of one CIFAR split: ``jpegs[i]`` bytes, ``labels[i]`` class, ``names[i]`` member.

    Ordered by (class index, member name).

    >>> imgs = CifarImages([b"a", b"b"], np.array([0, 3]), ["train/airplane/0.jpg", "train/cat/0.jpg"])
    >>> len(imgs), imgs.labels.tolist()
    (2, [0, 3])
    """

    jpegs: list
    labels: np.ndarray
    names: list

    def __len__(self) -> int:
        return len(self.jpegs)

    def decode(self, i: int) -> np.ndarray:
        """Image ``i`` as an ``(h, w, 3)`` uint8 array (``ValueError`` naming the member if corrupt).

        Example (not run)::

            read_cifar_archive(path)["test"].decode(0).shape   # (32, 32, 3)
        """
        try:
            with Image.open(io.BytesIO(self.jpegs[i])) as im:
                return np.asarray(im.convert("RGB"), dtype=np.uint8)
        except Exception as e:  # PIL raises several types for corrupt data
            raise ValueError(f"cannot decode CIFAR image {self.names[i]!r}: {e}") from e


def resolve_cifar_path(cifar_path: str | os.PathLike | None = None, config_path: str | None = None) -> Path:
    """The CIFAR-10 archive: argument, else config, else ``$WSL_JAX_CIFAR10``; ``ValueError`` if none.

    >>> str(resolve_cifar_path("/data/cifar10-jpg.tar.gz"))
    '/data/cifar10-jpg.tar.gz'
    """
    for candidate in (cifar_path, config_path, os.environ.get(CIFAR_ENV)):
        if candidate:
            return Path(candidate)
    raise ValueError(
        "no CIFAR-10 archive given: pass cifar_path=... (cifar10-jpg.tar.gz), set the builder "
        f"config's cifar_path, or set ${CIFAR_ENV}"
    )


def read_cifar_archive(path: str | os.PathLike, splits=("train", "test")) -> dict[str, CifarImages]:
    """Reads the encoded images of ``splits`` from a tar(.gz) laid out as ``<split>/<class>/<file>.jpg``.

    Members may sit under one leading folder (``cifar10/train/...``). Raises ``FileNotFoundError`` for
    a missing archive and ``ValueError`` for an unknown class folder or a split without images.

    On the real archive ``len(archive["train"]), len(archive["test"])`` is ``(50000, 10000)``.

    Example (a two-image archive in the same layout):
      >>> import os, tarfile, tempfile
      >>> path = os.path.join(tempfile.mkdtemp(), "cifar.tar.gz")
      >>> with tarfile.open(path, "w:gz") as tar:
      ...     for name in ("cifar10/train/cat/0001.jpg", "cifar10/test/ship/0001.jpg"):
      ...         buffer = io.BytesIO(); Image.new("RGB", (32, 32)).save(buffer, format="JPEG")
      ...         info = tarfile.TarInfo(name); info.size = buffer.tell(); _ = buffer.seek(0)
      ...         tar.addfile(info, buffer)
      >>> archive = read_cifar_archive(path)
      >>> [CIFAR10_CLASSES[c] for c in archive["train"].labels], archive["test"].names
      (['cat'], ['cifar10/test/ship/0001.jpg'])
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"CIFAR-10 archive {path} not found; pass cifar_path=... or set ${CIFAR_ENV}")
    found: dict[str, list[tuple[int, str, bytes]]] = {s: [] for s in splits}
    with tarfile.open(path, "r:*") as tar:
        for member in tar:
            if not member.isfile() or not member.name.lower().endswith(_IMAGE_SUFFIXES):
                continue
            parts = member.name.strip("/").split("/")
            if len(parts) == 4 and parts[0] not in found:
                parts = parts[-3:]  # tolerate one leading folder
            if len(parts) != 3 or parts[0] not in found:
                continue
            split, cls, _ = parts
            if cls not in CIFAR10_CLASSES:
                raise ValueError(f"{path}: member {member.name!r} has unknown class folder {cls!r}; "
                                 f"expected one of {CIFAR10_CLASSES}")
            data = tar.extractfile(member).read()
            found[split].append((CIFAR10_CLASSES.index(cls), member.name, data))
    out = {}
    for split, items in found.items():
        if not items:
            raise ValueError(f"{path}: no images under {split}/<class>/ in the archive")
        items.sort(key=lambda t: (t[0], t[1]))
        out[split] = CifarImages([t[2] for t in items], np.array([t[0] for t in items], np.int64),
                                 [t[1] for t in items])
    return out


@dataclasses.dataclass(eq=False)
class MosaicConfig(tfds.core.BuilderConfig):
    """Canvas layout, split sizes and sources of a CIFAR mosaic data set.

    >>> cfg = MosaicConfig(name="x", canvas_size=64, object_size=(16, 32))
    >>> cfg.grid_size(), cfg.num_examples("validation")
    (2, 2000)
    """

    canvas_size: int = 128
    object_size: tuple[int, int] = (32, 64)
    min_objects: int = 1
    max_objects: int = 4
    num_train: int = 20000
    num_validation: int = 2000
    num_test: int = 4000
    validation_fraction: float = 0.1
    background_noise: float = 10.0
    seed: int = 0
    pool_seed: int = 0
    cifar_path: str | None = None

    def grid_size(self) -> int:
        """Cells per side of the placement grid (validates the layout).

        >>> MosaicConfig(name="x").grid_size()
        2
        """
        s, (lo, hi) = self.canvas_size, self.object_size
        if not 1 <= lo <= hi <= s:
            raise ValueError(f"object_size {self.object_size} must satisfy 1 <= lo <= hi <= canvas_size={s}")
        if not 1 <= self.min_objects <= self.max_objects:
            raise ValueError(f"need 1 <= min_objects <= max_objects, got {self.min_objects}, {self.max_objects}")
        grid = s // hi
        if grid * grid < self.max_objects:
            raise ValueError(f"max_objects={self.max_objects} objects of up to {hi} px do not fit in "
                             f"distinct cells of a {s}x{s} canvas ({grid}x{grid} grid)")
        if not 0.0 < self.validation_fraction < 1.0:
            raise ValueError(f"validation_fraction must lie in (0, 1), got {self.validation_fraction}")
        return grid

    def num_examples(self, split: str) -> int:
        """Number of canvases generated for ``split``.

        >>> MosaicConfig(name="x").num_examples("test")
        4000
        """
        if split not in SPLITS:
            raise ValueError(f"unknown split {split!r}; expected one of {SPLITS}")
        return int(getattr(self, f"num_{split}"))


def compose_mosaic(images: CifarImages, pool: np.ndarray, config: MosaicConfig,
                   rng: np.random.Generator) -> dict[str, np.ndarray]:
    """One canvas drawn from the positions ``pool`` of ``images``; NumPy arrays (see module docstring).

    >>> rng = np.random.default_rng(0)
    >>> tiles = [np.full((8, 8, 3), 40 * c, np.uint8) for c in range(5)]
    >>> def png(a):
    ...     b = io.BytesIO(); Image.fromarray(a).save(b, format="PNG"); return b.getvalue()
    >>> imgs = CifarImages([png(t) for t in tiles], np.arange(5), [str(c) for c in range(5)])
    >>> ex = compose_mosaic(imgs, np.arange(5), MosaicConfig(name="x", canvas_size=32, object_size=(8, 16)), rng)
    >>> ex["image"].shape, len(ex["boxes"]) == len(ex["label_per_box"]) == int(ex["labels"].sum())
    ((32, 32, 3), True)
    >>> sorted(set(np.unique(ex["mask"])) - {0}) == sorted(int(c) + 1 for c in ex["label_per_box"])
    True
    """
    s, (lo, hi) = config.canvas_size, config.object_size
    grid = config.grid_size()
    cell = s // grid
    k = int(rng.integers(config.min_objects, config.max_objects + 1))
    if len(pool) < k:
        raise ValueError(f"source pool of {len(pool)} images is too small for {k} objects")
    chosen = np.asarray(pool)[rng.choice(len(pool), size=k, replace=False)]
    cells = rng.choice(grid * grid, size=k, replace=False)
    gray = rng.uniform(0, 255)
    canvas = gray + config.background_noise * rng.standard_normal((s, s, 3))
    canvas = np.clip(np.round(canvas), 0, 255).astype(np.uint8)
    mask = np.zeros((s, s, 1), np.uint8)
    boxes = []
    for source, c in zip(chosen, cells):
        size = int(rng.integers(lo, min(hi, cell) + 1))
        y = int(c // grid) * cell + int(rng.integers(0, cell - size + 1))
        x = int(c % grid) * cell + int(rng.integers(0, cell - size + 1))
        tile = Image.fromarray(images.decode(int(source))).resize((size, size), Image.BILINEAR)
        canvas[y:y + size, x:x + size] = np.asarray(tile, np.uint8)
        mask[y:y + size, x:x + size] = images.labels[source] + 1
        boxes.append([y, x, y + size, x + size])
    labels = np.zeros(len(CIFAR10_CLASSES), np.uint8)
    labels[images.labels[chosen]] = 1
    return {
        "image": canvas,
        "mask": mask,
        "labels": labels,
        "boxes": np.asarray(boxes, np.float32).reshape(-1, 4) / np.float32(s),
        "label_per_box": images.labels[chosen].astype(np.int64),
        "source_index": chosen.astype(np.int64),
    }


def _png(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG")
    return buffer.getvalue()


class CifarMosaic(tfds.core.GeneratorBasedBuilder):
    """Mosaics of CIFAR-10 images with boxes (configs ``default`` 128 px 20k/2k/4k, ``small``, ``tiny``).

    Extra keyword argument ``cifar_path``: the ``cifar10-jpg.tar.gz`` archive (see ``resolve_cifar_path``).

    Example (the features are known before building; the archive is only read to build):
      >>> import tempfile
      >>> builder = CifarMosaic(config="tiny", data_dir=tempfile.mkdtemp(), cifar_path="c.tar.gz")
      >>> builder.info.features["image"].shape, builder.builder_config.grid_size()
      ((64, 64, 3), 2)

    Building (not run here: it needs the archive)::

        builder = CifarMosaic(config="tiny", data_dir=d, cifar_path="/data/cifar10-jpg.tar.gz")
        builder.download_and_prepare(file_format="array_record")
        test = builder.as_data_source(split="test")
    """

    VERSION = tfds.core.Version("1.1.0")
    RELEASE_NOTES = {"1.0.0": "Initial release.", "1.1.0": "Tile segmentation masks (same canvases)."}
    BUILDER_CONFIGS = [
        MosaicConfig(name="default", description="128x128 canvases, 1-4 objects of 32-64 px, 20000/2000/4000."),
        MosaicConfig(name="small", description="128x128 canvases, 1-4 objects of 32-64 px, 2000/500/500.",
                     num_train=2000, num_validation=500, num_test=500),
        MosaicConfig(name="small64", description="64x64 canvases, 1-4 objects of 16-32 px, 5000/1000/1000 "
                     "(study-sized: a CPU trains on it in about a minute).",
                     canvas_size=64, object_size=(16, 32), num_train=5000, num_validation=1000, num_test=1000),
        MosaicConfig(name="large224", description="224x224 canvases, 1-4 objects of 32-96 px, 2000/300/500 "
                     "(sized for ImageNet backbones at their training resolution, e.g. EfficientNet-Lite0).",
                     canvas_size=224, object_size=(32, 96), num_train=2000, num_validation=300, num_test=500),
        MosaicConfig(name="tiny", description="64x64 canvases, 1-4 objects of 16-32 px, 8 per split (tests).",
                     canvas_size=64, object_size=(16, 32), num_train=8, num_validation=8, num_test=8),
    ]
    DEFAULT_CONFIG_NAME = "default"

    def __init__(self, *, cifar_path: str | os.PathLike | None = None, **kwargs):
        super().__init__(**kwargs)
        self._cifar_path = cifar_path

    @property
    def cifar_path(self) -> Path:
        """Where the CIFAR-10 archive is read from (see ``resolve_cifar_path``)."""
        return resolve_cifar_path(self._cifar_path, self.builder_config.cifar_path)

    def _info(self) -> tfds.core.DatasetInfo:
        c = self.builder_config
        s = c.canvas_size
        return tfds.core.DatasetInfo(
            builder=self,
            description=(f"{s}x{s} RGB canvases tiled with {c.min_objects}-{c.max_objects} CIFAR-10 images "
                         f"of {c.object_size[0]}-{c.object_size[1]} px in distinct grid cells. Train and "
                         f"validation from disjoint parts of CIFAR-10 train, test from CIFAR-10 test."),
            supervised_keys=("image", "labels"),
            features=tfds.features.FeaturesDict({
                "image": tfds.features.Image(shape=(s, s, 3), encoding_format="png"),
                "mask": tfds.features.Image(shape=(s, s, 1), encoding_format="png"),
                "labels": tfds.features.Tensor(shape=(len(CIFAR10_CLASSES),), dtype=np.uint8),
                "boxes": tfds.features.Sequence(tfds.features.BBoxFeature()),
                "label_per_box": tfds.features.Sequence(tfds.features.ClassLabel(names=CIFAR10_CLASSES)),
                "source_index": tfds.features.Sequence(np.int64),
                "index": np.int64,
            }),
            homepage="https://www.cs.toronto.edu/~kriz/cifar.html",
        )

    def source_pools(self) -> tuple[dict[str, CifarImages], dict[str, np.ndarray]]:
        """The CIFAR images per split and the disjoint positions each canvas split draws from.

        Example (not run)::

            images, pools = CifarMosaic(config="tiny", cifar_path=p).source_pools()
            images[split_of(pools)] ...   # train/validation index CIFAR train, test CIFAR test
        """
        c = self.builder_config
        archive = read_cifar_archive(self.cifar_path)
        parts = split_pool_indices(archive["train"].labels,
                                   {"train": 1.0 - c.validation_fraction, "validation": c.validation_fraction},
                                   c.pool_seed)
        images = {"train": archive["train"], "validation": archive["train"], "test": archive["test"]}
        pools = {"train": parts["train"], "validation": parts["validation"],
                 "test": np.arange(len(archive["test"]), dtype=np.int64)}
        return images, pools

    def _split_generators(self, dl_manager):
        del dl_manager  # everything is local
        config = self.builder_config
        config.grid_size()  # fail early on an impossible layout
        images, pools = self.source_pools()
        return {split: self._generate_examples(split=split, images=images[split], pool=pools[split])
                for split in SPLITS if config.num_examples(split) > 0}

    def _generate_examples(self, split: str, images: CifarImages, pool: np.ndarray
                           ) -> Iterator[tuple[int, dict]]:
        config = self.builder_config
        for i in range(config.num_examples(split)):
            ex = compose_mosaic(images, pool, config, example_rng(config.seed, split, i))
            yield i, {
                "image": _png(ex["image"]),
                "mask": _png(ex["mask"][..., 0]),
                "labels": ex["labels"],
                "boxes": [tfds.features.BBox(*(float(v) for v in box)) for box in ex["boxes"]],
                "label_per_box": ex["label_per_box"],
                "source_index": ex["source_index"],
                "index": i,
            }
