"""Optimizers from a config: SGD with momentum or Adam, weight decay, a cosine (with warm-up) or
constant schedule, and a learning-rate multiplier for the backbone (the official recipe uses 0.1).

Example (plain SGD: the backbone moves ``backbone_lr_multiplier`` times less than the head):
  >>> import jax.numpy as jnp, ml_collections
  >>> config = ml_collections.ConfigDict(dict(name="sgd", learning_rate=0.1, momentum=0.0,
  ...     backbone_lr_multiplier=0.1, schedule="constant"))
  >>> tx = make_optimizer(config, total_steps=10)
  >>> params = {"backbone": jnp.ones(1), "head": jnp.ones(1)}
  >>> grads = {"backbone": jnp.ones(1), "head": jnp.ones(1)}
  >>> updates, _ = tx.update(grads, tx.init(params), params)
  >>> {name: round(float(u[0]), 4) for name, u in updates.items()}
  {'backbone': -0.01, 'head': -0.1}
"""

from __future__ import annotations

import optax
from flax import traverse_util


def _schedule(config, total_steps: int):
    lr, schedule = config.learning_rate, config.get("schedule", "cosine")
    if schedule == "constant":
        return optax.constant_schedule(lr)
    if schedule == "cosine":
        warmup = min(config.get("warmup_steps", 0), max(total_steps - 1, 0))
        return optax.warmup_cosine_decay_schedule(0.0, lr, max(warmup, 1), max(total_steps, 2))
    raise ValueError(f"unknown optimizer.schedule {schedule!r}; use 'cosine' or 'constant'.")


def make_optimizer(config, total_steps: int) -> optax.GradientTransformation:
    """Builds the optimizer described by ``config`` (a ``ConfigDict`` like ``configs/*.py``'s ``optimizer``).

    Parameters under ``backbone`` get ``backbone_lr_multiplier`` times the learning rate; weight decay
    (coupled L2, as in the official recipe) applies to every parameter.

    Example:
      >>> import ml_collections
      >>> config = ml_collections.ConfigDict(dict(name="sgd", learning_rate=0.01, momentum=0.9,
      ...     weight_decay=1e-4, backbone_lr_multiplier=0.1, schedule="constant"))
      >>> tx = make_optimizer(config, total_steps=100)
    """
    schedule = _schedule(config, total_steps)

    def base(scale: float):
        lr = lambda step: scale * schedule(step)
        decay = optax.add_decayed_weights(config.get("weight_decay", 0.0))
        if config.name == "sgd":
            return optax.chain(decay, optax.sgd(lr, momentum=config.get("momentum", 0.9)))
        if config.name == "adam":
            return optax.chain(decay, optax.adam(lr))
        raise ValueError(f"unknown optimizer.name {config.name!r}; use 'sgd' or 'adam'.")

    multiplier = config.get("backbone_lr_multiplier", 1.0)
    if multiplier == 1.0:
        return base(1.0)

    def labels(params):
        flat = traverse_util.flatten_dict(params)
        return traverse_util.unflatten_dict(
            {k: "backbone" if k[0] == "backbone" else "head" for k in flat}
        )

    return optax.multi_transform({"backbone": base(multiplier), "head": base(1.0)}, labels)
