"""wsl_jax: negative-evidence weakly supervised models and zero-shot metric learning in JAX.

The public API is re-exported here explicitly (the list is tested in ``tests/test_public_api.py``).

Example:
  >>> import jax.numpy as jnp, wsl_jax
  >>> wsl_jax.max_min_pool(jnp.array([[3., -1., 2., 0.]]), k_max=2, k_min=1, lam=0.5)
  Array([2.], dtype=float32)
"""
from wsl_jax._xla_flags import use_recommended_xla_flags
from wsl_jax.localization import RESIZE_METHODS
from wsl_jax.localization import boxes_to_pixels
from wsl_jax.localization import class_maps_to_heatmaps
from wsl_jax.localization import normalize_heatmaps
from wsl_jax.localization import segmentation_from_heatmaps
from wsl_jax.localization_metrics import confusion_matrix
from wsl_jax.localization_metrics import maxboxacc
from wsl_jax.localization_metrics import maxboxacc_hits
from wsl_jax.localization_metrics import mean_iou
from wsl_jax.localization_metrics import pointing_game
from wsl_jax.localization_metrics import pointing_game_accuracy
from wsl_jax.localization_metrics import pointwise_localization
from wsl_jax.localization_metrics import pointwise_localization_hits
from wsl_jax.localization_metrics import pxap
from wsl_jax.localization_metrics import pxap_histograms
from wsl_jax.losses import multiclass_hinge
from wsl_jax.losses import multilabel_hinge
from wsl_jax.losses import multilabel_soft_margin
from wsl_jax.losses import softmax_cross_entropy
from wsl_jax.metrics import AP_MODES
from wsl_jax.metrics import average_precision
from wsl_jax.metrics import mean_average_precision
from wsl_jax.metrics import per_class_mean_accuracy
from wsl_jax.metrics import top1_accuracy
from wsl_jax.models import BACKBONES
from wsl_jax.models import VGG16
from wsl_jax.models import ResNet
from wsl_jax.models import ResNet18
from wsl_jax.models import ResNet50
from wsl_jax.models import ResNet101
from wsl_jax.models import SmallCNN
from wsl_jax.models import WSLHead
from wsl_jax.models import WSLNet
from wsl_jax.models import build_backbone
from wsl_jax.models import build_model
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
    "BACKBONES",
    "ResNet",
    "ResNet18",
    "ResNet50",
    "ResNet101",
    "SmallCNN",
    "VGG16",
    "WSLHead",
    "WSLNet",
    "build_backbone",
    "build_model",
    "CONVENTIONS",
    "ap_loss_augmented_ranking",
    "RESIZE_METHODS",
    "ap_ranking_loss",
    "boxes_to_pixels",
    "class_maps_to_heatmaps",
    "confusion_matrix",
    "maxboxacc",
    "maxboxacc_hits",
    "mean_iou",
    "normalize_heatmaps",
    "pointing_game",
    "pointing_game_accuracy",
    "pointwise_localization",
    "pointwise_localization_hits",
    "pxap",
    "pxap_histograms",
    "segmentation_from_heatmaps",
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
    "use_recommended_xla_flags",
)
