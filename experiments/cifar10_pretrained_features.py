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
``python -m experiments.cifar10_pretrained_features --features-dir DIR`` measures that leak on the
cached features: the share of the CIFAR-10 test images of each unseen class that the network's own
ImageNet classifier (pooled features → ``_fc``, no CIFAR-10 training at all) puts in one of
:data:`IMAGENET_NEIGHBOURS`.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from wsl_jax.data.cifar10 import _stratified
from wsl_jax.data.cifar_mosaic import CIFAR10_CLASSES, read_cifar_archive
from wsl_jax.models.image_features import pretrained_features

__all__ = ["IMAGENET_NEIGHBOURS", "archive_features", "imagenet_leak", "task_features"]

SPLITS = ("train", "test")
#: ImageNet-1k classes (0-based ILSVRC-2012 indices) that are the unseen CIFAR-10 classes or
#: sub-classes of them.
IMAGENET_NEIGHBOURS = {
    "cat": {
        281: "tabby cat",
        282: "tiger cat",
        283: "Persian cat",
        284: "Siamese cat",
        285: "Egyptian cat",
    },
    "truck": {
        555: "fire engine",
        569: "garbage truck",
        675: "moving van",
        717: "pickup truck",
        864: "tow truck",
        867: "trailer truck",
    },
}


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
    workdir=None,
    cache_dir,
    backbone,
    image_size,
    batch_size=64,
    variables=None,
) -> dict:
    """The ``cnn_features`` hook of ``load_task``: ``pool_features``/``pool_labels`` (training
    images of the ``seen`` classes) and ``test_features``/``test_labels``, picked from
    :func:`archive_features` with ``config.data``'s limits as ``load_cifar10`` picks images
    (``val_classes`` and ``workdir`` are unused: the features do not depend on the split, and
    nothing is trained)."""
    del val_classes, workdir
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


def imagenet_leak(features, labels, classifier) -> dict:
    """Per class of :data:`IMAGENET_NEIGHBOURS`: the share of its images (``labels``, CIFAR ids)
    whose ImageNet top-1 class (``features @ kernel + bias`` of the ``_fc`` ``classifier``) is one
    of its neighbours, and the most frequent top-1 classes ``{index: count}``.

    >>> kernel = np.zeros((3, 1000))
    >>> kernel[[0, 1, 2], [281, 555, 0]] = 1     # feature 0 -> tabby cat, 1 -> fire engine
    >>> cats_and_truck = np.array([3, 3, 3, 9])  # CIFAR ids; the third cat goes to class 0
    >>> leak = imagenet_leak(np.eye(3)[[0, 0, 2, 1]], cats_and_truck, {"kernel": kernel, "bias": 0})
    >>> leak["cat"]["share"], leak["truck"]["share"]
    (0.6666666666666666, 1.0)
    """
    top1 = np.argmax(np.asarray(features) @ classifier["kernel"] + classifier["bias"], axis=1)
    out = {}
    for name, neighbours in IMAGENET_NEIGHBOURS.items():
        mine = top1[labels == CIFAR10_CLASSES.index(name)]
        ids, counts = np.unique(mine, return_counts=True)
        order = np.argsort(-counts)[:5]
        out[name] = {
            "images": len(mine),
            "share": float(np.isin(mine, list(neighbours)).mean()),
            "most_frequent": {int(ids[i]): int(counts[i]) for i in order},
        }
    return out


def main(argv=None):
    parser = argparse.ArgumentParser(description="ImageNet leak of the cached CIFAR-10 features")
    parser.add_argument("--features-dir", required=True, help="as zsl_mining's --features-dir")
    parser.add_argument("--cifar-path", default="", help="the archive, if not cached yet")
    parser.add_argument("--image-size", type=int, default=128)
    args = parser.parse_args(argv)
    from wsl_jax.models import pretrained_variables

    features, labels = archive_features(
        args.cifar_path, args.features_dir, image_size=args.image_size
    )["test"]
    fc = pretrained_variables("efficientnet_lite0", include_top=True)["params"]["_fc"]
    leak = imagenet_leak(features, labels, {k: np.asarray(v) for k, v in fc.items()})
    for name, row in leak.items():
        names = IMAGENET_NEIGHBOURS[name]
        frequent = ", ".join(
            f"{i} {names.get(i, '')}".strip() + f" ({n})" for i, n in row["most_frequent"].items()
        )
        print(
            f"{name}: {100 * row['share']:.1f} % of {row['images']} test images have an ImageNet "
            f"top-1 in {sorted(names.values())}; most frequent top-1: {frequent}"
        )
    return leak


if __name__ == "__main__":
    main()
