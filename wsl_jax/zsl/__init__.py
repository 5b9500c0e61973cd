"""Zero-shot classification by metric learning with hard negative mining (SPEC B).

Modules, bottom-up: ``checks`` (input validation), ``model`` (metric pytree, distances,
pair loss, Flax module), ``mining`` (negative-pair schemes), ``evaluation`` (ZSL / GZSL
metrics), ``eszsl`` (closed-form baseline). Public names are re-exported here explicitly.

>>> import jax, jax.numpy as jnp
>>> from wsl_jax import zsl
>>> params = zsl.init_metric_params(jax.random.key(0), feature_dim=6, attribute_dim=4)
>>> x, att, y = jnp.ones((3, 6)), jnp.eye(5, 4), jnp.array([0, 1, 2])
>>> neg = zsl.mine_negatives("hard", zsl.distances(params, x, att), y, n_neg=2)
>>> classes, signs = zsl.make_pairs(y, neg)
>>> zsl.pair_loss(params, x, att, classes, signs, lam=0.1).shape
(3, 3)
"""
from wsl_jax.zsl.checks import check_attributes
from wsl_jax.zsl.checks import check_finite
from wsl_jax.zsl.checks import check_splits
from wsl_jax.zsl.eszsl import eszsl_fit
from wsl_jax.zsl.eszsl import eszsl_scores
from wsl_jax.zsl.eszsl import label_matrix
from wsl_jax.zsl.evaluation import choose_calibration
from wsl_jax.zsl.evaluation import gzsl_metrics
from wsl_jax.zsl.evaluation import zsl_accuracy
from wsl_jax.zsl.mining import SCHEMES
from wsl_jax.zsl.mining import bootstrap_negatives
from wsl_jax.zsl.mining import bootstrap_schedule
from wsl_jax.zsl.mining import correlated_negatives
from wsl_jax.zsl.mining import hard_negatives
from wsl_jax.zsl.mining import make_pairs
from wsl_jax.zsl.mining import mine_negatives
from wsl_jax.zsl.mining import mixture_negatives
from wsl_jax.zsl.mining import negative_mask
from wsl_jax.zsl.mining import resolve_counts
from wsl_jax.zsl.mining import semi_hard_negatives
from wsl_jax.zsl.mining import uncertain_negatives
from wsl_jax.zsl.mining import uniform_negatives
from wsl_jax.zsl.model import MetricEmbedding
from wsl_jax.zsl.model import distances
from wsl_jax.zsl.model import embed_images
from wsl_jax.zsl.model import embedded_distances
from wsl_jax.zsl.model import init_metric_params
from wsl_jax.zsl.model import pair_loss
from wsl_jax.zsl.model import predict
from wsl_jax.zsl.model import scores

__all__ = (
    "SCHEMES",
    "MetricEmbedding",
    "bootstrap_negatives",
    "bootstrap_schedule",
    "check_attributes",
    "check_finite",
    "check_splits",
    "choose_calibration",
    "correlated_negatives",
    "distances",
    "embed_images",
    "embedded_distances",
    "eszsl_fit",
    "eszsl_scores",
    "gzsl_metrics",
    "hard_negatives",
    "init_metric_params",
    "label_matrix",
    "make_pairs",
    "mine_negatives",
    "mixture_negatives",
    "negative_mask",
    "pair_loss",
    "predict",
    "resolve_counts",
    "scores",
    "semi_hard_negatives",
    "uncertain_negatives",
    "uniform_negatives",
    "zsl_accuracy",
)
