"""The tasks a config can name, and the two calls the entry points dispatch to.

``config.task`` names what a run trains: ``"wsl"``, weakly supervised classification
(:mod:`wsl_jax.train.loop`), or ``"zsl"``, zero-shot metric learning (:mod:`wsl_jax.train.zero_shot`).
Both train through the same skeleton (:func:`wsl_jax.train.runner.run`); a task supplies its step,
evaluation and data. ``train.py`` calls :func:`train_and_evaluate`, ``evaluate.py``
:func:`evaluate_workdir`.

>>> from wsl_jax.train.entry import TASKS
>>> from configs.zsl_base import base_config
>>> from configs import digits_weldon
>>> sorted(TASKS), base_config().task, digits_weldon.get_config().task
(['wsl', 'zsl'], 'zsl', 'wsl')
"""

from __future__ import annotations

import json
from pathlib import Path

__all__ = ["TASKS", "evaluate_workdir", "train_and_evaluate", "without_lists"]


# Imported when used: each task's module imports this package, and a run needs only its own task.
def _wsl():
    from wsl_jax.train import evaluation, loop

    return loop.train_and_evaluate, evaluation.evaluate_workdir


def _zsl():
    from wsl_jax.train import zero_shot

    return zero_shot.train_and_evaluate_zsl, lambda workdir, **_: zero_shot.evaluate_zsl_workdir(
        workdir
    )


TASKS = {"wsl": _wsl, "zsl": _zsl}


def _task(name, where: str):
    if name not in TASKS:
        raise ValueError(f"{where} must be one of {tuple(TASKS)}, got {name!r}.")
    return TASKS[name]()


def train_and_evaluate(config, workdir, *, stop_after_steps: int | None = None) -> dict:
    """Trains and evaluates ``config`` in ``workdir`` with the task ``config.task`` names.

    ``stop_after_steps`` ends the call after that many steps, with a checkpoint; the same call again
    continues (:func:`wsl_jax.train.runner.run`).

    >>> import tempfile
    >>> from configs.zsl_base import synthetic_config
    >>> config = synthetic_config()  # config.task == "zsl"
    >>> config.zsl.scheme = "hardest"
    >>> train_and_evaluate(config, tempfile.mkdtemp())  # the ZSL task checks it before any work
    Traceback (most recent call last):
    ...
    ValueError: config.zsl.scheme must be one of (...), got 'hardest'.
    >>> config.task = "detection"
    >>> train_and_evaluate(config, tempfile.mkdtemp())
    Traceback (most recent call last):
    ...
    ValueError: config.task must be one of ('wsl', 'zsl'), got 'detection'.
    """
    train, _ = _task(config.get("task"), "config.task")
    return train(config, workdir, stop_after_steps=stop_after_steps)


def evaluate_workdir(workdir, *, num_overlays: int = 6) -> dict:
    """Evaluates the validation-selected model of a training ``workdir`` with its task's evaluation
    (``"wsl"`` also draws ``num_overlays`` test images); a ``config.json`` without ``task`` was
    written by a weakly supervised run of an earlier version.

    >>> import tempfile
    >>> evaluate_workdir(tempfile.mkdtemp())
    Traceback (most recent call last):
    ...
    FileNotFoundError: .../config.json not found: is ... a training workdir?
    """
    config_file = Path(workdir).expanduser() / "config.json"
    if not config_file.is_file():
        raise FileNotFoundError(f"{config_file} not found: is {workdir} a training workdir?")
    name = json.loads(config_file.read_text()).get("task", "wsl")
    _, evaluate = _task(name, f"{config_file}'s task")
    return evaluate(workdir, num_overlays=num_overlays)


def without_lists(results: dict) -> dict:
    """``results`` without its lists (per-class values, kept in the workdir's JSON files), for display.

    >>> without_lists({"mAP": 0.5, "AP": [0.4, 0.6], "test": {"top1": 0.7, "AP": [0.1]}})
    {'mAP': 0.5, 'test': {'top1': 0.7}}
    """
    return {
        k: without_lists(v) if isinstance(v, dict) else v
        for k, v in results.items()
        if not isinstance(v, list)
    }
