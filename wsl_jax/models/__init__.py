"""Flax models: fully convolutional backbones and the WELDON/WILDCAT head (SPEC §A2–A3).

Example:
  >>> from wsl_jax.models import build_model
  >>> build_model("small_cnn", 10, k_max=3, k_min=3).head.num_classes
  10
"""

from wsl_jax.models.backbones import BACKBONES
from wsl_jax.models.backbones import SmallCNN
from wsl_jax.models.backbones import VGG16
from wsl_jax.models.backbones import build_backbone
from wsl_jax.models.backbones import torch_key_to_flax
from wsl_jax.models.convert import efficientnet_lite_to_flax
from wsl_jax.models.convert import load_torch_state_dict
from wsl_jax.models.convert import torchvision_resnet_to_flax
from wsl_jax.models.convert import wildcat_checkpoint_to_flax
from wsl_jax.models.efficientnet import EfficientNetLite0
from wsl_jax.models.feature_cnn import FeatureCNN
from wsl_jax.models.pretrained import pretrained_variables
from wsl_jax.models.resnet import BasicBlock
from wsl_jax.models.resnet import Bottleneck
from wsl_jax.models.resnet import ResNet
from wsl_jax.models.resnet import ResNet18
from wsl_jax.models.resnet import ResNet50
from wsl_jax.models.resnet import ResNet101
from wsl_jax.models.wsl import WSLHead
from wsl_jax.models.wsl import WSLNet
from wsl_jax.models.wsl import build_model

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
    "pretrained_variables",
    "torch_key_to_flax",
    "torchvision_resnet_to_flax",
    "wildcat_checkpoint_to_flax",
)
