"""wsl_jax: negative-evidence weakly supervised models and zero-shot metric learning in JAX.

The public API is re-exported here explicitly (the list is tested in ``tests/test_public_api.py``).

Example:
  >>> import jax.numpy as jnp, wsl_jax
  >>> wsl_jax.max_min_pool(jnp.array([[3., -1., 2., 0.]]), k_max=2, k_min=1, lam=0.5)
  Array([2.], dtype=float32)
"""
from wsl_jax.losses import multiclass_hinge
from wsl_jax.losses import multilabel_hinge
from wsl_jax.losses import multilabel_soft_margin
from wsl_jax.losses import softmax_cross_entropy
from wsl_jax.metrics import AP_MODES
from wsl_jax.metrics import average_precision
from wsl_jax.metrics import mean_average_precision
from wsl_jax.metrics import per_class_mean_accuracy
from wsl_jax.metrics import top1_accuracy
from wsl_jax.pooling import CONVENTIONS
from wsl_jax.pooling import class_wise_mean
from wsl_jax.pooling import lse_pool
from wsl_jax.pooling import max_min_pool
from wsl_jax.pooling import resolve_k
from wsl_jax.ranking import ap_loss_augmented_ranking
from wsl_jax.ranking import ap_ranking_loss

__version__ = "0.1.0"

__all__ = (
    "AP_MODES",
    "CONVENTIONS",
    "ap_loss_augmented_ranking",
    "ap_ranking_loss",
    "average_precision",
    "class_wise_mean",
    "lse_pool",
    "max_min_pool",
    "mean_average_precision",
    "multiclass_hinge",
    "multilabel_hinge",
    "multilabel_soft_margin",
    "per_class_mean_accuracy",
    "resolve_k",
    "softmax_cross_entropy",
    "top1_accuracy",
)
