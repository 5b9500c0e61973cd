"""tfds builder ``cluttered_digits``: cluttered canvases of scikit-learn's handwritten digits.

The 1,797 real 8x8 digits of ``sklearn.datasets.load_digits`` (UCI, bundled with scikit-learn, so
the data set builds offline) are split, stratified by class with a fixed seed (``pool_seed``), into
disjoint source pools: 60 % train, 15 % validation, 25 % test (``pool_fractions``). Each split's
canvases only use digits (labelled ones and clutter) from its own pool. Intensities 0..16 are scaled to
0..255, then each digit is resized bilinearly to ``digit_size`` pixels (2-3.5x for the default).

Features (see ``wsl_jax.data.clutter`` for the conventions):

* ``image``: ``Image((S, S, 1))`` grayscale PNG, ``mask``: ``Image((S, S, 1))`` (0 background,
  class + 1 digit ink, 255 void);
* ``labels``: ``Tensor((10,), uint8)`` multi-hot image-level labels;
* ``boxes``: ``Sequence(BBoxFeature())``, ``label_per_box``: ``Sequence(ClassLabel(10))``,
  ``source_index``: ``Sequence(int64)`` (index of each labelled digit in the source data set),
  ``fragment_source_index``: ``Sequence(int64)`` (sources of the clutter fragments);
* ``index``: the example's position in generation order (``tfds`` shuffles the stored order).

``tfds.data_source`` returns the ``Sequence`` features as Python lists.

Example (build the ``tiny`` config and read it; array_record, no TensorFlow needed):
  >>> import tempfile
  >>> data_dir = tempfile.mkdtemp()
  >>> builder = ClutteredDigits(config="tiny", data_dir=data_dir)
  >>> builder.download_and_prepare(file_format="array_record")
  Downloading and preparing dataset ...
  Dataset cluttered_digits downloaded and prepared to ...
  >>> source = tfds.data_source("cluttered_digits/tiny", split="train", data_dir=data_dir)
  >>> example = source[0]
  >>> len(source), example["image"].shape, example["labels"].shape, len(example["boxes"]) >= 1
  (20, (32, 32, 1), (10,), True)
"""
from __future__ import annotations

import dataclasses
import io
from collections.abc import Iterator

import numpy as np
import tensorflow_datasets as tfds
from PIL import Image

from wsl_jax.data.clutter import (
    NUM_CLASSES,
    CanvasSpec,
    DigitPool,
    compose_canvas,
    example_rng,
    split_pool_indices,
)

SPLITS = ("train", "validation", "test")


@dataclasses.dataclass(eq=False)
class ClutteredConfig(tfds.core.BuilderConfig):
    """Canvas layout and split sizes of a cluttered-digit data set.

    >>> cfg = ClutteredConfig(name="small", canvas_size=32, digit_size=(8, 14), num_train=10)
    >>> cfg.canvas_spec().canvas_size, cfg.num_examples("train")
    (32, 10)
    """

    canvas_size: int = 64
    num_train: int = 6000
    num_validation: int = 1000
    num_test: int = 2000
    min_digits: int = 1
    max_digits: int = 3
    digit_size: tuple[int, int] = (16, 28)
    num_fragments: tuple[int, int] = (2, 6)
    fragment_size: tuple[int, int] = (5, 10)
    gap: int = 1
    seed: int = 0
    pool_seed: int = 0
    pool_fractions: tuple[float, float, float] = (0.6, 0.15, 0.25)
    source_dir: str | None = None

    def canvas_spec(self) -> CanvasSpec:
        """The ``CanvasSpec`` of this config (validates the sizes).

        >>> ClutteredConfig(name="x").canvas_spec().digit_size
        (16, 28)
        """
        return CanvasSpec(canvas_size=self.canvas_size, min_digits=self.min_digits,
                          max_digits=self.max_digits, digit_size=tuple(self.digit_size),
                          num_fragments=tuple(self.num_fragments),
                          fragment_size=tuple(self.fragment_size), gap=self.gap)

    def num_examples(self, split: str) -> int:
        """Number of canvases generated for ``split``.

        >>> ClutteredConfig(name="x").num_examples("validation")
        1000
        """
        if split not in SPLITS:
            raise ValueError(f"unknown split {split!r}; expected one of {SPLITS}")
        return int(getattr(self, f"num_{split}"))


def _png(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array[..., 0]).save(buffer, format="PNG")
    return buffer.getvalue()


def encode_example(example: dict[str, np.ndarray], index: int) -> dict:
    """Converts a ``compose_canvas`` output into the builder's feature dict (images as PNG bytes).

    >>> ex = {"image": np.zeros((8, 8, 1), np.uint8), "mask": np.zeros((8, 8, 1), np.uint8),
    ...       "labels": np.zeros(10, np.uint8), "boxes": np.zeros((0, 4), np.float32),
    ...       "label_per_box": np.zeros(0, np.int64), "source_index": np.zeros(0, np.int64),
    ...       "fragment_source_index": np.zeros(0, np.int64)}
    >>> sorted(encode_example(ex, 3))[:3], encode_example(ex, 3)["index"]
    (['boxes', 'fragment_source_index', 'image'], 3)
    """
    return {
        "image": _png(example["image"]),
        "mask": _png(example["mask"]),
        "labels": example["labels"],
        "boxes": [tfds.features.BBox(*(float(v) for v in box)) for box in example["boxes"]],
        "label_per_box": example["label_per_box"],
        "source_index": example["source_index"],
        "fragment_source_index": example["fragment_source_index"],
        "index": index,
    }


class ClutteredBuilder(tfds.core.GeneratorBasedBuilder, skip_registration=True):
    """Shared builder logic; subclasses provide ``digit_pools()`` (one ``DigitPool`` per split).

    Not registered with tfds itself; see ``ClutteredDigits`` and ``ClutteredMnist``.

    Example (a builder over other sources: bar-shaped "digits", the same pool for every split):
      >>> import tempfile
      >>> class Bars(ClutteredBuilder, skip_registration=True):
      ...     BUILDER_CONFIGS = [ClutteredConfig(name="bars", canvas_size=32, digit_size=(8, 12),
      ...                                        num_train=4, num_validation=2, num_test=2)]
      ...     def digit_pools(self):
      ...         images = np.zeros((20, 8, 8), np.uint8); images[:, 1:7, 3:5] = 255
      ...         return dict.fromkeys(SPLITS, DigitPool(images, np.arange(20) % 10))
      >>> builder = Bars(data_dir=tempfile.mkdtemp())
      >>> builder.download_and_prepare(file_format="array_record")
      Downloading and preparing dataset ...
      Dataset bars downloaded and prepared to ...
      >>> len(builder.as_data_source(split="train")), builder.info.features["image"].shape
      (4, (32, 32, 1))
    """

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": "Initial release."}
    SOURCE_DESCRIPTION = ""

    def digit_pools(self) -> dict[str, DigitPool]:
        """Disjoint source pools keyed by split name."""
        raise NotImplementedError

    def _info(self) -> tfds.core.DatasetInfo:
        s = self.builder_config.canvas_size
        return tfds.core.DatasetInfo(
            builder=self,
            description=(f"{s}x{s} grayscale canvases with {self.builder_config.min_digits}-"
                         f"{self.builder_config.max_digits} digits and clutter. {self.SOURCE_DESCRIPTION}"),
            supervised_keys=("image", "labels"),
            features=tfds.features.FeaturesDict({
                "image": tfds.features.Image(shape=(s, s, 1), encoding_format="png"),
                "mask": tfds.features.Image(shape=(s, s, 1), encoding_format="png"),
                "labels": tfds.features.Tensor(shape=(NUM_CLASSES,), dtype=np.uint8),
                "boxes": tfds.features.Sequence(tfds.features.BBoxFeature()),
                "label_per_box": tfds.features.Sequence(tfds.features.ClassLabel(num_classes=NUM_CLASSES)),
                "source_index": tfds.features.Sequence(np.int64),
                "fragment_source_index": tfds.features.Sequence(np.int64),
                "index": np.int64,
            }),
        )

    def _split_generators(self, dl_manager):
        del dl_manager  # everything is local
        config = self.builder_config
        config.canvas_spec()  # fail early on an impossible layout
        pools = self.digit_pools()
        return {split: self._generate_examples(split=split, pool=pools[split])
                for split in SPLITS if config.num_examples(split) > 0}

    def _generate_examples(self, split: str, pool: DigitPool) -> Iterator[tuple[int, dict]]:
        config = self.builder_config
        spec = config.canvas_spec()
        for i in range(config.num_examples(split)):
            example = compose_canvas(pool, spec, example_rng(config.seed, split, i))
            yield i, encode_example(example, i)


def load_sklearn_digits() -> DigitPool:
    """The 1,797 digits of ``sklearn.datasets.load_digits`` as a ``DigitPool`` (8x8, 0..255).

    >>> pool = load_sklearn_digits()
    >>> len(pool), pool.images.shape[1:], int(pool.images.max())
    (1797, (8, 8), 255)
    """
    from sklearn.datasets import load_digits

    digits = load_digits()
    images = np.round(digits.images * (255.0 / 16.0)).clip(0, 255).astype(np.uint8)
    return DigitPool(images, digits.target.astype(np.int64))


class ClutteredDigits(ClutteredBuilder):
    """Cluttered canvases of scikit-learn's 8x8 digits (configs ``default`` 64x64, ``tiny`` 32x32).

    Build with ``builder.download_and_prepare(file_format="array_record")`` (see the module
    docstring) or :func:`wsl_jax.data.prepare_dataset`.

    Example (the configs, and the disjoint source pools of the sklearn digits):
      >>> [(c.name, c.canvas_size, c.num_train) for c in ClutteredDigits.BUILDER_CONFIGS]
      [('default', 64, 6000), ('tiny', 32, 20)]
      >>> import tempfile
      >>> pools = ClutteredDigits(config="tiny", data_dir=tempfile.mkdtemp()).digit_pools()
      >>> {split: len(pool) for split, pool in pools.items()}  # 60 / 15 / 25 % of 1,797, per class
      {'train': 1074, 'validation': 269, 'test': 454}
    """

    SOURCE_DESCRIPTION = ("Digits from sklearn.datasets.load_digits (UCI optdigits, 8x8), split into "
                          "disjoint stratified source pools (60/15/25 %) for train/validation/test.")
    BUILDER_CONFIGS = [
        ClutteredConfig(name="default", description="64x64 canvases, 6000/1000/2000 examples."),
        ClutteredConfig(name="tiny", description="32x32 canvases, 20 examples per split (tests).",
                        canvas_size=32, num_train=20, num_validation=20, num_test=20,
                        digit_size=(8, 14), num_fragments=(1, 3), fragment_size=(3, 6)),
    ]
    DEFAULT_CONFIG_NAME = "default"

    def digit_pools(self) -> dict[str, DigitPool]:
        """The stratified disjoint pools of the sklearn digits (``pool_fractions``, ``pool_seed``)."""
        pool = load_sklearn_digits()
        config = self.builder_config
        parts = split_pool_indices(pool.labels, dict(zip(SPLITS, config.pool_fractions)), config.pool_seed)
        return {split: pool.subset(parts[split]) for split in SPLITS}
