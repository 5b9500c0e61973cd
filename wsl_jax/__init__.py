"""wsl_jax: negative-evidence weakly supervised models and zero-shot metric learning in JAX.

The public API is re-exported here explicitly (the list is tested in ``tests/test_public_api.py``).

Example:
  >>> import jax.numpy as jnp, wsl_jax
  >>> wsl_jax.max_min_pool(jnp.array([[3., -1., 2., 0.]]), k_max=2, k_min=1, lam=0.5)
  Array([2.], dtype=float32)
"""
from wsl_jax._xla_flags import use_recommended_xla_flags
from wsl_jax.localization import (
    RESIZE_METHODS,
    boxes_to_pixels,
    class_maps_to_heatmaps,
    normalize_heatmaps,
    segmentation_from_heatmaps,
)
from wsl_jax.localization_metrics import (
    confusion_matrix,
    maxboxacc,
    maxboxacc_hits,
    mean_iou,
    pointing_game,
    pointing_game_accuracy,
    pointwise_localization,
    pointwise_localization_hits,
    pxap,
    pxap_histograms,
)
from wsl_jax.losses import (
    multiclass_hinge,
    multilabel_hinge,
    multilabel_soft_margin,
    softmax_cross_entropy,
)
from wsl_jax.metrics import (
    AP_MODES,
    average_precision,
    mean_average_precision,
    per_class_mean_accuracy,
    top1_accuracy,
)
from wsl_jax.models import (
    BACKBONES,
    VGG16,
    ResNet,
    ResNet18,
    ResNet50,
    ResNet101,
    SmallCNN,
    WSLHead,
    WSLNet,
    build_backbone,
    build_model,
)
from wsl_jax.pooling import CONVENTIONS, class_wise_mean, lse_pool, max_min_pool, resolve_k
from wsl_jax.ranking import ap_loss_augmented_ranking, ap_ranking_loss

__version__ = "0.1.0"

__all__ = (
    "AP_MODES",
    "BACKBONES",
    "CONVENTIONS",
    "RESIZE_METHODS",
    "VGG16",
    "ResNet",
    "ResNet18",
    "ResNet50",
    "ResNet101",
    "SmallCNN",
    "WSLHead",
    "WSLNet",
    "ap_loss_augmented_ranking",
    "ap_ranking_loss",
    "average_precision",
    "boxes_to_pixels",
    "build_backbone",
    "build_model",
    "class_maps_to_heatmaps",
    "class_wise_mean",
    "confusion_matrix",
    "lse_pool",
    "max_min_pool",
    "maxboxacc",
    "maxboxacc_hits",
    "mean_average_precision",
    "mean_iou",
    "multiclass_hinge",
    "multilabel_hinge",
    "multilabel_soft_margin",
    "normalize_heatmaps",
    "per_class_mean_accuracy",
    "pointing_game",
    "pointing_game_accuracy",
    "pointwise_localization",
    "pointwise_localization_hits",
    "pxap",
    "pxap_histograms",
    "resolve_k",
    "segmentation_from_heatmaps",
    "softmax_cross_entropy",
    "top1_accuracy",
    "use_recommended_xla_flags",
)
