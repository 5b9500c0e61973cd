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

import functools
import logging
from pathlib import Path

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P

from wsl_jax.data.cifar10 import load_cifar10
from wsl_jax.data.pipeline import make_global_batch
from wsl_jax.data.zsl_splits import holdout_split
from wsl_jax.models.feature_cnn import FeatureCNN
from wsl_jax.train.checkpoints import restore_best
from wsl_jax.train.guard import all_finite
from wsl_jax.train.runner import Schedule, TaskRun, run
from wsl_jax.train.state import TrainState, data_mesh

__all__ = [
    "cifar10_cnn_features",
    "extract_features",
    "make_feature_cnn_step",
    "train_feature_cnn",
]

_log = logging.getLogger(__name__)
_MEAN = np.array([0.49, 0.48, 0.45], np.float32)
_STD = np.array([0.25, 0.24, 0.26], np.float32)


def _normalize(images):
    return (jnp.asarray(images, jnp.float32) / 255.0 - _MEAN) / _STD


def _schedule_draws(num_examples: int, *, epochs: int, batch_size: int, seed: int):
    """Per epoch, the example order and each batch's flips, drawn from ``default_rng(seed)`` in
    the order a sequential loop draws them (a permutation, then one flip vector per batch)."""
    rng = np.random.default_rng(seed)
    steps_per_epoch = num_examples // batch_size
    orders, flips = [], []
    for _ in range(epochs):
        orders.append(rng.permutation(num_examples))
        flips.append(rng.random((steps_per_epoch, batch_size)) < 0.5)
    return np.stack(orders), np.stack(flips)


def make_feature_cnn_step(model, tx, mesh):
    """The jitted step ``(state, batch) -> (state, metrics)`` of the features CNN: softmax
    cross-entropy on the ``batch["image"]`` (uint8) mirrored where ``batch["flip"]``; donates the
    state. ``metrics``: ``loss``, ``grad_norm`` and ``finite`` (see :class:`~wsl_jax.train.guard.StepGuard`).

    >>> m, tx, mesh = FeatureCNN(num_classes=2, widths=(4,), feature_dim=3), optax.adam(1e-3), data_mesh(1)
    >>> params = m.init(jax.random.key(0), jnp.zeros((1, 32, 32, 3)))["params"]
    >>> state = TrainState(jnp.int32(0), params, {}, tx.init(params))
    >>> batch = make_global_batch({"image": np.zeros((2, 32, 32, 3), np.uint8),
    ...                            "label": np.array([0, 1]), "flip": np.array([True, False])}, mesh)
    >>> state, metrics = make_feature_cnn_step(m, tx, mesh)(state, batch)
    >>> int(state.step), sorted(metrics), bool(metrics["finite"])
    (1, ['finite', 'grad_norm', 'loss'], True)
    """
    replicated = NamedSharding(mesh, P())

    @functools.partial(jax.jit, donate_argnums=0, out_shardings=(replicated, replicated))
    def step(state, batch):
        x = jnp.where(
            batch["flip"][:, None, None, None], batch["image"][:, :, ::-1], batch["image"]
        )

        def loss_fn(params):
            logits, _ = model.apply({"params": params}, _normalize(x))
            return optax.softmax_cross_entropy_with_integer_labels(logits, batch["label"]).mean()

        loss, grads = jax.value_and_grad(loss_fn)(state.params)
        updates, opt_state = tx.update(grads, state.opt_state, state.params)
        new_state = state.replace(
            step=state.step + 1,
            params=optax.apply_updates(state.params, updates),
            opt_state=opt_state,
        )
        finite = all_finite((loss, new_state))
        return new_state, {"loss": loss, "grad_norm": optax.tree.norm(grads), "finite": finite}

    return step


def train_feature_cnn(
    images,
    labels,
    *,
    workdir,
    num_classes: int,
    epochs: int,
    batch_size: int,
    learning_rate: float,
    seed: int,
    widths=(16, 32, 64),
    feature_dim: int = 128,
    validation=None,
    num_devices: int = 1,
    progress_bar: bool = False,
) -> tuple:
    """Trains :class:`~wsl_jax.models.FeatureCNN` (Adam, softmax cross-entropy, random horizontal
    flips) through the run skeleton (:func:`wsl_jax.train.runner.run`) in ``workdir``: checkpoints,
    the non-finite guard and logs as any run, and an interrupted call resumes.

    Args:
      images: ``(N, 32, 32, 3)`` uint8 training images.
      labels: ``(N,)`` labels in ``[0, num_classes)``.
      workdir: the run's directory (``config.json``, checkpoints, ``metrics.jsonl``, ``summary.json``).
      num_classes: number of training classes.
      epochs, batch_size, learning_rate, seed: the budget (``batch_size`` is capped at ``N``).
      widths, feature_dim: the network (see :class:`~wsl_jax.models.FeatureCNN`).
      validation: optional ``(images, labels)`` of held-out images of the same classes; their top-1
        accuracy is logged once, at the end (the final parameters are kept, as before any selection).
      num_devices: devices of the data-parallel mesh (``0``: all; the batch must divide among them).
      progress_bar: show a progress bar.

    Returns:
      ``(model, params)``.

    >>> import tempfile
    >>> imgs = np.random.default_rng(0).integers(0, 255, (8, 32, 32, 3), dtype=np.uint8)
    >>> model, params = train_feature_cnn(imgs, np.arange(8) % 2, workdir=tempfile.mkdtemp(),
    ...                                   num_classes=2, epochs=1, batch_size=4,
    ...                                   learning_rate=1e-3, seed=0, widths=(4,), feature_dim=8)
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
    batch_size = min(batch_size, len(images))
    config = ml_collections.ConfigDict(
        {
            "task": "features_cnn",
            "seed": seed,
            "progress_bar": progress_bar,
            "model": {
                "num_classes": num_classes,
                "widths": tuple(widths),
                "feature_dim": feature_dim,
            },
            "train": {
                "epochs": epochs,
                "batch_size": batch_size,
                "learning_rate": learning_rate,
                "num_devices": num_devices,
                "keep_checkpoints": 1,
            },
            "data": {"num_examples": len(images)},
        }
    )
    model = FeatureCNN(num_classes=num_classes, widths=tuple(widths), feature_dim=feature_dim)
    workdir = Path(workdir).expanduser()
    kept = {}

    def prepare():
        mesh = data_mesh(num_devices)
        tx = optax.adam(learning_rate)
        params = model.init(jax.random.key(seed), jnp.zeros((1, *images.shape[1:]), jnp.float32))
        state = TrainState(
            jnp.zeros((), jnp.int32), params["params"], {}, tx.init(params["params"])
        )
        orders, flips = _schedule_draws(
            len(images), epochs=epochs, batch_size=batch_size, seed=seed
        )
        steps_per_epoch = orders.shape[1] // batch_size

        def next_batch(step):
            epoch, i = divmod(step, steps_per_epoch)
            idx = orders[epoch, i * batch_size : (i + 1) * batch_size]
            host = {"image": images[idx], "label": labels[idx], "flip": flips[epoch, i]}
            return make_global_batch(host, mesh)

        def validate(state):
            if validation is None:
                return {"val_top1": float("nan")}
            logits = _logits(model, state.params, validation[0])
            return {"val_top1": float(np.mean(logits.argmax(1) == np.asarray(validation[1])))}

        def finish(state, best):
            kept["params"] = restore_best(workdir, best, state.params)
            return {"val_top1": best["value"], "steps": epochs * steps_per_epoch}

        total = epochs * steps_per_epoch
        return TaskRun(
            state=jax.device_put(state, NamedSharding(mesh, P())),
            train_step=make_feature_cnn_step(model, tx, mesh),
            next_batch=next_batch,
            validate=validate,
            selection="val_top1",
            finish=finish,
            schedule=Schedule(total, steps_per_epoch, total, steps_per_epoch, steps_per_epoch),
            selected=lambda state: state.params,
            reduce_loss=lambda losses: float(np.mean(losses)),
            description="features CNN",
        )

    run(config, workdir, prepare)
    return model, kept["params"]


def _logits(model, params, images, *, batch_size: int = 500) -> np.ndarray:
    apply = jax.jit(lambda p, x: model.apply({"params": p}, _normalize(x))[0])
    return np.concatenate(
        [
            np.asarray(apply(params, images[i : i + batch_size]))
            for i in range(0, len(images), batch_size)
        ]
    )


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


def cifar10_cnn_features(config, seen, val_classes, log=None, *, workdir) -> dict:
    """Features of the CIFAR-10 task of ``config`` from a CNN trained on its training classes.

    Reads the archive ``config.data.dir``; the CNN (``config.features``) learns the ``seen``
    classes less the ``val_classes`` and the held-out images (``config.data.val_fraction``), in the
    run ``workdir`` (resumed if interrupted; its held-out images of the training classes give the
    logged ``val_top1``). Returns ``pool_features``/``pool_labels`` (training-set images of the seen
    classes) and ``test_features``/``test_labels``.

    >>> from configs import cifar10_zsl
    >>> config = cifar10_zsl.get_config()
    >>> config.data.dir = "/no/such/cifar10.tar.gz"
    >>> cifar10_cnn_features(config, np.arange(8), np.array([4, 8]), workdir="/tmp/unused")
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
    log(
        f"features: training the CNN on {len(train_y)} images of {len(classes)} classes in {workdir}"
    )
    model, params = train_feature_cnn(
        pool_x[split["train"]],
        np.searchsorted(classes, train_y),
        workdir=workdir,
        num_classes=len(classes),
        epochs=feat.epochs,
        batch_size=feat.batch_size,
        learning_rate=feat.learning_rate,
        seed=config.seed,
        widths=tuple(feat.widths),
        feature_dim=feat.feature_dim,
        validation=(pool_x[split["val_seen"]], np.searchsorted(classes, pool_y[split["val_seen"]])),
        num_devices=config.train.num_devices,
        progress_bar=config.get("progress_bar", True),
    )
    test_x, test_y = images["test"]
    return {
        "pool_features": extract_features(model, params, pool_x),
        "pool_labels": pool_y,
        "test_features": extract_features(model, params, test_x),
        "test_labels": test_y,
    }
