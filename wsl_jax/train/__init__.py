"""Training and evaluation: sharded jitted steps, orbax checkpoints, the loop behind ``train.py``.

A full run is ``python train.py --config configs/digits_weldon.py --workdir /tmp/wsl_digits`` (see
the README); :func:`train_and_evaluate` is what it calls.

Example (an objective and an optimizer from config values; one step on raw scores lowers the loss):
  >>> import jax, jax.numpy as jnp, ml_collections
  >>> from wsl_jax import train
  >>> loss = train.make_objective("multilabel_soft_margin")
  >>> tx = train.make_optimizer(ml_collections.ConfigDict(
  ...     {"name": "sgd", "learning_rate": 1.0, "momentum": 0.0, "schedule": "constant"}),
  ...     total_steps=1)
  >>> scores, labels, valid = jnp.zeros((1, 3)), jnp.array([[1.0, 0.0, 0.0]]), jnp.array([True])
  >>> updates, _ = tx.update(jax.grad(loss)(scores, labels, valid), tx.init(scores), scores)
  >>> float(loss(scores, labels, valid)), float(loss(scores + updates, labels, valid)) < 0.693
  (0.693..., True)
"""

from wsl_jax.train.entry import train_and_evaluate
from wsl_jax.train.objectives import OBJECTIVES, make_objective
from wsl_jax.train.optim import make_optimizer
from wsl_jax.train.state import TrainState, create_train_state

__all__ = [
    "OBJECTIVES",
    "TrainState",
    "create_train_state",
    "make_objective",
    "make_optimizer",
    "train_and_evaluate",
]
