"""Training and evaluation: sharded jitted steps, orbax checkpoints, the loop behind ``train.py``."""

from wsl_jax.train.loop import train_and_evaluate
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
