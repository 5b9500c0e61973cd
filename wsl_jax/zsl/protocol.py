"""The evaluation protocol of a trained ZSL model on a :class:`~wsl_jax.data.zsl_splits.ZslTask`.

``config.protocol`` is ``"gbu"`` (the default) or ``"train_only"``:

* ``"gbu"``, the protocol of Xian et al. (TPAMI 2019, "the Good, the Bad and the Ugly"), in two
  phases. *Phase 1* trains on the training classes (the seen classes minus the validation
  classes) and selects the epoch on validation. *Phase 2* trains a fresh model (same seed,
  same hyper-parameters) on **all** seen images, ``train`` ∪ ``val_seen`` ∪ ``val_unseen``
  (:func:`~wsl_jax.data.zsl_splits.trainval_task`), for the selected number of epochs, in the
  ``retrain/`` subfolder of the workdir (checkpointed and resumable like phase 1; its config is
  :func:`retrain_config`); the test splits are evaluated once, with phase 2's model, the
  validation classes being seen classes that this model has learned.
* ``"train_only"`` (the former behaviour, kept for comparison): the phase-1 model is tested
  directly; the validation classes then count as seen classes at test time although the model
  never learned them, which deflates GZSL ``s`` and ``H``.

Validation (model selection and calibration; never the test splits): per-class mean top-1 of the
``val_unseen`` images among the validation classes when there are at least two of them
(``"val_zsl_acc"``), otherwise of the ``val_seen`` images among the training classes
(``"val_seen_acc"``); ``"none"`` (0.0) for a task without validation images (phase 2, whose
single evaluation at its last epoch then selects that epoch).

Calibration of GZSL (calibrated stacking, Chao et al. 2016): the offset ``γ`` subtracted from the
seen-class scores is the one maximising ``H`` of the **phase-1** model on (``val_seen``,
``val_unseen``) over the training + validation classes: the seen side holds held-out images of
classes the model learned, the unseen side images of classes it never learned, as ``test_seen``
and ``test_unseen`` are for phase 2's model, to which the same ``γ`` is applied (an
approximation: phase 2's model is another model, trained with the same settings on more
classes; no held-out data of unlearned classes is left to calibrate it on). ``γ = 0`` without
validation classes.

Test: ZSL per-class mean top-1 of ``test_unseen`` among the unseen classes; GZSL ``u``, ``s``,
``H`` over all classes (seen + unseen), with the validation ``γ`` and without calibration; and
the AUSUC (area under the seen-unseen accuracy curve over every ``γ``,
:func:`~wsl_jax.zsl.evaluation.ausuc`), which needs no calibration.

>>> import jax.numpy as jnp, numpy as np
>>> from wsl_jax.data.zsl_splits import SPLITS, make_task
>>> from wsl_jax.zsl.protocol import metrics_on_test, score_split, validation_metric
>>> y = {"train": [0, 1], "val_seen": [0, 1], "val_unseen": [2, 3], "test_seen": [0, 1],
...      "test_unseen": [4, 5]}
>>> att = np.eye(6)  # images are their class attributes: a perfect model
>>> task = make_task({s: att[y[s]] for s in SPLITS}, y, att, list("abcdef"),
...                  unseen_classes=[4, 5], val_classes=[2, 3])
>>> params = {"W": jnp.eye(6), "L": jnp.eye(6), "b": jnp.array(1.)}
>>> scores = {s: score_split(params, task.features[s], task.attributes) for s in SPLITS}
>>> validation_metric(task, scores), metrics_on_test(task, scores, calibration=0.0)["gzsl"]
(('val_zsl_acc', 1.0), {'u': 1.0, 's': 1.0, 'H': 1.0})
"""

from __future__ import annotations

import jax
import ml_collections
import numpy as np

from wsl_jax.zsl.evaluation import ausuc, choose_calibration, gzsl_metrics, zsl_accuracy
from wsl_jax.zsl.model import scores

__all__ = [
    "PROTOCOLS",
    "calibrate_on_validation",
    "metrics_on_test",
    "per_class_accuracy",
    "protocol_of",
    "retrain_config",
    "score_split",
    "validation_metric",
]

PROTOCOLS = ("gbu", "train_only")


def protocol_of(config) -> str:
    """``config.protocol``, checked; ``"train_only"`` for configs from before the field existed.

    >>> from configs.zsl_base import synthetic_config
    >>> protocol_of(synthetic_config())
    'gbu'
    """
    protocol = config.get("protocol", "train_only")
    if protocol not in PROTOCOLS:
        raise ValueError(f"config.protocol must be one of {PROTOCOLS}, got {protocol!r}.")
    return protocol


def retrain_config(config, *, epochs: int, features_cache: str = ""):
    """The config of phase 2 of the GBU protocol: ``config`` with ``phase = "retrain"`` (the task
    becomes :func:`~wsl_jax.data.zsl_splits.trainval_task`), ``epochs`` training epochs (the epoch
    selected in phase 1) and a single evaluation, at the last epoch. ``features_cache``, when
    given and ``config.data`` has an empty ``features_cache``, points phase 2 at phase 1's
    cached features (CIFAR-10) so that they are not computed again.

    >>> from configs.zsl_base import synthetic_config
    >>> c = retrain_config(synthetic_config(), epochs=2)
    >>> c.phase, c.train.epochs, c.train.eval_every, synthetic_config().get("phase", "select")
    ('retrain', 2, 2, 'select')
    """
    if epochs < 1:
        raise ValueError(f"`epochs` must be >= 1 (the epoch selected in phase 1), got {epochs}.")
    out = ml_collections.ConfigDict(config.to_dict())
    out.phase = "retrain"
    out.train.epochs = int(epochs)
    out.train.eval_every = int(epochs)
    if features_cache and "features_cache" in out.data and not out.data.features_cache:
        out.data.features_cache = str(features_cache)
    return out


_scores = jax.jit(scores)  # Argument checks at trace time, once per shape.


def score_split(params, features, attributes, *, batch_size: int = 2048) -> np.ndarray:
    """Scores ``f(x, a_c)`` ``(N, C)`` of every example, in chunks of ``batch_size``.

    >>> import jax.numpy as jnp
    >>> params = {"W": jnp.eye(2), "L": jnp.eye(2), "b": jnp.array(1.)}
    >>> score_split(params, np.array([[1., 0.], [0., 1.], [0., 0.]]), np.eye(2), batch_size=2)
    array([[ 1.,  -1.],
           [-1.,  1.],
           [ 0.,  0.]], dtype=float32)
    """
    attributes = np.asarray(attributes, np.float32)
    if len(features) == 0:
        return np.zeros((0, attributes.shape[0]), np.float32)
    chunks = [
        np.asarray(
            _scores(params, np.asarray(features[i : i + batch_size], np.float32), attributes)
        )
        for i in range(0, len(features), batch_size)
    ]
    return np.concatenate(chunks)


def per_class_accuracy(
    scores, labels, *, classes, calibration: float = 0.0, seen_classes=()
) -> dict:
    """Top-1 accuracy of every class present in ``labels``, predictions among ``classes``
    (``calibration`` subtracted from the scores of ``seen_classes`` first): ``{class_id: acc}``.

    >>> per_class_accuracy(np.array([[2., 1.], [2., 1.], [0., 1.]]), np.array([0, 1, 1]),
    ...                    classes=[0, 1])
    {0: 1.0, 1: 0.5}
    """
    scores = np.array(scores, np.float32)
    scores[:, np.asarray(seen_classes, np.int64)] -= calibration
    classes = np.asarray(classes)
    predicted = classes[np.argmax(scores[:, classes], axis=1)]
    labels = np.asarray(labels)
    return {int(c): float(np.mean(predicted[labels == c] == c)) for c in np.unique(labels)}


def validation_metric(task, scores: dict) -> tuple:
    """``(name, value)`` of the model-selection metric (see the module docstring).

    ``scores`` maps split names to :func:`score_split` outputs.

    >>> from wsl_jax.data.zsl_splits import SPLITS, make_task
    >>> y = {"train": [0, 1], "val_seen": [0, 1], "val_unseen": [2, 3], "test_seen": [0],
    ...      "test_unseen": [4]}
    >>> task = make_task({s: np.zeros((len(y[s]), 1)) for s in SPLITS}, y, np.eye(5),
    ...                  list("abcde"), unseen_classes=[4], val_classes=[2, 3])
    >>> validation_metric(task, {"val_unseen": np.array([[0, 0, 1., 0, 0], [0, 0, 1., 0, 0]])})
    ('val_zsl_acc', 0.5)
    """
    if len(task.val_classes) < 2 and not len(task.labels["val_seen"]):
        return "none", 0.0
    if len(task.val_classes) >= 2:
        acc = zsl_accuracy(
            scores["val_unseen"], task.labels["val_unseen"], classes=task.val_classes
        )
        return "val_zsl_acc", float(acc)
    acc = zsl_accuracy(scores["val_seen"], task.labels["val_seen"], classes=task.train_classes)
    return "val_seen_acc", float(acc)


def calibrate_on_validation(task, scores: dict) -> tuple:
    """``(γ, validation GZSL metrics)``; ``(0.0, {})`` without validation classes or images.

    >>> from wsl_jax.data.zsl_splits import SPLITS, make_task
    >>> y = {"train": [0, 1], "val_seen": [0, 1], "val_unseen": [2], "test_seen": [0],
    ...      "test_unseen": [3]}
    >>> task = make_task({s: np.zeros((len(y[s]), 1)) for s in SPLITS}, y, np.eye(4),
    ...                  list("abcd"), unseen_classes=[3], val_classes=[2])
    >>> s = {"val_seen": np.array([[2., 0, 1, 0], [0, 2., 1, 0]]),
    ...      "val_unseen": np.array([[1.2, 0, 1, 0]])}
    >>> gamma, m = calibrate_on_validation(task, s)
    >>> gamma > 0.2, m["H"], m["ausuc"]
    (True, 1.0, 1.0)
    """
    if (
        not len(task.val_classes)
        or not len(task.labels["val_seen"])
        or not len(task.labels["val_unseen"])
    ):
        return 0.0, {}
    args = (scores["val_seen"], task.labels["val_seen"], scores["val_unseen"])
    kw = {"seen_classes": task.train_classes, "unseen_classes": task.val_classes}
    gamma, metrics = choose_calibration(*args, task.labels["val_unseen"], **kw)
    metrics = {k: float(v) for k, v in metrics.items()}
    metrics["ausuc"] = ausuc(*args, task.labels["val_unseen"], **kw)
    return gamma, metrics


def metrics_on_test(task, scores: dict, *, calibration: float) -> dict:
    """ZSL accuracy on ``test_unseen``, GZSL ``u``/``s``/``H`` (calibrated and not), the AUSUC and
    per-class accuracies keyed by class name.

    >>> from wsl_jax.data.zsl_splits import SPLITS, make_task
    >>> y = {"train": [0], "val_seen": [0], "val_unseen": [1], "test_seen": [0, 1],
    ...      "test_unseen": [2, 3]}
    >>> task = make_task({s: np.zeros((len(y[s]), 1)) for s in SPLITS}, y, np.eye(4),
    ...                  list("abcd"), unseen_classes=[2, 3], val_classes=[1])
    >>> s = {"test_seen": np.eye(4)[[0, 1]], "test_unseen": np.eye(4)[[2, 0]]}
    >>> m = metrics_on_test(task, s, calibration=0.0)
    >>> m["zsl_unseen_acc"], m["gzsl"], m["per_class_zsl"]
    (0.5, {'u': 0.5, 's': 1.0, 'H': 0.666...}, {'c': 1.0, 'd': 0.0})
    >>> m["ausuc"]  # class 3's image scores 1 on seen class 0 whatever γ: u ≤ 0.5
    0.5
    """
    x_s, y_s = scores["test_seen"], task.labels["test_seen"]
    x_u, y_u = scores["test_unseen"], task.labels["test_unseen"]
    out = {
        "zsl_unseen_acc": float(zsl_accuracy(x_u, y_u, classes=task.unseen_classes)),
        "calibration": float(calibration),
    }
    kw = {"seen_classes": task.seen_classes, "unseen_classes": task.unseen_classes}
    for key, gamma in (("gzsl", calibration), ("gzsl_uncalibrated", 0.0)):
        out[key] = {
            k: float(v)
            for k, v in gzsl_metrics(x_s, y_s, x_u, y_u, calibration=gamma, **kw).items()
        }
    if len(y_s) and len(y_u):
        out["ausuc"] = ausuc(x_s, y_s, x_u, y_u, **kw)
    names = task.class_names
    out["per_class_zsl"] = {
        names[c]: a for c, a in per_class_accuracy(x_u, y_u, classes=task.unseen_classes).items()
    }
    everything = np.concatenate([task.seen_classes, task.unseen_classes])
    gz = per_class_accuracy(
        np.concatenate([x_s, x_u]),
        np.concatenate([y_s, y_u]),
        classes=everything,
        calibration=calibration,
        seen_classes=task.seen_classes,
    )
    out["per_class_gzsl"] = {names[c]: a for c, a in gz.items()}
    return out
