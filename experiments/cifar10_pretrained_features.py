"""CIFAR-10 features of an ImageNet-pretrained backbone, for the zero-shot study (``zsl_mining``).

:func:`archive_features` computes the features of every image of the CIFAR-10 archive once
(:func:`wsl_jax.models.pretrained_features`, 32×32 images upsampled to
``image_size``) and caches them as ``.npy`` files (archive order) in
``<cache_dir>/<backbone>_<image_size>/``. :func:`task_features` is the ``cnn_features`` hook of
:func:`wsl_jax.data.zsl_tasks.load_task`: it picks, from those fixed features, the images the task
of a config uses (the seen-class training images, the test images; the same subsets as
:func:`wsl_jax.data.cifar10.load_cifar10`), so the seed changes only the held-out split and the
metric model, never the features.

    from functools import partial
    hook = partial(task_features, cache_dir="/tmp/zslm/features", backbone="efficientnet_lite0",
                   image_size=128)
    task = load_task(config, workdir, cnn_features=hook)   # writes config.data.features_cache

The backbone was trained on ImageNet-1k, whose classes include the "unseen" CIFAR-10 classes
(tabby cat, Persian cat, …; trailer truck, fire engine, …): these features are not zero-shot.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from wsl_jax.data.cifar10 import _stratified
from wsl_jax.data.cifar_mosaic import read_cifar_archive
from wsl_jax.models.image_features import pretrained_features

__all__ = ["archive_features", "task_features"]

SPLITS = ("train", "test")


def archive_features(
    cifar_path,
    cache_dir,
    *,
    backbone="efficientnet_lite0",
    image_size=128,
    batch_size=64,
    variables=None,
    log=print,
) -> dict:
    """``{split: (features (N, C) float32, labels (N,) int32)}`` of every image of the archive.

    Computed once per ``(backbone, image_size)`` and cached in
    ``<cache_dir>/<backbone>_<image_size>/{split}_{features,labels}.npy``; later calls only read
    them. ``variables`` (default: the packaged ImageNet weights) go to ``pretrained_features``.
    """
    folder = Path(cache_dir).expanduser() / f"{backbone}_{image_size}"
    out, archive = {}, None
    for split in SPLITS:
        features, labels = folder / f"{split}_features.npy", folder / f"{split}_labels.npy"
        if not features.is_file():
            if archive is None:
                archive = read_cifar_archive(cifar_path)
            images = archive[split]
            log(
                f"features: {backbone} at {image_size}x{image_size} on {len(images)} {split} images"
            )
            pixels = np.stack([images.decode(i) for i in range(len(images))])
            x = pretrained_features(
                pixels,
                backbone=backbone,
                variables=variables,
                image_size=image_size,
                batch_size=batch_size,
            )
            folder.mkdir(parents=True, exist_ok=True)
            np.save(labels, images.labels.astype(np.int32))
            tmp = features.with_name(features.stem + ".tmp.npy")
            np.save(tmp, x)
            tmp.replace(features)  # The features file last: its presence means both are complete.
        out[split] = (np.load(features), np.load(labels))
    return out


def task_features(
    config,
    seen,
    val_classes,
    log=None,
    *,
    cache_dir,
    backbone,
    image_size,
    batch_size=64,
    variables=None,
) -> dict:
    """The ``cnn_features`` hook of ``load_task``: ``pool_features``/``pool_labels`` (training
    images of the ``seen`` classes) and ``test_features``/``test_labels``, picked from
    :func:`archive_features` with ``config.data``'s limits as ``load_cifar10`` picks images
    (``val_classes`` is unused: the features do not depend on the split)."""
    del val_classes
    data = config.data
    arrays = archive_features(
        data.dir,
        cache_dir,
        backbone=backbone,
        image_size=image_size,
        batch_size=batch_size,
        variables=variables,
        log=log or print,
    )
    rng = np.random.default_rng(config.seed)  # As load_cifar10: one generator, train then test.
    out = {}
    for split, limit, name in (
        ("train", data.max_train_examples, "pool"),
        ("test", data.max_test_examples, "test"),
    ):
        features, labels = arrays[split]
        keep = np.arange(len(labels))
        if split == "train":
            keep = keep[np.isin(labels, np.asarray(seen))]
        if limit and limit < len(keep):
            keep = np.sort(_stratified(labels[keep], limit, rng, keep))
        out[f"{name}_features"] = np.asarray(features[keep], np.float32)
        out[f"{name}_labels"] = labels[keep].astype(np.int32)
    return out
