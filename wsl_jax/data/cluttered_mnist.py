"""tfds builder ``cluttered_mnist``: the cluttered-canvas generator over the full MNIST (28x28).

The IDX files are read from a local directory, resolved in this order: the ``mnist_dir`` builder
argument, the config's ``source_dir``, then the ``WSL_JAX_MNIST_DIR`` environment variable; with
none of them set, building raises an error that names them. Source pools are disjoint: train uses
the first 5/6 of MNIST-train (images ``0 .. 49,999``), validation the rest (``50,000 .. 59,999``), test the 10,000
MNIST-test (t10k) images. ``source_index`` is the index in the IDX file the digit came from.

Features are those of ``cluttered_digits`` (see ``wsl_jax.data.cluttered_digits``).

Example (the configs; building reads the MNIST files, see :class:`ClutteredMnist`):
  >>> [(c.name, c.canvas_size, c.num_examples("train")) for c in ClutteredMnist.BUILDER_CONFIGS]
  [('default', 64, 50000), ('small', 64, 10000), ('tiny', 32, 20)]
  >>> str(resolve_mnist_dir("/data/mnist"))  # an explicit mnist_dir comes first
  '/data/mnist'

Building from the real files (not run here)::

    builder = ClutteredMnist(config="tiny", data_dir="/tmp/tfds", mnist_dir="/data/mnist")
    builder.download_and_prepare(file_format="array_record")
    source = builder.as_data_source(split="test")
"""
from __future__ import annotations

import os
from pathlib import Path

from wsl_jax.data.clutter import DigitPool
from wsl_jax.data.cluttered_digits import ClutteredBuilder, ClutteredConfig
from wsl_jax.data.idx import load_mnist

MNIST_DIR_ENV = "WSL_JAX_MNIST_DIR"
NUM_MNIST_TRAIN_POOL = 50_000


def resolve_mnist_dir(mnist_dir: str | os.PathLike | None = None, config_dir: str | None = None) -> Path:
    """The MNIST directory: argument, else config, else ``$WSL_JAX_MNIST_DIR``; ``ValueError`` if none.

    >>> str(resolve_mnist_dir("/data/mnist"))
    '/data/mnist'
    """
    for candidate in (mnist_dir, config_dir, os.environ.get(MNIST_DIR_ENV)):
        if candidate:
            return Path(candidate)
    raise ValueError(
        "no MNIST directory given: pass mnist_dir=... (the folder of the four IDX files), set the "
        f"builder config's source_dir, or set ${MNIST_DIR_ENV}"
    )


class ClutteredMnist(ClutteredBuilder):
    """Cluttered canvases of MNIST digits (configs ``default`` 64x64 with 50k/10k/10k, ``tiny`` 32x32).

    Extra keyword argument ``mnist_dir``: the folder of the four MNIST IDX files.

    Example (``tiny`` from MNIST look-alike IDX files: 60 train and 12 test blank digits):
      >>> import os, struct, tempfile
      >>> mnist_dir, data_dir = tempfile.mkdtemp(), tempfile.mkdtemp()
      >>> for prefix, n in (("train", 60), ("t10k", 12)):
      ...     with open(os.path.join(mnist_dir, f"{prefix}-images-idx3-ubyte"), "wb") as f:
      ...         _ = f.write(struct.pack(">IIII", 2051, n, 28, 28) + bytes(n * 28 * 28))
      ...     with open(os.path.join(mnist_dir, f"{prefix}-labels-idx1-ubyte"), "wb") as f:
      ...         _ = f.write(struct.pack(">II", 2049, n) + bytes(i % 10 for i in range(n)))
      >>> builder = ClutteredMnist(config="tiny", data_dir=data_dir, mnist_dir=mnist_dir)
      >>> builder.download_and_prepare(file_format="array_record")
      Downloading and preparing dataset ...
      Dataset cluttered_mnist downloaded and prepared to ...
      >>> len(builder.as_data_source(split="test")), builder.info.features["image"].shape
      (20, (32, 32, 1))
    """

    SOURCE_DESCRIPTION = ("Digits from MNIST (28x28): train pool = MNIST train 0..49999, validation = "
                          "MNIST train 50000..59999, test = MNIST t10k.")
    BUILDER_CONFIGS = [
        ClutteredConfig(name="default", description="64x64 canvases, 50000/10000/10000 examples.",
                        num_train=50_000, num_validation=10_000, num_test=10_000, digit_size=(20, 30),
                        fragment_size=(6, 12)),
        ClutteredConfig(name="small", description="64x64 canvases as in default, 10000/2000/2000 examples "
                        "(study-sized: builds in minutes on a CPU).",
                        num_train=10_000, num_validation=2_000, num_test=2_000, digit_size=(20, 30),
                        fragment_size=(6, 12)),
        ClutteredConfig(name="tiny", description="32x32 canvases, 20 examples per split (tests).",
                        canvas_size=32, num_train=20, num_validation=20, num_test=20,
                        digit_size=(10, 14), num_fragments=(1, 3), fragment_size=(3, 6)),
    ]
    DEFAULT_CONFIG_NAME = "default"

    def __init__(self, *, mnist_dir: str | os.PathLike | None = None, **kwargs):
        super().__init__(**kwargs)
        self._mnist_dir = mnist_dir

    @property
    def mnist_dir(self) -> Path:
        """Where the MNIST IDX files are read from (see ``resolve_mnist_dir``)."""
        return resolve_mnist_dir(self._mnist_dir, self.builder_config.source_dir)

    def digit_pools(self) -> dict[str, DigitPool]:
        """Disjoint MNIST pools: train/validation from MNIST-train, test from t10k."""
        directory = self.mnist_dir
        if not directory.is_dir():
            raise FileNotFoundError(
                f"MNIST directory {directory} not found; pass mnist_dir=..., set config source_dir, "
                f"or set ${MNIST_DIR_ENV}")
        train_images, train_labels = load_mnist(directory, "train")
        test_images, test_labels = load_mnist(directory, "test")
        pool = DigitPool(train_images, train_labels)
        cut = min(NUM_MNIST_TRAIN_POOL, len(pool) * 5 // 6)
        return {
            "train": pool.subset(range(cut)),
            "validation": pool.subset(range(cut, len(pool))),
            "test": DigitPool(test_images, test_labels),
        }
