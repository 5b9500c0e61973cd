"""``train_and_evaluate(config, workdir)``: the data-parallel training loop behind ``train.py``.

One process's view: a mesh over all devices, a replicated train state created sharded, host batches
turned into global arrays sharded on ``"data"``, a jitted buffer-donating step, orbax checkpoints of
the state and the grain iterator (``--workdir`` of an interrupted run resumes it), model selection on
the validation split only, and the test split evaluated once, with the selected parameters.
"""

from __future__ import annotations

import functools
import json
import logging
import time
import warnings
from pathlib import Path

import grain
import jax
import numpy as np
import optax
import orbax.checkpoint as ocp
from jax.sharding import NamedSharding, PartitionSpec as P
from tqdm.auto import tqdm

from wsl_jax import metrics
from wsl_jax.data import make_eval_dataset, make_global_batch, make_train_dataset
from wsl_jax.data import open_source, prepare_dataset
from wsl_jax.models import build_model
from wsl_jax.train.metric_writers import MetricWriter
from wsl_jax.train.objectives import make_objective
from wsl_jax.train.optim import make_optimizer
from wsl_jax.train.state import TrainState, create_train_state

log = logging.getLogger(__name__)

_BATCH_FIELDS = ("image", "labels", "valid")


def build_from_config(config):
    """The model and the optimizer described by ``config``."""
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
    """The jitted data-parallel step; the state's buffers are donated."""

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
        return new_state, {"loss": loss, "grad_norm": optax.tree.norm(grads)}

    return train_step


def make_predict(model):
    @jax.jit
    def predict(params, batch_stats, images):
        return model.apply({"params": params, "batch_stats": batch_stats}, images, train=False)

    return predict


def evaluate_split(predict, params, batch_stats, source, config, mesh) -> dict:
    """Scores every example of ``source`` exactly once; mAP (non-interpolated) and per-class AP."""
    scores, labels = [], []
    dataset = make_eval_dataset(
        source, batch_size=config.eval.batch_size, image_size=tuple(config.data.image_size)
    )
    for host_batch in dataset:
        batch = make_global_batch({k: host_batch[k] for k in _BATCH_FIELDS}, mesh)
        out = np.asarray(predict(params, batch_stats, batch["image"]))
        valid = host_batch["valid"]
        scores.append(out[valid])
        labels.append(host_batch["labels"][valid])
    scores, labels = np.concatenate(scores), np.concatenate(labels)
    ap = np.asarray(metrics.average_precision(scores, labels > 0.5))
    return {
        "mAP": float(np.nanmean(ap)),
        "AP": [float(a) for a in ap],
        "num_examples": int(len(scores)),
    }


def _check_config(config, num_devices: int) -> None:
    if config.train.batch_size % num_devices or config.eval.batch_size % num_devices:
        raise ValueError(
            f"train.batch_size={config.train.batch_size} and eval.batch_size={config.eval.batch_size} "
            f"must be divisible by the number of devices ({num_devices})."
        )
    if config.train.steps < 1:
        raise ValueError(f"train.steps must be >= 1, got {config.train.steps}.")


def _checkpoint_manager(workdir: Path, config) -> ocp.CheckpointManager:
    options = ocp.CheckpointManagerOptions(max_to_keep=config.train.keep_checkpoints, create=True)
    return ocp.CheckpointManager((workdir / "checkpoints").absolute(), options=options)


def _save(manager, step, state, train_iter):
    manager.save(
        step,
        args=ocp.args.Composite(
            state=ocp.args.StandardSave(state), data=grain.checkpoint.CheckpointSave(train_iter)
        ),
    )


def _restore_latest(manager, abstract_state, train_iter):
    """Restores the newest readable checkpoint; a corrupt one is skipped with a warning."""
    for step in sorted(manager.all_steps(), reverse=True):
        try:
            restored = manager.restore(
                step,
                args=ocp.args.Composite(
                    state=ocp.args.StandardRestore(abstract_state),
                    data=grain.checkpoint.CheckpointRestore(train_iter),
                ),
            )
            return restored["state"], step
        except Exception as error:  # noqa: BLE001 — any unreadable checkpoint: fall back.
            warnings.warn(
                f"checkpoint at step {step} is unreadable ({type(error).__name__}: {error}); "
                "removing it and trying an older one",
                stacklevel=2,
            )
            manager.delete(step)  # So that the resumed run can save this step again.
    return None, 0


def train_and_evaluate(config, workdir) -> dict:
    """Trains the model of ``config`` in ``workdir`` (resuming it if it holds checkpoints).

    Returns the summary: best validation mAP and its step, test mAP of the selected parameters.
    """
    workdir = Path(workdir).expanduser()
    workdir.mkdir(parents=True, exist_ok=True)
    mesh = jax.make_mesh((jax.device_count(),), ("data",))
    _check_config(config, jax.device_count())
    config_path = workdir / "config.json"
    if config_path.exists() and json.loads(config_path.read_text()) != json.loads(config.to_json()):
        raise ValueError(
            f"workdir {workdir} holds a run of a different config ({config_path}); "
            "use a new --workdir or the same config to resume."
        )
    config_path.write_text(config.to_json(indent=2))

    data_dir = str(Path(config.data.dir).expanduser())
    prepare_dataset(config.data.name, data_dir)
    image_size = tuple(config.data.image_size)
    sources = {
        split: open_source(config.data.name, config.data[f"{split}_split"], data_dir, image_size)
        for split in ("train", "val", "test")
    }
    train_iter = iter(
        make_train_dataset(
            sources["train"],
            batch_size=config.train.batch_size // jax.process_count(),
            seed=config.seed,
            random_flip=config.data.random_flip,
            crop_padding=config.data.crop_padding,
            image_size=image_size,
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
    manager = _checkpoint_manager(workdir, config)
    restored, start = _restore_latest(manager, state, train_iter)
    if restored is not None:
        state = restored
        log.info("resumed from step %d", start)
    train_step = make_train_step(model, tx, make_objective(config.loss), mesh)
    predict = make_predict(model)
    writer = MetricWriter(workdir)
    best_path = workdir / "best.json"
    best = json.loads(best_path.read_text()) if best_path.exists() else {"mAP": -1.0, "step": 0}
    checkpointer = ocp.StandardCheckpointer()

    total = config.train.steps
    started = time.perf_counter()
    bar = tqdm(
        range(start, total),
        initial=start,
        total=total,
        desc="train",
        unit="step",
        disable=not config.get("progress_bar", True),
    )
    for step in bar:
        host_batch = next(train_iter)
        batch = make_global_batch({k: host_batch[k] for k in _BATCH_FIELDS}, mesh)
        state, step_metrics = train_step(state, batch)
        done = step + 1
        if done % config.train.log_every == 0 or done == total:
            loss = float(step_metrics["loss"])
            if not np.isfinite(loss):
                raise FloatingPointError(
                    f"non-finite loss {loss} at step {done}; stopping. The last good checkpoint "
                    f"(step {manager.latest_step()}) is kept in {workdir / 'checkpoints'}."
                )
            bar.set_postfix(loss=f"{loss:.4f}")
            writer.write(
                done,
                loss=loss,
                grad_norm=float(step_metrics["grad_norm"]),
                steps_per_s=(done - start) / (time.perf_counter() - started),
            )
        if done % config.train.eval_every == 0 or done == total:
            val = evaluate_split(
                predict, state.params, state.batch_stats, sources["val"], config, mesh
            )
            writer.write(done, val_mAP=val["mAP"])
            if val["mAP"] > best["mAP"]:  # Model selection on validation, never on test.
                best = {"mAP": val["mAP"], "step": done}
                checkpointer.save(
                    (workdir / "best").absolute(),
                    {"params": state.params, "batch_stats": state.batch_stats},
                    force=True,
                )
                checkpointer.wait_until_finished()
                best_path.write_text(json.dumps(best))
        if done % config.train.checkpoint_every == 0 or done == total:
            _save(manager, done, state, train_iter)
    bar.close()
    manager.wait_until_finished()

    abstract = {"params": state.params, "batch_stats": state.batch_stats}
    selected = checkpointer.restore((workdir / "best").absolute(), abstract)
    test = evaluate_split(
        predict, selected["params"], selected["batch_stats"], sources["test"], config, mesh
    )
    summary = {
        "best_val_mAP": best["mAP"],
        "best_step": best["step"],
        "test_mAP": test["mAP"],
        "test_AP": test["AP"],
        "test_examples": test["num_examples"],
        "steps": total,
    }
    writer.write(total, **{k: v for k, v in summary.items() if k != "test_AP"})
    writer.close()
    (workdir / "summary.json").write_text(json.dumps(summary, indent=2))
    return summary
