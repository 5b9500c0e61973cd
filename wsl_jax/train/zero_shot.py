"""``train_and_evaluate_zsl(config, workdir)``: the sharded, checkpointed zero-shot training loop.

The conventions of :mod:`wsl_jax.train.loop`: a mesh over the devices (one ``"data"`` axis), a
replicated :class:`~wsl_jax.train.state.TrainState`, global batches sharded on ``"data"``
(:func:`wsl_jax.data.make_global_batch`), a jitted step that donates the state, orbax checkpoints
of the state (``--workdir`` of an interrupted run resumes it, bitwise), ``config.json`` guarding
the workdir against another config, ``metrics.jsonl`` and TensorBoard scalars
(:class:`~wsl_jax.train.metric_writers.MetricWriter`), ``summary.json`` and a progress bar.

Training is epoch-based over the (small) feature arrays of the training split: epoch ``e`` visits
the examples in the order ``numpy.random.default_rng([seed, e]).permutation`` (dropping the
remainder), so a resumed run sees the same batches. Negatives are mined inside the step, per
example (hence per device), from the ``B × C_train`` distances of the current model, with the key
``fold_in(key(seed), step)``. Model selection and the calibration of GZSL use the validation
splits only (see :mod:`wsl_jax.zsl.protocol`); the test splits are evaluated once at the end with
the selected parameters (and, with ``config.train.log_test_curve``, logged per epoch for learning
curves, never used for selection).

An interrupted run (rerunning it in the same workdir resumes it):

>>> import os, tempfile
>>> from configs.zsl_base import synthetic_config
>>> from wsl_jax.train.zero_shot import train_and_evaluate_zsl
>>> c, w = synthetic_config(), tempfile.mkdtemp()
>>> c.train.epochs = c.train.eval_every = 2
>>> c.train.num_devices = 1
>>> train_and_evaluate_zsl(c, w, stop_after_steps=7), sorted(os.listdir(w))
({'stopped_at': 7, 'steps': 14}, ['checkpoints', 'config.json', 'metrics.jsonl', 'tensorboard'])
"""

from __future__ import annotations

import functools
import json
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P

from wsl_jax.data import make_global_batch
from wsl_jax.data.zsl_splits import trainval_task
from wsl_jax.data.zsl_tasks import load_task
from wsl_jax.train.checkpoints import restore_best
from wsl_jax.train.feature_cnn import cifar10_cnn_features
from wsl_jax.train.guard import all_finite
from wsl_jax.train.runner import Schedule, TaskRun, run
from wsl_jax.train.state import TrainState
from wsl_jax.train.state import data_mesh as make_mesh
from wsl_jax.train.workdir import read_run_config
from wsl_jax.zsl.mining import make_miner, make_pairs, mining_options
from wsl_jax.zsl.model import distances, init_metric_params, pair_loss
from wsl_jax.zsl.protocol import (
    calibrate_on_validation,
    metrics_on_test,
    protocol_of,
    retrain_config,
    score_split,
    validation_metric,
)

__all__ = [
    "evaluate_zsl_workdir",
    "make_mesh",
    "make_zsl_train_step",
    "train_and_evaluate_zsl",
]


def make_zsl_train_step(
    tx, mesh, *, scheme: str, n_neg: int, lam: float, options: dict, seed: int, hard_fraction=None
):
    """The jitted step ``(state, x, y, attributes) → (state, metrics)``; the state is donated.

    ``x`` ``(B, d)`` and ``y`` ``(B,)`` (rows of ``attributes``, the training classes) are sharded
    on ``"data"``; negatives are mined inside the step with ``fold_in(key(seed), state.step)``.
    ``metrics["finite"]``: the loss and the new state hold no NaN or infinity (a device boolean,
    read by :class:`~wsl_jax.train.guard.StepGuard`).

    >>> import optax
    >>> mesh = make_mesh()
    >>> params = init_metric_params(jax.random.key(0), feature_dim=4, attribute_dim=3)
    >>> tx = optax.adam(1e-2)
    >>> state = TrainState(jnp.zeros((), jnp.int32), params, {}, tx.init(params))
    >>> step = make_zsl_train_step(tx, mesh, scheme="uniform", n_neg=2, lam=0.1, options={},
    ...                            seed=0)
    >>> b = make_global_batch({"x": np.ones((8, 4), np.float32), "y": np.arange(8) % 3}, mesh)
    >>> state, m = step(state, b["x"], b["y"], jnp.eye(3))
    >>> int(state.step), sorted(m), bool(m["finite"])
    (1, ['finite', 'grad_norm', 'loss'], True)
    """
    replicated = NamedSharding(mesh, P())
    key = jax.random.key(seed)

    miner = make_miner(scheme, n_neg=n_neg, options=options, hard_fraction=hard_fraction)

    @functools.partial(jax.jit, donate_argnums=0, out_shardings=(replicated, replicated))
    def step(state, x, y, attributes):
        dist = jax.lax.stop_gradient(distances(state.params, x, attributes))
        negatives = miner(
            dist,
            y,
            key=jax.random.fold_in(key, state.step),
            step=state.step,
            attributes=attributes,
            bias=jax.lax.stop_gradient(state.params["b"]),
        )
        classes, signs = make_pairs(y, negatives)

        def loss_fn(params):
            return pair_loss(params, x, attributes, classes, signs, lam=lam).mean()

        loss, grads = jax.value_and_grad(loss_fn)(state.params)
        updates, opt_state = tx.update(grads, state.opt_state, state.params)
        new_state = state.replace(
            step=state.step + 1,
            opt_state=opt_state,
            params=optax.apply_updates(state.params, updates),
        )
        finite = all_finite((loss, new_state))
        return new_state, {"loss": loss, "grad_norm": optax.tree.norm(grads), "finite": finite}

    return step


def _init_state(config, task, tx, mesh):
    z = config.zsl
    params = init_metric_params(
        jax.random.fold_in(jax.random.key(config.seed), 0),
        feature_dim=task.feature_dim,
        attribute_dim=task.attributes.shape[1],
        rank=z.rank or None,
        hidden_dims=tuple(z.hidden_dims),
        init_bias=z.init_bias,
    )
    state = TrainState(jnp.zeros((), jnp.int32), params, {}, tx.init(params))
    return jax.device_put(state, NamedSharding(mesh, P()))


def _check_config(config, num_devices: int) -> None:
    batch_size = config.train.batch_size
    if batch_size < 1 or batch_size % num_devices:
        raise ValueError(
            f"config.train.batch_size={batch_size} must be a positive multiple of "
            f"the number of devices ({num_devices})."
        )
    if config.train.epochs < 1:
        raise ValueError(f"config.train.epochs must be >= 1, got {config.train.epochs}.")
    mining_options(config.zsl, steps_per_epoch=1)  # Unknown schemes fail before any heavy work.


def _epoch_batches(x, y, *, batch_size: int, seed: int, mesh):
    """``next_batch(step)``: epoch ``e = step // steps_per_epoch`` visits the examples in the order
    ``default_rng([seed, e]).permutation`` (the remainder dropped), so any step's batch is known."""
    steps_per_epoch = len(x) // batch_size
    orders: dict[int, np.ndarray] = {}

    def next_batch(step):
        epoch, i = divmod(step, steps_per_epoch)
        if epoch not in orders:
            orders.clear()
            orders[epoch] = np.random.default_rng([seed, epoch]).permutation(len(x))
        idx = orders[epoch][i * batch_size : (i + 1) * batch_size]
        idx = idx.reshape(jax.process_count(), -1)[jax.process_index()]  # this host's rows
        return make_global_batch({"x": x[idx], "y": y[idx]}, mesh)

    return next_batch


def _prepare(config, workdir: Path) -> TaskRun:
    """The zero-shot task of ``config`` for :func:`~wsl_jax.train.runner.run`: its features (computed
    once into ``workdir``), metric model, mining step, validation metric and final evaluation."""
    mesh = make_mesh(config.train.num_devices)
    _check_config(config, mesh.shape["data"])
    batch_size = config.train.batch_size
    task = load_task(
        config,
        workdir,
        log=None if config.get("progress_bar", True) else (lambda *_: None),  # None: the logger
        cnn_features=cifar10_cnn_features,
    )
    x_train = task.features["train"]
    to_row = np.full(task.num_classes, -1, np.int32)
    to_row[task.train_classes] = np.arange(len(task.train_classes))
    y_train = to_row[task.labels["train"]]
    steps_per_epoch = len(x_train) // batch_size
    if steps_per_epoch < 1:
        raise ValueError(
            f"config.train.batch_size={batch_size} exceeds the {len(x_train)} training examples."
        )
    train_attributes = jax.device_put(task.attributes[task.train_classes], NamedSharding(mesh, P()))
    tx = optax.adamw(config.optimizer.learning_rate, weight_decay=config.optimizer.weight_decay)
    options, schedule = mining_options(config.zsl, steps_per_epoch=steps_per_epoch)
    step_fn = make_zsl_train_step(
        tx,
        mesh,
        scheme=config.zsl.scheme,
        n_neg=config.zsl.n_neg,
        lam=config.zsl.lam,
        options=options,
        seed=config.seed,
        hard_fraction=schedule,
    )

    def validate(state):
        name, value = validation_metric(task, _score(state.params, task, config, _VAL_SPLITS))
        values = {name: value}
        if config.train.get("log_test_curve", False):  # Learning curves only.
            test = _score(state.params, task, config, _TEST_SPLITS)
            values["test_zsl_unseen_acc"] = metrics_on_test(task, test, calibration=0.0)[
                "zsl_unseen_acc"
            ]
        return values

    def finish(state, best):
        retrained = _retrain_on_trainval(config, workdir, best["epoch"])  # GBU phase 2, or None
        summary = _final_evaluation(config, task, workdir, state.params) | (retrained or {})
        return summary | {
            "best_val_metric": best["value"],
            "best_epoch": best["epoch"],
            "epochs": config.train.epochs,
            "steps": config.train.epochs * steps_per_epoch,
            "scheme": config.zsl.scheme,
            "num_devices": mesh.shape["data"],
        }

    t = config.train
    return TaskRun(
        state=_init_state(config, task, tx, mesh),
        train_step=lambda state, batch: step_fn(state, batch["x"], batch["y"], train_attributes),
        next_batch=_epoch_batches(
            x_train, y_train, batch_size=batch_size, seed=config.seed, mesh=mesh
        ),
        validate=validate,
        selection=None,  # The first value: the task's validation metric.
        finish=finish,
        schedule=Schedule(
            total_steps=t.epochs * steps_per_epoch,
            log_every=steps_per_epoch,
            eval_every=t.eval_every * steps_per_epoch,
            checkpoint_every=t.checkpoint_every * steps_per_epoch,
            steps_per_epoch=steps_per_epoch,
        ),
        selected=lambda state: state.params,
        reduce_loss=lambda losses: float(np.mean(losses)),
        description="zsl train",
    )


def train_and_evaluate_zsl(config, workdir, *, stop_after_steps: int | None = None) -> dict:
    """Trains the metric model of ``config`` in ``workdir`` (resuming it), selects it on
    validation and evaluates it on test; returns (and writes) the summary.

    ``stop_after_steps`` ends this call after that many steps, with a checkpoint there; the same
    call again continues. The run itself (checkpoints, guard, logs, selection) is
    :func:`wsl_jax.train.runner.run`; this module supplies the task.

    Example (the synthetic task, 3 epochs on every device)::

        >>> import tempfile
        >>> from configs.zsl_base import synthetic_config
        >>> w = tempfile.mkdtemp()
        >>> s = train_and_evaluate_zsl(synthetic_config(), w)
        >>> s["epochs"], s["val_metric"], 0.0 <= s["zsl_unseen_acc"] <= 1.0
        (3, 'val_zsl_acc', True)
        >>> evaluate_zsl_workdir(w)["zsl_unseen_acc"] == s["zsl_unseen_acc"]
        True
    """
    workdir = Path(workdir).expanduser()
    return run(config, workdir, lambda: _prepare(config, workdir), stop_after=stop_after_steps)


_VAL_SPLITS = ("val_seen", "val_unseen")
_TEST_SPLITS = ("test_seen", "test_unseen")


def _score(params, task, config, splits):
    return {
        s: score_split(params, task.features[s], task.attributes, batch_size=config.eval.batch_size)
        for s in splits
    }


def _retrain_on_trainval(config, workdir, best_epoch) -> dict | None:
    """Phase 2 of the GBU protocol (:mod:`wsl_jax.zsl.protocol`): a fresh model trained on all
    seen images for ``best_epoch`` epochs in ``workdir/retrain`` (resumed when interrupted);
    ``None`` for the ``"train_only"`` protocol and inside phase 2 itself."""
    if protocol_of(config) != "gbu" or config.get("phase", "select") == "retrain":
        return None
    sub = retrain_config(config, epochs=best_epoch, features_cache=str(workdir / "features.npz"))
    phase2 = train_and_evaluate_zsl(sub, workdir / "retrain")
    return {"retrain_epochs": phase2["epochs"], "retrain_steps": phase2["steps"]}


def _best_json(workdir) -> dict:
    """``best.json`` of ``workdir`` (its checksums verify ``best/``), or ``{}``."""
    path = workdir / "best.json"
    return json.loads(path.read_text()) if path.exists() else {}


def _final_evaluation(config, task, workdir, abstract_params) -> dict:
    if config.get("phase", "select") == "retrain":  # Tested by the parent run (phase 1).
        return {
            "phase": "retrain",
            "val_metric": "none",
            "num_examples": {k: len(v) for k, v in task.labels.items()},
        }
    params = restore_best(workdir, _best_json(workdir), abstract_params)
    scores = _score(params, task, config, _VAL_SPLITS)
    name, _ = validation_metric(task, scores)
    gamma, val_gzsl = calibrate_on_validation(task, scores)  # Phase 1's model, held-out data.
    protocol = protocol_of(config)
    test_task = task
    if protocol == "gbu":  # Phase 2's model (its last epoch), all seen classes learned.
        best = _best_json(workdir)
        params = restore_best(workdir / "retrain", _best_json(workdir / "retrain"), abstract_params)
        test_task = trainval_task(task)
    test_scores = _score(params, test_task, config, _TEST_SPLITS)
    out = metrics_on_test(test_task, test_scores, calibration=gamma)
    summary = {"protocol": protocol, "val_metric": name, "val_gzsl": val_gzsl}
    if protocol == "gbu":
        summary["selected_epoch"] = best["epoch"]
    return summary | out | {"num_examples": {k: len(v) for k, v in task.labels.items()}}


def evaluate_zsl_workdir(workdir) -> dict:
    """Re-evaluates the validation-selected parameters of a ZSL workdir; writes
    ``zsl_eval.json`` (ZSL / GZSL metrics and per-class accuracies) and returns it.

    On a trained workdir, see :func:`train_and_evaluate_zsl`; on any other directory:

    >>> import tempfile
    >>> evaluate_zsl_workdir(tempfile.mkdtemp())
    Traceback (most recent call last):
    ...
    FileNotFoundError: .../config.json not found: is ... a training workdir?
    """
    workdir = Path(workdir).expanduser()
    config = read_run_config(workdir)
    task = load_task(config, workdir, log=lambda *_: None)
    tx = optax.adamw(config.optimizer.learning_rate)
    abstract = _init_state(config, task, tx, make_mesh(1)).params
    results = _final_evaluation(config, task, workdir, abstract)
    (workdir / "zsl_eval.json").write_text(json.dumps(results, indent=2))
    return results
