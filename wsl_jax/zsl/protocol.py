"""The evaluation protocol of a trained ZSL model on a :class:`~wsl_jax.zsl.splits.ZslTask`.

* Validation (model selection and calibration; never the test splits): per-class mean top-1 of
  the ``val_unseen`` images among the validation classes when there are at least two of them
  (``"val_zsl_acc"``), otherwise of the ``val_seen`` images among the training classes
  (``"val_seen_acc"``). The calibrated-stacking offset ``γ`` is the one maximising the GZSL ``H``
  of (``val_seen``, ``val_unseen``) over training + validation classes; 0 without validation
  classes.
* Test: ZSL per-class mean top-1 of ``test_unseen`` among the unseen classes; GZSL ``u``, ``s``,
  ``H`` over all classes (seen + unseen), with the validation ``γ`` and without calibration.

>>> import jax.numpy as jnp, numpy as np
>>> from wsl_jax.zsl.splits import SPLITS, make_task
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
import numpy as np

from wsl_jax.zsl.evaluation import choose_calibration, gzsl_metrics, zsl_accuracy
from wsl_jax.zsl.model import _distances

__all__ = [
    "calibrate_on_validation",
    "metrics_on_test",
    "per_class_accuracy",
    "score_split",
    "validation_metric",
]


@jax.jit
def _scores(params, x, attributes):
    return params["b"] - _distances(params, x, attributes)


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

    >>> from wsl_jax.zsl.splits import SPLITS, make_task
    >>> y = {"train": [0, 1], "val_seen": [0, 1], "val_unseen": [2, 3], "test_seen": [0],
    ...      "test_unseen": [4]}
    >>> task = make_task({s: np.zeros((len(y[s]), 1)) for s in SPLITS}, y, np.eye(5),
    ...                  list("abcde"), unseen_classes=[4], val_classes=[2, 3])
    >>> validation_metric(task, {"val_unseen": np.array([[0, 0, 1., 0, 0], [0, 0, 1., 0, 0]])})
    ('val_zsl_acc', 0.5)
    """
    if len(task.val_classes) >= 2:
        acc = zsl_accuracy(
            scores["val_unseen"], task.labels["val_unseen"], classes=task.val_classes
        )
        return "val_zsl_acc", float(acc)
    acc = zsl_accuracy(scores["val_seen"], task.labels["val_seen"], classes=task.train_classes)
    return "val_seen_acc", float(acc)


def calibrate_on_validation(task, scores: dict) -> tuple:
    """``(γ, validation GZSL metrics)``; ``(0.0, {})`` without validation classes or images.

    >>> from wsl_jax.zsl.splits import SPLITS, make_task
    >>> y = {"train": [0, 1], "val_seen": [0, 1], "val_unseen": [2], "test_seen": [0],
    ...      "test_unseen": [3]}
    >>> task = make_task({s: np.zeros((len(y[s]), 1)) for s in SPLITS}, y, np.eye(4),
    ...                  list("abcd"), unseen_classes=[3], val_classes=[2])
    >>> s = {"val_seen": np.array([[2., 0, 1, 0], [0, 2., 1, 0]]),
    ...      "val_unseen": np.array([[1.2, 0, 1, 0]])}
    >>> gamma, m = calibrate_on_validation(task, s)
    >>> gamma > 0.2, m["H"]
    (True, 1.0)
    """
    if (
        not len(task.val_classes)
        or not len(task.labels["val_seen"])
        or not len(task.labels["val_unseen"])
    ):
        return 0.0, {}
    gamma, metrics = choose_calibration(
        scores["val_seen"],
        task.labels["val_seen"],
        scores["val_unseen"],
        task.labels["val_unseen"],
        seen_classes=task.train_classes,
        unseen_classes=task.val_classes,
    )
    return gamma, {k: float(v) for k, v in metrics.items()}


def metrics_on_test(task, scores: dict, *, calibration: float) -> dict:
    """ZSL accuracy on ``test_unseen``, GZSL ``u``/``s``/``H`` (calibrated and not) and per-class
    accuracies keyed by class name.

    >>> from wsl_jax.zsl.splits import SPLITS, make_task
    >>> y = {"train": [0], "val_seen": [0], "val_unseen": [1], "test_seen": [0, 1],
    ...      "test_unseen": [2, 3]}
    >>> task = make_task({s: np.zeros((len(y[s]), 1)) for s in SPLITS}, y, np.eye(4),
    ...                  list("abcd"), unseen_classes=[2, 3], val_classes=[1])
    >>> s = {"test_seen": np.eye(4)[[0, 1]], "test_unseen": np.eye(4)[[2, 0]]}
    >>> m = metrics_on_test(task, s, calibration=0.0)
    >>> m["zsl_unseen_acc"], m["gzsl"], m["per_class_zsl"]
    (0.5, {'u': 0.5, 's': 1.0, 'H': 0.666...}, {'c': 1.0, 'd': 0.0})
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
