"""Training the CIFAR-10 zero-shot protocol's feature CNN, and the features it gives.

A :class:`~wsl_jax.models.FeatureCNN` is trained (Adam, softmax cross-entropy, random horizontal
flips) on images of the training classes only; its penultimate layer gives the features of every
image, seen or unseen class (Socher et al. 2013). :func:`cifar10_cnn_features` is what the zero-shot
trainer hands to :func:`wsl_jax.data.zsl_tasks.load_task` to compute a CIFAR-10 task's features.

>>> import jax, numpy as np
>>> from wsl_jax.models import FeatureCNN
>>> m = FeatureCNN(num_classes=8, widths=(4,), feature_dim=5)  # 8 training classes
>>> p = m.init(jax.random.key(0), np.zeros((1, 32, 32, 3), np.float32))["params"]
>>> extract_features(m, p, np.zeros((3, 32, 32, 3), np.uint8)).shape  # images of any class
(3, 5)
"""

from __future__ import annotations

import logging

import jax
import jax.numpy as jnp
import numpy as np
import optax

from wsl_jax.data.cifar10 import load_cifar10
from wsl_jax.data.zsl_splits import holdout_split
from wsl_jax.models.feature_cnn import FeatureCNN

__all__ = ["cifar10_cnn_features", "extract_features", "train_feature_cnn"]

_log = logging.getLogger(__name__)
_MEAN = np.array([0.49, 0.48, 0.45], np.float32)
_STD = np.array([0.25, 0.24, 0.26], np.float32)


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
    """Trains :class:`~wsl_jax.models.FeatureCNN` (Adam, softmax cross-entropy, random horizontal flips).

    Args:
      images: ``(N, 32, 32, 3)`` uint8 training images.
      labels: ``(N,)`` labels in ``[0, num_classes)``.
      num_classes: number of training classes.
      epochs, batch_size, learning_rate, seed: the budget (``batch_size`` is capped at ``N``).
      widths, feature_dim: the network (see :class:`~wsl_jax.models.FeatureCNN`).
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
    >>> from wsl_jax.models import FeatureCNN
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


def cifar10_cnn_features(config, seen, val_classes, log=None) -> dict:
    """Features of the CIFAR-10 task of ``config`` from a CNN trained on its training classes.

    Reads the archive ``config.data.dir``; the CNN (``config.features``) learns the ``seen``
    classes less the ``val_classes`` and the held-out images (``config.data.val_fraction``).
    Returns ``pool_features``/``pool_labels`` (training-set images of the seen classes) and
    ``test_features``/``test_labels``.

    >>> from configs import cifar10_zsl
    >>> config = cifar10_zsl.get_config()
    >>> config.data.dir = "/no/such/cifar10.tar.gz"
    >>> cifar10_cnn_features(config, np.arange(8), np.array([4, 8]))
    Traceback (most recent call last):
    ...
    FileNotFoundError: ...
    """
    data, feat = config.data, config.features
    log = log or _log.info
    images = load_cifar10(
        data.dir,
        max_train_examples=data.max_train_examples,
        max_test_examples=data.max_test_examples,
        train_classes=seen,
        seed=config.seed,
    )
    pool_x, pool_y = images["train"]
    split = holdout_split(
        pool_y, val_classes=val_classes, val_fraction=data.val_fraction, seed=config.seed
    )
    train_y = pool_y[split["train"]]
    classes = np.unique(train_y)
    log(f"features: training the CNN on {len(train_y)} images of {len(classes)} classes")
    model, params = train_feature_cnn(
        pool_x[split["train"]],
        np.searchsorted(classes, train_y),
        num_classes=len(classes),
        epochs=feat.epochs,
        batch_size=feat.batch_size,
        learning_rate=feat.learning_rate,
        seed=config.seed,
        widths=tuple(feat.widths),
        feature_dim=feat.feature_dim,
        progress=lambda e, loss: log(f"features: epoch {e + 1}/{feat.epochs} loss {loss:.4f}"),
    )
    test_x, test_y = images["test"]
    return {
        "pool_features": extract_features(model, params, pool_x),
        "pool_labels": pool_y,
        "test_features": extract_features(model, params, test_x),
        "test_labels": test_y,
    }
