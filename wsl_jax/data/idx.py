"""Reading the IDX files of MNIST (``*-idx3-ubyte[.gz]`` images, ``*-idx1-ubyte[.gz]`` labels).

Format (big-endian): two zero bytes, a type byte (``0x08`` = uint8, ``0x09`` int8, ``0x0B`` int16,
``0x0C`` int32, ``0x0D`` float32, ``0x0E`` float64), the number of dimensions, one uint32 per dimension,
then the data in C order. MNIST's magic numbers are 2049 (labels, 1-d uint8) and 2051 (images, 3-d).

Example (a 2x3 uint8 array written as an IDX file by hand, then read back):
  >>> import os, struct, tempfile
  >>> path = os.path.join(tempfile.mkdtemp(), "x-idx2-ubyte")
  >>> with open(path, "wb") as f:
  ...     _ = f.write(struct.pack(">HBBII", 0, 0x08, 2, 2, 3) + bytes(range(6)))
  >>> read_idx(path)
  array([[0, 1, 2],
         [3, 4, 5]], dtype=uint8)
"""
from __future__ import annotations

import gzip
import os
import struct
from pathlib import Path

import numpy as np

_DTYPES = {0x08: np.dtype(np.uint8), 0x09: np.dtype(np.int8), 0x0B: np.dtype(">i2"),
           0x0C: np.dtype(">i4"), 0x0D: np.dtype(">f4"), 0x0E: np.dtype(">f8")}
MNIST_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Reads one IDX file (gzip-compressed when its name ends in ``.gz``) into a NumPy array.

    Raises ``FileNotFoundError`` naming the path, ``ValueError`` on a bad header or truncated data.

    Example (MNIST: ``read_idx(".../t10k-images-idx3-ubyte.gz")`` is ``(10000, 28, 28)`` uint8):
      >>> import gzip, os, struct, tempfile
      >>> path = os.path.join(tempfile.mkdtemp(), "labels-idx1-ubyte.gz")
      >>> with gzip.open(path, "wb") as f:  # magic 2049: 1-d uint8, here 4 labels
      ...     _ = f.write(struct.pack(">II", 2049, 4) + bytes([7, 2, 1, 0]))
      >>> read_idx(path)
      array([7, 2, 1, 0], dtype=uint8)
      >>> read_idx(path + ".missing")
      Traceback (most recent call last):
      ...
      FileNotFoundError: IDX file not found: ...labels-idx1-ubyte.gz.missing
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"IDX file not found: {path}")
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as f:
        data = f.read()
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] not in _DTYPES:
        raise ValueError(f"{path} is not an IDX file (header bytes {data[:4]!r})")
    dtype, ndim = _DTYPES[data[2]], data[3]
    header = 4 + 4 * ndim
    if len(data) < header:
        raise ValueError(f"{path}: truncated IDX header")
    shape = struct.unpack(f">{ndim}I", data[4:header])
    count = int(np.prod(shape, dtype=np.int64))
    if len(data) - header != count * dtype.itemsize:
        raise ValueError(f"{path}: expected {count * dtype.itemsize} data bytes for shape {shape}, "
                         f"found {len(data) - header}")
    return np.frombuffer(data, dtype=dtype, offset=header).reshape(shape).astype(dtype.newbyteorder("="))


def _find(directory: Path, stem: str) -> Path:
    for name in (stem + ".gz", stem, stem.replace("-idx", ".idx")):
        if (directory / name).is_file():
            return directory / name
    raise FileNotFoundError(f"MNIST file {stem}[.gz] not found in {directory}")


def load_mnist(directory: str | os.PathLike, split: str = "train") -> tuple[np.ndarray, np.ndarray]:
    """MNIST ``split`` ("train" or "test") from ``directory``: images ``(N, 28, 28)`` uint8, labels ``(N,)``.

    File names are MNIST's (``t10k-images-idx3-ubyte.gz`` ...), with or without ``.gz``; on the real
    files ``load_mnist(mnist_dir, "test")`` gives 10,000 digits.

    Example (two blank 28x28 "digits" written in the MNIST layout):
      >>> import os, struct, tempfile
      >>> d = tempfile.mkdtemp()
      >>> with open(os.path.join(d, "t10k-images-idx3-ubyte"), "wb") as f:
      ...     _ = f.write(struct.pack(">IIII", 2051, 2, 28, 28) + bytes(2 * 28 * 28))
      >>> with open(os.path.join(d, "t10k-labels-idx1-ubyte"), "wb") as f:
      ...     _ = f.write(struct.pack(">II", 2049, 2) + bytes([3, 8]))
      >>> images, labels = load_mnist(d, "test")
      >>> images.shape, images.dtype, labels.tolist()
      ((2, 28, 28), dtype('uint8'), [3, 8])
    """
    directory = Path(directory)
    if not directory.is_dir():
        raise FileNotFoundError(f"MNIST directory not found: {directory}")
    if split not in MNIST_FILES:
        raise ValueError(f"unknown MNIST split {split!r}; expected one of {sorted(MNIST_FILES)}")
    image_stem, label_stem = MNIST_FILES[split]
    image_path, label_path = _find(directory, image_stem), _find(directory, label_stem)
    images, labels = read_idx(image_path), read_idx(label_path)
    if images.ndim != 3 or images.dtype != np.uint8:
        raise ValueError(f"{image_path}: expected a 3-d uint8 IDX file (magic 2051), got {images.shape}")
    if labels.ndim != 1 or labels.shape[0] != images.shape[0]:
        raise ValueError(f"{label_path}: expected {images.shape[0]} labels (magic 2049), got {labels.shape}")
    return images, labels.astype(np.int64)
