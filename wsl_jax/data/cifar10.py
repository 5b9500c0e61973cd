"""CIFAR-10 images decoded from the JPEG archive (``<split>/<class>/<file>.jpg``), for the zero-shot
protocol of Socher et al. (2013).

>>> load_cifar10("/no/such/archive.tar.gz")
Traceback (most recent call last):
...
FileNotFoundError: ...
"""

from __future__ import annotations

import numpy as np

from wsl_jax.data.cifar_mosaic import read_cifar_archive

__all__ = ["load_cifar10"]


def load_cifar10(
    path,
    *,
    max_train_examples: int = 0,
    max_test_examples: int = 0,
    train_classes=None,
    seed: int = 0,
) -> dict:
    """Decoded CIFAR-10 images ``{"train": (images, labels), "test": (images, labels)}``.

    Images are ``(N, 32, 32, 3)`` uint8, labels CIFAR class ids. ``train_classes`` keeps only the
    training images of those classes; ``max_*_examples > 0`` keeps a class-stratified random subset
    (``numpy.random.default_rng(seed)``) of at most that many, in archive order.

    Example (a three-image archive in the layout of the real one, ``<split>/<class>/<file>.jpg``):

    >>> import io, os, tarfile, tempfile
    >>> from PIL import Image
    >>> path = os.path.join(tempfile.mkdtemp(), "cifar.tar.gz")
    >>> with tarfile.open(path, "w:gz") as tar:
    ...     for name in ("train/cat/0.jpg", "train/ship/0.jpg", "test/ship/0.jpg"):
    ...         b = io.BytesIO(); Image.new("RGB", (32, 32)).save(b, format="JPEG")
    ...         info = tarfile.TarInfo(name); info.size = b.tell(); _ = b.seek(0)
    ...         tar.addfile(info, b)
    >>> data = load_cifar10(path, train_classes=[3])  # training images of cat (id 3) only
    >>> data["train"][0].shape, data["train"][1].tolist(), data["test"][1].tolist()
    ((1, 32, 32, 3), [3], [8])
    """
    if not path:
        raise ValueError(
            "no CIFAR-10 archive given: set config.data.dir (--config.data.dir=.../cifar10-jpg.tar.gz)"
            " or, for configs/cifar10_zsl.py, the environment variable WSL_JAX_CIFAR10."
        )
    archive = read_cifar_archive(path)
    rng = np.random.default_rng(seed)
    out = {}
    for split, limit in (("train", max_train_examples), ("test", max_test_examples)):
        images = archive[split]
        keep = np.arange(len(images))
        if split == "train" and train_classes is not None:
            keep = keep[np.isin(images.labels, np.asarray(train_classes))]
        if limit and limit < len(keep):
            keep = np.sort(_stratified(images.labels[keep], limit, rng, keep))
        pixels = (
            np.stack([images.decode(int(i)) for i in keep])
            if len(keep)
            else np.zeros((0, 32, 32, 3), np.uint8)
        )
        out[split] = (pixels, images.labels[keep].astype(np.int32))
    return out


def _stratified(labels, limit, rng, ids):
    classes = np.unique(labels)
    per_class = max(1, limit // len(classes))
    picked = [rng.permutation(ids[labels == c])[:per_class] for c in classes]
    return np.concatenate(picked)[:limit]
