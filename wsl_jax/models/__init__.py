"""Flax models: fully convolutional backbones and the WELDON/WILDCAT head (SPEC §A2–A3).

Example:
  >>> from wsl_jax.models import build_model
  >>> build_model("small_cnn", 10, k_max=3, k_min=3).head.num_classes
  10
"""

from wsl_jax.models.backbones import BACKBONES, VGG16, SmallCNN, build_backbone, torch_key_to_flax
from wsl_jax.models.convert import (
    efficientnet_lite_to_flax,
    load_torch_state_dict,
    torchvision_resnet_to_flax,
    wildcat_checkpoint_to_flax,
)
from wsl_jax.models.efficientnet import EfficientNetLite0
from wsl_jax.models.feature_cnn import FeatureCNN
from wsl_jax.models.image_features import pretrained_features
from wsl_jax.models.pretrained import pretrained_variables
from wsl_jax.models.resnet import BasicBlock, Bottleneck, ResNet, ResNet18, ResNet50, ResNet101
from wsl_jax.models.wsl import WSLHead, WSLNet, build_model

__all__ = (
    "BACKBONES",
    "VGG16",
    "BasicBlock",
    "Bottleneck",
    "EfficientNetLite0",
    "FeatureCNN",
    "ResNet",
    "ResNet18",
    "ResNet50",
    "ResNet101",
    "SmallCNN",
    "WSLHead",
    "WSLNet",
    "build_backbone",
    "build_model",
    "efficientnet_lite_to_flax",
    "load_torch_state_dict",
    "pretrained_features",
    "pretrained_variables",
    "torch_key_to_flax",
    "torchvision_resnet_to_flax",
    "wildcat_checkpoint_to_flax",
)
