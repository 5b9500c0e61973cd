"""Zero-shot classification by metric learning with hard negative mining (SPEC B).

Modules, bottom-up: ``checks`` (input validation), ``model`` (metric pytree, distances,
pair loss, Flax module), ``mining`` (negative-pair schemes), ``evaluation`` (ZSL / GZSL
metrics), ``eszsl`` (closed-form baseline). Public names are re-exported here explicitly.

Also here, imported by module and not re-exported: ``protocol`` (validation-only selection and
calibration, the GBU retraining config, test metrics, on a task structure). Nothing here imports
the trainer, the data pipeline or the models: zero-shot tasks (splits, CIFAR-10 and xlsa17
reading) live in :mod:`wsl_jax.data` (``zsl_splits``, ``zsl_tasks``), the features CNN in
:mod:`wsl_jax.models` (trained by :mod:`wsl_jax.train.feature_cnn`), the zero-shot task of the
run skeleton in :mod:`wsl_jax.train.zero_shot` (reached from ``train.py`` when
``config.task == "zsl"``), and the default settings in ``configs/zsl_base.py``.

>>> import jax, jax.numpy as jnp
>>> from wsl_jax import zsl
>>> params = zsl.init_metric_params(jax.random.key(0), feature_dim=6, attribute_dim=4)
>>> x, att, y = jnp.ones((3, 6)), jnp.eye(5, 4), jnp.array([0, 1, 2])
>>> neg = zsl.mine_negatives("hard", zsl.distances(params, x, att), y, n_neg=2)
>>> classes, signs = zsl.make_pairs(y, neg)
>>> zsl.pair_loss(params, x, att, classes, signs, lam=0.1).shape
(3, 3)
"""

from wsl_jax.zsl.checks import check_attributes, check_finite, check_splits
from wsl_jax.zsl.eszsl import eszsl_fit, eszsl_scores, label_matrix
from wsl_jax.zsl.evaluation import (
    ausuc,
    choose_calibration,
    gzsl_metrics,
    seen_unseen_curve,
    zsl_accuracy,
)
from wsl_jax.zsl.mining import (
    SCHEMES,
    bootstrap_negatives,
    bootstrap_schedule,
    correlated_negatives,
    hard_negatives,
    make_pairs,
    mine_negatives,
    mixture_negatives,
    negative_mask,
    resolve_counts,
    semi_hard_negatives,
    uncertain_negatives,
    uniform_negatives,
)
from wsl_jax.zsl.model import (
    MetricEmbedding,
    distances,
    embed_images,
    embedded_distances,
    init_metric_params,
    pair_loss,
    predict,
    scores,
)

__all__ = (
    "SCHEMES",
    "MetricEmbedding",
    "ausuc",
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
    "seen_unseen_curve",
    "semi_hard_negatives",
    "uncertain_negatives",
    "uniform_negatives",
    "zsl_accuracy",
)
