"""``train_and_evaluate(config, workdir)``: dispatches a config to its training loop.

``config.task == "zsl"`` runs the zero-shot metric-learning loop
(:func:`wsl_jax.train.zero_shot.train_and_evaluate_zsl`), ``"wsl"`` (the default) the weakly
supervised loop (:func:`wsl_jax.train.loop.train_and_evaluate`); other tasks are refused.

>>> from wsl_jax.train.entry import TASKS
>>> from wsl_jax.zsl.config import base_config
>>> TASKS, base_config().task
(('wsl', 'zsl'), 'zsl')
"""

from __future__ import annotations

__all__ = ["train_and_evaluate"]

TASKS = ("wsl", "zsl")


def train_and_evaluate(config, workdir) -> dict:
    """Trains and evaluates ``config`` in ``workdir`` with the loop of ``config.task``.

    >>> import tempfile
    >>> from wsl_jax.zsl.config import synthetic_config
    >>> config = synthetic_config()  # config.task == "zsl"
    >>> config.zsl.scheme = "hardest"
    >>> train_and_evaluate(config, tempfile.mkdtemp())  # the ZSL loop checks it before any work
    Traceback (most recent call last):
    ...
    ValueError: config.zsl.scheme must be one of (...), got 'hardest'.
    >>> config.task = "detection"
    >>> train_and_evaluate(config, tempfile.mkdtemp())
    Traceback (most recent call last):
    ...
    ValueError: config.task must be one of ('wsl', 'zsl'), got 'detection'.
    """
    task = config.get("task", "wsl")
    if task == "zsl":
        from wsl_jax.train.zero_shot import train_and_evaluate_zsl

        return train_and_evaluate_zsl(config, workdir)
    if task == "wsl":
        from wsl_jax.train.loop import train_and_evaluate as train_wsl

        return train_wsl(config, workdir)
    raise ValueError(f"config.task must be one of {TASKS}, got {task!r}.")
