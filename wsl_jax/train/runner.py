"""The run skeleton every task trains through: :func:`run` and what a task hands it, :class:`TaskRun`.

A task (weakly supervised classification in :mod:`wsl_jax.train.loop`, zero-shot metric learning in
:mod:`wsl_jax.train.zero_shot`, the zero-shot protocol's features CNN in
:mod:`wsl_jax.train.feature_cnn`) supplies only its state, its jitted step, its batches and its
evaluation; :func:`run` does the rest, the same way for all of them:

* **workdir:** a workdir holding another config's run is refused before any work
  (:func:`~wsl_jax.train.workdir.check_config`); ``config.json`` is written once the run has validly
  started (data, model and restore succeeded);
* **checkpoints:** orbax, every ``checkpoint_every`` steps, at the end and where the run is told to
  stop, each with its JSON ``record`` (checksums, reference loss, data position); a resume restores the
  newest readable, verified one (:func:`~wsl_jax.train.workdir.restore_newest_readable`), and the data
  iterator with it when the task has one;
* **guard:** every step's ``finite`` flag and loss are checked whenever metrics are read, and always
  before an evaluation or a checkpoint (:class:`~wsl_jax.train.guard.StepGuard`);
* **periodic actions:** log every ``log_every`` steps (``metrics.jsonl`` and TensorBoard, through
  :class:`~wsl_jax.train.metric_writers.MetricWriter`), evaluate on validation every ``eval_every``
  steps, checkpoint every ``checkpoint_every`` steps (:func:`is_due`);
* **selection:** the best validation value's selected variables in ``best/`` and ``best.json`` (with
  their checksums), written atomically; never on test;
* **interruption:** ``stop_after`` steps ends the call with a checkpoint there, and the same call again
  continues; a killed run resumes from its newest checkpoint, bitwise;
* **summary:** the task's ``finish`` gives it; it is logged and written to ``summary.json``.

A task in a few lines: the example of :func:`run`. The periodic actions, in steps:

>>> [done for done in range(1, 11) if is_due(done, 4, total=10)]  # e.g. checkpoint_every=4
[4, 8, 10]
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import grain
import jax
import numpy as np
import orbax.checkpoint as ocp
from tqdm.auto import tqdm

from wsl_jax.train.checkpoints import best_record, checkpoint_record, verify_restored
from wsl_jax.train.guard import run_guard
from wsl_jax.train.metric_writers import MetricWriter
from wsl_jax.train.workdir import (
    check_config,
    record_config,
    restore_newest_readable,
    write_atomically,
)

__all__ = ["Schedule", "TaskRun", "is_due", "run"]


@dataclasses.dataclass(frozen=True)
class Schedule:
    """When a run does what, in steps; ``steps_per_epoch`` (optional) adds ``epoch`` to the logs.

    >>> Schedule(total_steps=10, log_every=5, eval_every=10, checkpoint_every=5).total_steps
    10
    >>> Schedule(total_steps=0, log_every=1, eval_every=1, checkpoint_every=1)
    Traceback (most recent call last):
    ...
    ValueError: total_steps must be >= 1, got 0.
    """

    total_steps: int
    log_every: int
    eval_every: int
    checkpoint_every: int
    steps_per_epoch: int | None = None

    def __post_init__(self):
        for name in ("total_steps", "log_every", "eval_every", "checkpoint_every"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}.")


def is_due(done: int, every: int, *, total: int) -> bool:
    """Whether a periodic action runs after step ``done``: every ``every`` steps, and at the end.

    >>> [d for d in range(1, 8) if is_due(d, 3, total=7)]
    [3, 6, 7]
    """
    return done % every == 0 or done == total


@dataclasses.dataclass
class TaskRun:
    """What a task hands to :func:`run` (see the module example).

    Attributes:
      state: the initial train state (placed on the devices as the step expects it).
      train_step: ``(state, batch) -> (state, metrics)``; ``metrics`` holds device scalars ``loss``,
        ``finite`` (the loss and new state hold no NaN or infinity) and ``grad_norm``.
      next_batch: the global batch of the 0-based step ``i`` (``next_batch(i)``); a task whose batches
        come from a stateful iterator ignores ``i`` and passes the iterator as ``data_iterator``.
      validate: ``state -> {name: value}`` on validation data; logged at every evaluation.
      selection: the key of ``validate``'s result that selects (higher is better); ``None``: its
        first key.
      finish: ``(state, best) -> summary`` once every step is done; ``best`` is ``best.json``'s
        content (``metric``, ``value``, ``step``, ``epoch`` with epochs, ``checksums``) and the
        selected variables are in ``workdir/best`` (see :func:`~wsl_jax.train.checkpoints.restore_best`).
      schedule: steps and periodic actions.
      selected: ``state -> variables`` saved in ``best/`` (default: ``params`` and ``batch_stats``).
      data_iterator: a grain iterator checkpointed with the state (one state per process), or ``None``
        when batches are a function of the step.
      reduce_loss: the logged ``loss`` from the losses since the last log (default: the last one).
      description: the progress bar's label.

    >>> task = TaskRun(state=None, train_step=None, next_batch=None, validate=None,
    ...                selection="val_mAP", finish=None, schedule=Schedule(10, 5, 5, 5))
    >>> task.reduce_loss(np.array([0.5, 0.25])), task.data_iterator, task.description
    (0.25, None, 'train')
    """

    state: Any
    train_step: Callable[[Any, Any], tuple[Any, dict]]
    next_batch: Callable[[int], Any]
    validate: Callable[[Any], dict]
    selection: str | None
    finish: Callable[[Any, dict], dict]
    schedule: Schedule
    selected: Callable[[Any], Any] = lambda state: {
        "params": state.params,
        "batch_stats": state.batch_stats,
    }
    data_iterator: Any = None
    reduce_loss: Callable[[np.ndarray], float] = lambda losses: float(losses[-1])
    description: str = "train"


def _restore_args(task: TaskRun, save: bool):
    state_arg = ocp.args.StandardSave if save else ocp.args.StandardRestore
    record_arg = ocp.args.JsonSave if save else ocp.args.JsonRestore
    items = {"state": state_arg(task.state)}
    if task.data_iterator is not None:
        data_arg = grain.checkpoint.CheckpointSave if save else grain.checkpoint.CheckpointRestore
        items["data"] = data_arg(task.data_iterator)
    return items, record_arg


def _data_position(task: TaskRun):
    return None if task.data_iterator is None else task.data_iterator.get_state()


def _check_process_count(workdir: Path, manager: ocp.CheckpointManager) -> None:
    """Checkpoints hold one data-iterator state per process: resume only with as many processes."""
    record = workdir / "processes.json"
    if manager.latest_step() is not None:
        saved = json.loads(record.read_text())["process_count"] if record.exists() else 1
        if saved != jax.process_count():
            raise ValueError(
                f"workdir {workdir} holds checkpoints of a run with {saved} process(es) but this "
                f"run has {jax.process_count()}: resume with --num_processes={saved}, or use a new "
                "--workdir."
            )
    if jax.process_index() == 0:
        write_atomically(record, json.dumps({"process_count": jax.process_count()}))


class _Run:
    """The state of one call of :func:`run`: the task, its checkpoints, guard, writer and best."""

    def __init__(self, config, workdir: Path, task: TaskRun):
        self.config, self.workdir, self.task = config, workdir, task
        self.is_main = jax.process_index() == 0
        self.manager = ocp.CheckpointManager(
            (workdir / "checkpoints").absolute(),
            options=ocp.CheckpointManagerOptions(
                max_to_keep=config.train.keep_checkpoints, create=True
            ),
        )
        if task.data_iterator is not None:
            _check_process_count(workdir, self.manager)
        self.start, reference_loss = self._restore()
        record_config(config, workdir)  # The run has validly started: it owns the workdir now.
        self.guard = run_guard(config.train, self.manager, reference_loss=reference_loss)
        self.writer = MetricWriter(workdir, resume_step=self.start)
        best_path = workdir / "best.json"
        self.best = json.loads(best_path.read_text()) if best_path.exists() else None
        self.losses: list[np.ndarray] = []

    def _restore(self) -> tuple[int, float | None]:
        task = self.task
        items, record_arg = _restore_args(task, save=False)
        restored, start = restore_newest_readable(
            self.manager,
            ocp.args.Composite(**items, record=record_arg()),
            verify=lambda restored, step: verify_restored(
                restored["state"], restored["record"], step, data_position=_data_position(task)
            ),
        )
        if restored is None:
            return 0, None
        task.state = restored["state"]
        return start, restored["record"]["reference_loss"]

    def checked(self) -> np.ndarray:
        """The guard's check; on a bad step, finishes pending checkpoint writes and the logs first."""
        try:
            losses = self.guard.check()
        except FloatingPointError:
            self.manager.wait_until_finished()
            self.writer.close()
            raise
        self.losses.append(losses)
        return losses

    def log(self, done: int, last_metrics: dict, rate: float) -> float:
        self.checked()
        loss = self.task.reduce_loss(np.concatenate(self.losses))
        self.losses = []
        per_epoch = self.task.schedule.steps_per_epoch
        values = {"loss": loss, "grad_norm": float(last_metrics["grad_norm"])}
        if per_epoch:
            values = {"epoch": done // per_epoch, **values, "epochs_per_s": rate / per_epoch}
        else:
            values["steps_per_s"] = rate
        self.writer.write(done, **values)
        return loss

    def evaluate(self, done: int) -> None:
        self.checked()  # Never evaluate (or select) a diverged state.
        task = self.task
        values = task.validate(task.state)
        per_epoch = task.schedule.steps_per_epoch
        epoch = {"epoch": done // per_epoch} if per_epoch else {}
        self.writer.write(done, **epoch, **values)
        metric = task.selection or next(iter(values))
        value = values[metric]
        if self.best is None or value > self.best["value"]:  # Selection on validation only.
            selected = task.selected(task.state)
            info = {"metric": metric, "value": value, "step": done, **epoch}
            self.best = best_record(info, selected)
            checkpointer = ocp.StandardCheckpointer()
            checkpointer.save((self.workdir / "best").absolute(), selected, force=True)
            checkpointer.wait_until_finished()
            if self.is_main:
                write_atomically(self.workdir / "best.json", json.dumps(self.best))

    def save(self, done: int) -> None:
        self.checked()  # Never checkpoint a diverged state.
        task = self.task
        items, record_arg = _restore_args(task, save=True)
        record = checkpoint_record(
            task.state, self.guard.reference_loss, data_position=_data_position(task)
        )
        self.manager.save(done, args=ocp.args.Composite(**items, record=record_arg(record)))


def run(config, workdir, prepare: Callable[[], TaskRun], *, stop_after: int | None = None) -> dict:
    """Trains the task that ``prepare()`` builds in ``workdir`` (resuming it), selects on validation
    and returns the task's summary (also in ``summary.json``).

    ``prepare`` runs after the workdir's config check, so a refused run does no work. With
    ``stop_after``, the call ends once that many steps are done, with a checkpoint there, and returns
    ``{"stopped_at": step, "steps": total}``; calling it again continues. Reads
    ``config.train.keep_checkpoints``, ``config.train.divergence_factor`` and
    ``config.progress_bar``.

    Example (a task in a few lines: a one-parameter model whose step halves the parameter; it is
    "validated" by ``-w²``, so the last evaluation is selected):

    >>> import tempfile
    >>> import jax, jax.numpy as jnp, ml_collections
    >>> from wsl_jax.train.state import TrainState
    >>> config = ml_collections.ConfigDict({"seed": 0, "train": {"keep_checkpoints": 2}})
    >>> def halve(state, batch):
    ...     w = state.params["w"] * batch
    ...     new = state.replace(step=state.step + 1, params={"w": w})
    ...     return new, {"loss": w**2, "finite": jnp.isfinite(w), "grad_norm": 2 * w}
    >>> task = TaskRun(
    ...     state=TrainState(jnp.int32(0), {"w": jnp.float32(1.0)}, {}, ()),
    ...     train_step=halve, next_batch=lambda step: jnp.float32(0.5),
    ...     validate=lambda state: {"score": float(-state.params["w"] ** 2)}, selection="score",
    ...     finish=lambda state, best: {"best_step": best["step"], "w": float(state.params["w"])},
    ...     schedule=Schedule(total_steps=4, log_every=1, eval_every=2, checkpoint_every=2))
    >>> workdir = tempfile.mkdtemp()
    >>> run(config, workdir, lambda: task, stop_after=3)
    {'stopped_at': 3, 'steps': 4}
    >>> run(config, workdir, lambda: task)  # The same call again continues from step 3.
    {'best_step': 4, 'w': 0.0625}
    """
    if stop_after is not None and stop_after < 1:
        raise ValueError(f"stop_after must be >= 1 (steps), got {stop_after}.")
    workdir = Path(workdir).expanduser()
    workdir.mkdir(parents=True, exist_ok=True)
    check_config(config, workdir)  # Refused early; config.json is written once the run has started.
    task = prepare()
    r = _Run(config, workdir, task)
    schedule = task.schedule
    total, start = schedule.total_steps, r.start
    stop = total if stop_after is None else max(min(stop_after, total), start)
    bar = tqdm(
        range(start, stop),
        initial=start,
        total=total,
        desc=task.description,
        unit="step",
        disable=not (config.get("progress_bar", True) and r.is_main),
    )
    started = time.perf_counter()
    for step in bar:
        task.state, metrics = task.train_step(task.state, task.next_batch(step))
        done = step + 1
        r.guard.add(done, metrics)  # Every step is checked when metrics are read next.
        if is_due(done, schedule.log_every, total=total):
            rate = (done - start) / (time.perf_counter() - started)
            bar.set_postfix(loss=f"{r.log(done, metrics, rate):.4f}")
        if is_due(done, schedule.eval_every, total=total):
            r.evaluate(done)
        if is_due(done, schedule.checkpoint_every, total=total) or done == stop:
            r.save(done)
    bar.close()
    r.manager.wait_until_finished()
    if stop < total:
        r.writer.close()
        return {"stopped_at": stop, "steps": total}
    summary = task.finish(task.state, r.best)
    logged = {  # Per-class lists and tables stay in summary.json.
        k: v for k, v in summary.items() if not (isinstance(v, list) or k.startswith("per_class"))
    }
    r.writer.write(total, **logged)
    r.writer.close()
    if r.is_main:
        write_atomically(workdir / "summary.json", json.dumps(summary, indent=2))
    return summary
