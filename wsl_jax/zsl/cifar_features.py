"""CNN image features for zero-shot CIFAR-10 (Socher et al. 2013 protocol).

A small convolutional classifier is trained on images of the training classes only; its
penultimate layer (after global average pooling and one ReLU dense layer) gives the image features
of every image, seen or unseen class. Unseen-class images are never used for training.

>>> import jax, numpy as np
>>> m = FeatureCNN(num_classes=8, widths=(4,), feature_dim=5)  # 8 training classes
>>> p = m.init(jax.random.key(0), np.zeros((1, 32, 32, 3), np.float32))["params"]
>>> extract_features(m, p, np.zeros((3, 32, 32, 3), np.uint8)).shape  # images of any class
(3, 5)
"""

from __future__ import annotations

from collections.abc import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax

from wsl_jax.data.cifar_mosaic import read_cifar_archive

__all__ = ["FeatureCNN", "extract_features", "load_cifar10", "train_feature_cnn"]

_MEAN = np.array([0.49, 0.48, 0.45], np.float32)
_STD = np.array([0.25, 0.24, 0.26], np.float32)


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


class FeatureCNN(nn.Module):
    """Conv(3×3)–ReLU–max-pool stages, global average pooling, a ReLU dense layer (the features),
    then the class logits. ``__call__`` returns ``(logits, features)``.

    >>> import jax, jax.numpy as jnp
    >>> m = FeatureCNN(num_classes=8, widths=(4, 8), feature_dim=16)
    >>> v = m.init(jax.random.key(0), jnp.zeros((1, 32, 32, 3)))
    >>> [a.shape for a in m.apply(v, jnp.zeros((2, 32, 32, 3)))]
    [(2, 8), (2, 16)]
    """

    num_classes: int
    widths: Sequence[int] = (16, 32, 64)
    feature_dim: int = 128

    @nn.compact
    def __call__(self, x):
        for width in self.widths:
            x = nn.relu(nn.Conv(width, (3, 3))(x))
            x = nn.max_pool(x, (2, 2), strides=(2, 2))
        features = nn.relu(nn.Dense(self.feature_dim)(jnp.mean(x, axis=(1, 2))))
        return nn.Dense(self.num_classes)(features), features


def _normalize(images):
    return (jnp.asarray(images, jnp.float32) / 255.0 - _MEAN) / _STD


def train_feature_cnn(
    images,
    labels,
    *,
    num_classes: int,
    epochs: int,
    batch_size: int,
    learning_rate: float,
    seed: int,
    widths=(16, 32, 64),
    feature_dim: int = 128,
    progress=None,
) -> tuple:
    """Trains :class:`FeatureCNN` (Adam, softmax cross-entropy, random horizontal flips).

    Args:
      images: ``(N, 32, 32, 3)`` uint8 training images.
      labels: ``(N,)`` labels in ``[0, num_classes)``.
      num_classes: number of training classes.
      epochs, batch_size, learning_rate, seed: the budget (``batch_size`` is capped at ``N``).
      widths, feature_dim: the network (see :class:`FeatureCNN`).
      progress: optional callable ``progress(epoch, mean_loss)``.

    Returns:
      ``(model, params)``.

    >>> imgs = np.random.default_rng(0).integers(0, 255, (8, 32, 32, 3), dtype=np.uint8)
    >>> model, params = train_feature_cnn(imgs, np.arange(8) % 2, num_classes=2, epochs=1,
    ...                                   batch_size=4, learning_rate=1e-3, seed=0, widths=(4,),
    ...                                   feature_dim=8)
    >>> extract_features(model, params, imgs).shape
    (8, 8)
    """
    labels = np.asarray(labels, np.int32)
    if len(images) == 0 or labels.shape != (len(images),):
        raise ValueError(
            f"`images` and `labels` must be non-empty and of the same length, got "
            f"{len(images)} and {labels.shape}."
        )
    if labels.min() < 0 or labels.max() >= num_classes:
        raise ValueError(f"`labels` must lie in [0, num_classes={num_classes}).")
    model = FeatureCNN(num_classes=num_classes, widths=tuple(widths), feature_dim=feature_dim)
    key = jax.random.key(seed)
    params = model.init(key, jnp.zeros((1, *images.shape[1:]), jnp.float32))["params"]
    tx = optax.adam(learning_rate)
    opt_state = tx.init(params)
    batch_size = min(batch_size, len(images))

    @jax.jit
    def step(params, opt_state, x, y, flip):
        x = jnp.where(flip[:, None, None, None], x[:, :, ::-1], x)

        def loss_fn(p):
            logits, _ = model.apply({"params": p}, _normalize(x))
            return optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()

        loss, grads = jax.value_and_grad(loss_fn)(params)
        updates, opt_state = tx.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, loss

    rng = np.random.default_rng(seed)
    for epoch in range(epochs):
        order = rng.permutation(len(images))
        losses = []
        for start in range(0, len(order) - batch_size + 1, batch_size):
            idx = order[start : start + batch_size]
            flip = rng.random(batch_size) < 0.5
            params, opt_state, loss = step(params, opt_state, images[idx], labels[idx], flip)
            losses.append(loss)
        if progress is not None:
            progress(epoch, float(np.mean(jax.device_get(losses))))
    return model, params


def extract_features(model, params, images, *, batch_size: int = 500) -> np.ndarray:
    """Penultimate features ``(N, feature_dim)`` float32 of ``images`` (uint8 NHWC).

    >>> import jax
    >>> m = FeatureCNN(num_classes=2, widths=(4,), feature_dim=3)
    >>> p = m.init(jax.random.key(0), np.zeros((1, 32, 32, 3), np.float32))["params"]
    >>> extract_features(m, p, np.zeros((5, 32, 32, 3), np.uint8), batch_size=2).shape
    (5, 3)
    """
    apply = jax.jit(lambda p, x: model.apply({"params": p}, _normalize(x))[1])
    out = [
        np.asarray(apply(params, images[i : i + batch_size]))
        for i in range(0, len(images), batch_size)
    ]
    return np.concatenate(out) if out else np.zeros((0, model.feature_dim), np.float32)
