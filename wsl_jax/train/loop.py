"""``train_and_evaluate(config, workdir)``: the data-parallel training loop behind ``train.py``.

One process's view: a mesh over all devices, a replicated train state created sharded, host batches
turned into global arrays sharded on ``"data"``, a jitted buffer-donating step, orbax checkpoints of
the state and the grain iterator (``--workdir`` of an interrupted run resumes it), model selection on
the validation split only, and the test split evaluated once, with the selected parameters.

Multi-host (``jax.distributed`` initialised first, see ``wsl_jax.train.distributed``): every process
runs this same function. Each reads only its rows of each global batch (the global batches do not
depend on the process count), evaluation gathers the scores of all processes, orbax saves on every
process (the data iterator's state is one file per process), only process 0 writes the metrics,
``config.json``, ``best.json`` and ``summary.json``, and resuming with another process count is
refused.

A run: ``python train.py --config configs/digits_weldon.py --workdir /tmp/wsl_digits`` (see the
README); the functions below are its pieces.

Example (a global batch of 32 on the ``"data"`` mesh: each of the 8 devices holds 4 rows):
  >>> mesh = data_mesh()
  >>> host_batch = {"image": np.zeros((32, 64, 64, 1), np.float32),
  ...               "labels": np.zeros((32, 10), np.float32), "valid": np.ones(32, bool)}
  >>> batch = make_global_batch(host_batch, mesh)
  >>> batch["image"].shape, batch["image"].sharding.shard_shape(batch["image"].shape)
  ((32, 64, 64, 1), (4, 64, 64, 1))
"""

from __future__ import annotations

import functools
from pathlib import Path

import jax
import numpy as np
import optax
from jax.experimental import multihost_utils
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P

from wsl_jax.data import make_eval_dataset, make_global_batch, make_train_dataset
from wsl_jax.data.catalog import open_splits, pipeline_options
from wsl_jax.metrics import classification_metrics
from wsl_jax.models import build_model
from wsl_jax.train.checkpoints import restore_best
from wsl_jax.train.guard import all_finite
from wsl_jax.train.objectives import make_objective
from wsl_jax.train.optim import make_optimizer
from wsl_jax.train.pretrained import load_pretrained_backbone
from wsl_jax.train.runner import Schedule, TaskRun, run
from wsl_jax.train.state import TrainState, create_train_state, data_mesh

_BATCH_FIELDS = ("image", "labels", "valid")


def build_from_config(config):
    """The model and the optimizer described by ``config``.

    Example (the digits recipe, ``configs/digits_weldon.py``; its shapes, without computing):
      >>> import jax.numpy as jnp
      >>> from configs import digits_weldon
      >>> config = digits_weldon.get_config()
      >>> model, tx = build_from_config(config)
      >>> variables = jax.eval_shape(
      ...     lambda key: model.init(key, jnp.zeros((1, 64, 64, 1)), train=False), jax.random.key(0))
      >>> jax.eval_shape(model.apply, variables, jnp.zeros((2, 64, 64, 1))).shape
      (2, 10)
      >>> config.optimizer.name = "rmsprop"
      >>> build_from_config(config)
      Traceback (most recent call last):
      ...
      ValueError: unknown optimizer.name 'rmsprop'; use 'sgd' or 'adam'.
    """
    m = config.model
    model = build_model(
        m.backbone,
        config.data.num_classes,
        num_maps=m.num_maps,
        k_max=m.k_max,
        k_min=m.k_min,
        lam=m.lam,
        convention=m.convention,
        **dict(m.get("backbone_kwargs", {})),
    )
    return model, make_optimizer(config.optimizer, config.train.steps)


def make_train_step(model, tx, objective, mesh):
    """The jitted data-parallel step; the state's buffers are donated.

    ``train_step(state, batch) -> (state, {"loss", "grad_norm", "finite"})``; ``batch`` holds global
    arrays (``image``, ``labels``, ``valid``) sharded on ``"data"``. ``finite`` is a device boolean:
    the loss and the new state hold no NaN or infinity (read by :class:`~wsl_jax.train.guard.StepGuard`
    when metrics are read, so no step waits for the host).

    Example (one step of a tiny model on a zeros batch; zero weights, so the scores are 0 and the
    loss is log 2; :func:`~wsl_jax.train.state.create_train_state` makes a random initial state):
      >>> import jax.numpy as jnp
      >>> from wsl_jax.train.objectives import make_objective
      >>> mesh = data_mesh()
      >>> model, tx = build_model("small_cnn", 10, widths=(8,)), optax.sgd(0.1)
      >>> shapes = jax.eval_shape(
      ...     lambda key: model.init(key, jnp.zeros((1, 16, 16, 1)), train=False), jax.random.key(0))
      >>> v = jax.tree.map(lambda s: jnp.zeros(s.shape, s.dtype), shapes)
      >>> state = TrainState(jnp.zeros((), jnp.int32), v["params"], v["batch_stats"],
      ...                    tx.init(v["params"]))
      >>> batch = make_global_batch({"image": np.zeros((8, 16, 16, 1), np.float32),
      ...                            "labels": np.zeros((8, 10), np.float32),
      ...                            "valid": np.ones(8, bool)}, mesh)
      >>> train_step = make_train_step(model, tx, make_objective("multilabel_soft_margin"), mesh)
      >>> state, step_metrics = train_step(state, batch)
      >>> int(state.step), float(step_metrics["loss"])
      (1, 0.693...)
    """

    # Pinning the outputs to the (replicated) input sharding keeps the step from recompiling.
    replicated = NamedSharding(mesh, P())

    @functools.partial(jax.jit, donate_argnums=0, out_shardings=(replicated, replicated))
    def train_step(state: TrainState, batch):
        def loss_fn(params):
            scores, updates = model.apply(
                {"params": params, "batch_stats": state.batch_stats},
                batch["image"],
                train=True,
                mutable=["batch_stats"],
            )
            return objective(scores, batch["labels"], batch["valid"]), updates

        (loss, updates), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.params)
        deltas, opt_state = tx.update(grads, state.opt_state, state.params)
        new_state = state.replace(
            step=state.step + 1,
            params=optax.apply_updates(state.params, deltas),
            batch_stats=updates.get("batch_stats", state.batch_stats),
            opt_state=opt_state,
        )
        finite = all_finite((loss, new_state))
        return new_state, {"loss": loss, "grad_norm": optax.tree.norm(grads), "finite": finite}

    return train_step


def make_predict(model):
    """The jitted inference function ``predict(params, batch_stats, images) -> scores (B, C)``.

    Example (zero weights stand in for trained ones):
      >>> model = build_model("small_cnn", 10, widths=(8,))
      >>> images = np.zeros((2, 16, 16, 1), np.float32)
      >>> shapes = jax.eval_shape(lambda key: model.init(key, images, train=False), jax.random.key(0))
      >>> variables = jax.tree.map(lambda s: np.zeros(s.shape, s.dtype), shapes)
      >>> predict = make_predict(model)
      >>> predict(variables["params"], variables["batch_stats"], images).shape
      (2, 10)
    """

    @jax.jit
    def predict(params, batch_stats, images):
        return model.apply({"params": params, "batch_stats": batch_stats}, images, train=False)

    return predict


def evaluate_split(predict, params, batch_stats, source, config, mesh) -> dict:
    """Scores every example of ``source`` exactly once; mAP (non-interpolated) and per-class AP.

    On single-label data (one class per example) also ``top1`` and ``mean_class_accuracy``. Reads
    ``config.eval.batch_size`` (global, a multiple of the device count) and ``config.data``.

    Example (10 single-label examples, in two padded batches of 8; zero weights):
      >>> import ml_collections
      >>> config = ml_collections.ConfigDict(
      ...     {"eval": {"batch_size": 8}, "data": {"image_size": (16, 16)}})
      >>> source = [{"image": np.full((16, 16, 1), 25 * i, np.uint8),
      ...            "labels": np.eye(10, dtype=np.float32)[i]} for i in range(10)]
      >>> model = build_model("small_cnn", 10, widths=(8,))
      >>> shapes = jax.eval_shape(
      ...     lambda key: model.init(key, np.zeros((1, 16, 16, 1)), train=False), jax.random.key(0))
      >>> variables = jax.tree.map(lambda s: np.zeros(s.shape, s.dtype), shapes)
      >>> result = evaluate_split(make_predict(model), variables["params"],
      ...                         variables["batch_stats"], source, config, data_mesh())
      >>> sorted(result), result["num_examples"], len(result["AP"])
      (['AP', 'mAP', 'mean_class_accuracy', 'num_examples', 'top1'], 10, 10)
    """
    scores, labels, difficult = [], [], []
    dataset = make_eval_dataset(  # This process's contiguous shard of the examples.
        source,
        batch_size=config.eval.batch_size // jax.process_count(),
        image_size=tuple(config.data.image_size),
        **pipeline_options(config.data),
    )
    for host_batch in dataset:
        fields = (*_BATCH_FIELDS, "difficult") if "difficult" in host_batch else _BATCH_FIELDS
        batch = make_global_batch({k: host_batch[k] for k in fields}, mesh)
        batch["scores"] = predict(params, batch_stats, batch.pop("image"))
        # The rows of every process, on every process (NumPy arrays, in the same order).
        rows = multihost_utils.process_allgather(batch, tiled=True)
        valid = rows["valid"]
        scores.append(rows["scores"][valid])
        labels.append(rows["labels"][valid])
        if "difficult" in rows:
            difficult.append(rows["difficult"][valid])
    scores, labels = np.concatenate(scores), np.concatenate(labels) > 0.5
    # VOC: an (image, class) pair whose objects are all "difficult" is left out of that class's AP.
    where = ~np.concatenate(difficult) if difficult else None
    return {**classification_metrics(scores, labels, where=where), "num_examples": len(scores)}


def _check_config(config, num_devices: int) -> None:
    if config.train.batch_size % num_devices or config.eval.batch_size % num_devices:
        raise ValueError(
            f"train.batch_size={config.train.batch_size} and eval.batch_size={config.eval.batch_size} "
            f"must be divisible by the number of devices ({num_devices})."
        )
    if config.train.steps < 1:
        raise ValueError(f"train.steps must be >= 1, got {config.train.steps}.")


def _open_splits_in_turn(data_config) -> dict:
    """``open_splits`` on process 0 first (it may build the data set), then on the others."""
    if jax.process_index() != 0:
        multihost_utils.sync_global_devices("wsl_jax: data prepared by process 0")
    sources = open_splits(data_config)
    if jax.process_index() == 0 and jax.process_count() > 1:
        multihost_utils.sync_global_devices("wsl_jax: data prepared by process 0")
    return sources


def _prepare(config, workdir: Path) -> TaskRun:
    """The weakly supervised task of ``config`` for :func:`~wsl_jax.train.runner.run`: its data
    (built on first use), model, initial state (with pretrained weights if the config names them),
    step, validation mAP and the final test evaluation of the selected variables."""
    mesh = data_mesh()
    sources = _open_splits_in_turn(config.data)
    image_size = tuple(config.data.image_size)
    train_iter = iter(
        make_train_dataset(
            sources["train"],
            batch_size=config.train.batch_size // jax.process_count(),
            seed=config.seed,
            random_flip=config.data.random_flip,
            crop_padding=config.data.crop_padding,
            image_size=image_size,
            **pipeline_options(config.data),
        )
    )
    model, tx = build_from_config(config)
    channels = np.asarray(sources["train"][0]["image"]).shape[-1]
    state = create_train_state(
        model,
        tx,
        (1, *image_size, channels),
        jax.random.fold_in(jax.random.key(config.seed), 0),
        mesh,
    )
    if config.model.get("pretrained"):
        state = load_pretrained_backbone(
            state,
            tx,
            config.model.pretrained,
            backbone=config.model.backbone,
            **dict(config.model.get("backbone_kwargs", {})),
        )
    predict = make_predict(model)

    def next_batch(_):
        host_batch = next(train_iter)
        return make_global_batch({k: host_batch[k] for k in _BATCH_FIELDS}, mesh)

    def validate(state):
        val = evaluate_split(predict, state.params, state.batch_stats, sources["val"], config, mesh)
        return {"val_mAP": val["mAP"]}

    def finish(state, best):
        abstract = {"params": state.params, "batch_stats": state.batch_stats}
        selected = restore_best(workdir, best, abstract)
        test = evaluate_split(
            predict, selected["params"], selected["batch_stats"], sources["test"], config, mesh
        )
        return {
            "best_val_mAP": best["value"],
            "best_step": best["step"],
            "test_mAP": test["mAP"],
            "test_AP": test["AP"],
            "test_examples": test["num_examples"],
            **{f"test_{k}": test[k] for k in ("top1", "mean_class_accuracy") if k in test},
            "steps": config.train.steps,
        }

    t = config.train
    return TaskRun(
        state=state,
        train_step=make_train_step(model, tx, make_objective(config.loss), mesh),
        next_batch=next_batch,
        validate=validate,
        selection="val_mAP",
        finish=finish,
        schedule=Schedule(t.steps, t.log_every, t.eval_every, t.checkpoint_every),
        data_iterator=train_iter,
    )


def train_and_evaluate(config, workdir, *, stop_after_steps: int | None = None) -> dict:
    """Trains the model of ``config`` in ``workdir`` (resuming it if it holds checkpoints).

    Returns the summary: best validation mAP and its step, test mAP of the selected parameters.
    With ``stop_after_steps``, stops once that many steps are done, with a checkpoint there, and
    returns ``{"stopped_at": step, "steps": train.steps}``; calling it again continues (e.g. to fit
    a run into the time slots of a cluster). The run itself (checkpoints, guard, logs, selection)
    is :func:`wsl_jax.train.runner.run`; this module supplies the task.

    A whole run takes minutes: ``python train.py --config configs/digits_weldon.py --workdir
    /tmp/wsl_digits``. Bad configs, and a workdir holding a run of another config, are refused; a
    refused run records nothing (``config.json`` is written once the run has started), so the
    corrected command runs in the same workdir:
      >>> import tempfile
      >>> from configs import digits_weldon
      >>> config, workdir = digits_weldon.get_config(), tempfile.mkdtemp()
      >>> config.train.steps = 0
      >>> train_and_evaluate(config, workdir)
      Traceback (most recent call last):
      ...
      ValueError: train.steps must be >= 1, got 0.
      >>> config.train.steps, config.data.name = 10, "no_such_set"
      >>> train_and_evaluate(config, workdir)
      Traceback (most recent call last):
      ...
      ValueError: config data.name='no_such_set' is not a known data set; known: ...
      >>> sorted(p.name for p in Path(workdir).iterdir())
      []
    """
    _check_config(config, jax.device_count())
    workdir = Path(workdir).expanduser()
    return run(config, workdir, lambda: _prepare(config, workdir), stop_after=stop_after_steps)
