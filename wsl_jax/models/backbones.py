"""Fully convolutional NHWC backbones returning the last feature map ``(B, h, w, D)`` (SPEC §A3).

* :class:`SmallCNN` — conv-BN-ReLU stages with 2×2 max-pooling; trains on CPU in minutes.
* :class:`ResNet18`, :class:`ResNet50`, :class:`ResNet101` — torchvision layout (see
  :mod:`wsl_jax.models.resnet`).
* :class:`VGG16` — the 13 conv layers of torchvision's ``vgg16`` (``vgg16_bn`` with ``use_bn=True``).
* :class:`~wsl_jax.models.EfficientNetLite0` — ``"efficientnet_lite0"`` (see
  :mod:`wsl_jax.models.efficientnet`; ImageNet weights through :func:`wsl_jax.models.pretrained_variables`).

All take ``__call__(images, *, train=False)``; BatchNorm uses batch statistics and updates the
``batch_stats`` collection only when ``train=True`` (call ``apply(..., mutable=["batch_stats"])``), and the
stored running averages otherwise. ``dtype=jnp.bfloat16`` computes in bfloat16 with float32 parameters.
Each backbone exposes ``num_features`` (``D``) and ``output_stride``.

**torchvision names.** Module names repeat the torchvision state-dict keys with each integer index
joined to the preceding name by ``_``: :func:`torch_key_to_flax` is the whole rule.

Example (a backbone by name; shapes only, nothing is computed):
  >>> import jax, jax.numpy as jnp
  >>> backbone = build_backbone("small_cnn", widths=(8, 16))
  >>> x = jnp.zeros((2, 32, 32, 3))
  >>> variables = jax.eval_shape(backbone.init, jax.random.key(0), x)
  >>> jax.eval_shape(backbone.apply, variables, x).shape, backbone.output_stride  # (B, H/4, W/4, D)
  ((2, 8, 8, 16), 4)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import jax.numpy as jnp
from flax import linen as nn

from wsl_jax.models import layers
from wsl_jax.models.efficientnet import EfficientNetLite0
from wsl_jax.models.resnet import BasicBlock, Bottleneck, ResNet, ResNet18, ResNet50, ResNet101

__all__ = [
    "BACKBONES",
    "VGG16",
    "BasicBlock",
    "Bottleneck",
    "ResNet",
    "ResNet18",
    "ResNet50",
    "ResNet101",
    "SmallCNN",
    "build_backbone",
    "torch_key_to_flax",
]

Dtype = Any


class SmallCNN(nn.Module):
    """A small fully convolutional CNN: ``len(widths)`` stages of conv-BN-ReLU blocks + 2×2 max-pool.

    Attributes:
      widths: channels of each stage; the output stride is ``2 ** len(widths)`` (8 by default).
      convs_per_stage: 3×3 conv-BN-ReLU blocks per stage.
      dtype: computation dtype; parameters are float32.

    Variable names are ``stage{s}_conv{j}`` and ``stage{s}_bn{j}`` (1-based). Any number of input
    channels works (grayscale or RGB).

    Example:
      >>> import jax, jax.numpy as jnp
      >>> model = SmallCNN()
      >>> x = jnp.zeros((2, 64, 64, 1))
      >>> variables = jax.eval_shape(model.init, jax.random.key(0), x)  # shapes only; model.init for values
      >>> def forward(variables, x):   # eval: running statistics, nothing mutable
      ...   return model.apply(variables, x)
      >>> def train_forward(variables, x):   # train: batch statistics, running ones updated
      ...   return model.apply(variables, x, train=True, mutable=["batch_stats"])
      >>> jax.eval_shape(forward, variables, x).shape
      (2, 8, 8, 64)
      >>> y, updates = jax.eval_shape(train_forward, variables, x)
      >>> sorted(updates)
      ['batch_stats']
    """

    widths: Sequence[int] = (16, 32, 64)
    convs_per_stage: int = 2
    dtype: Dtype = jnp.float32

    @property
    def output_stride(self) -> int:
        """The ratio of input to output spatial size."""
        return 2 ** len(self.widths)

    @property
    def num_features(self) -> int:
        """The channel count ``D`` of the output feature map."""
        return int(self.widths[-1])

    @nn.compact
    def __call__(self, images, *, train: bool = False):
        x = layers.check_images(images)
        if not self.widths:
            raise ValueError("widths must name at least one stage.")
        layers.check_positive_int(self.convs_per_stage, "convs_per_stage")
        _check_min_size(x, self.output_stride, type(self).__name__)
        for s, width in enumerate(self.widths, start=1):
            for j in range(1, self.convs_per_stage + 1):
                x = layers.conv(
                    layers.check_positive_int(width, "widths"),
                    3,
                    dtype=self.dtype,
                    name=f"stage{s}_conv{j}",
                )(x)
                x = nn.relu(layers.batch_norm(train, dtype=self.dtype, name=f"stage{s}_bn{j}")(x))
            x = nn.max_pool(x, (2, 2), strides=(2, 2))
        return x


_VGG16_CFG = (
    64,
    64,
    "M",
    128,
    128,
    "M",
    256,
    256,
    256,
    "M",
    512,
    512,
    512,
    "M",
    512,
    512,
    512,
    "M",
)


class VGG16(nn.Module):
    """The convolutional part of VGG-16 (torchvision ``vgg16.features``), NHWC, ReLU'd conv5_3 output.

    Attributes:
      last_pool: keep the fifth max-pool (output stride 32); ``False`` stops at conv5_3 + ReLU
        (output stride 16, a finer map for localization).
      use_bn: BatchNorm after each conv, as torchvision's ``vgg16_bn``.
      dtype: computation dtype; parameters are float32.

    Layer ``i`` of torchvision's ``features`` Sequential is the Flax module ``features_{i}``: convs are
    ``features_0, features_2, features_5, …, features_28`` (with ``use_bn``: convs ``features_0, 3, 7, …``
    and their BatchNorms ``features_1, 4, 8, …``). The classifier is not included. Height and width
    must be at least ``output_stride``.

    Example:
      >>> import jax, jax.numpy as jnp
      >>> y, v = jax.eval_shape(lambda x: VGG16().init_with_output(jax.random.key(0), x), jnp.zeros((1, 64, 64, 3)))
      >>> y.shape, sum(p.size for p in jax.tree.leaves(v))    # torchvision: 14,714,688
      ((1, 2, 2, 512), 14714688)
      >>> VGG16(last_pool=False).output_stride
      16
    """

    last_pool: bool = True
    use_bn: bool = False
    dtype: Dtype = jnp.float32

    num_features = 512

    @property
    def output_stride(self) -> int:
        """The ratio of input to output spatial size."""
        return 32 if self.last_pool else 16

    @nn.compact
    def __call__(self, images, *, train: bool = False):
        x = layers.check_images(images)
        _check_min_size(x, self.output_stride, type(self).__name__)
        index = 0
        for i, item in enumerate(_VGG16_CFG):
            if item == "M":
                if i < len(_VGG16_CFG) - 1 or self.last_pool:
                    x = nn.max_pool(x, (2, 2), strides=(2, 2))
                index += 1
                continue
            x = layers.conv(item, 3, use_bias=True, dtype=self.dtype, name=f"features_{index}")(x)
            if self.use_bn:
                x = layers.batch_norm(train, dtype=self.dtype, name=f"features_{index + 1}")(x)
            x = nn.relu(x)
            index += 3 if self.use_bn else 2
        return x


def _check_min_size(x, stride: int, name: str) -> None:
    if x.shape[1] < stride or x.shape[2] < stride:
        raise ValueError(
            f"{name} needs images of at least {stride}×{stride} pixels (its output stride), "
            f"got height×width {x.shape[1]}×{x.shape[2]}."
        )


#: Backbone names accepted by :func:`build_backbone` and :func:`wsl_jax.models.build_model`.
BACKBONES = {
    "small_cnn": SmallCNN,
    "resnet18": ResNet18,
    "resnet50": ResNet50,
    "resnet101": ResNet101,
    "vgg16": VGG16,
    "efficientnet_lite0": EfficientNetLite0,
}


def build_backbone(name: str, **kwargs) -> nn.Module:
    """Builds a backbone by name (see ``BACKBONES``); ``kwargs`` go to its constructor.

    Example:
      >>> import jax.numpy as jnp
      >>> build_backbone("resnet50", dtype=jnp.bfloat16)
      ResNet50(...)
      >>> build_backbone("alexnet")
      Traceback (most recent call last):
      ...
      ValueError: unknown backbone 'alexnet'; valid names: 'small_cnn', 'resnet18', 'resnet50', 'resnet101', 'vgg16', 'efficientnet_lite0'.
    """
    if name not in BACKBONES:
        valid = ", ".join(repr(n) for n in BACKBONES)
        raise ValueError(f"unknown backbone {name!r}; valid names: {valid}.")
    return BACKBONES[name](**kwargs)


def torch_key_to_flax(key: str, ndim: int) -> tuple[str, tuple[str, ...]] | None:
    """Maps a torchvision ResNet/VGG state-dict key to the ``(collection, path)`` of its Flax variable.

    The rule: split on ``.`` and join every integer index to the name before it with ``_``. The leaf
    ``weight`` is a conv ``kernel`` when the tensor is 4-D (transpose it ``(2, 3, 1, 0)``, OIHW → HWIO)
    and a BatchNorm ``scale`` when it is 1-D; ``bias`` stays ``bias``; ``running_mean``/``running_var``
    go to the ``batch_stats`` collection as ``mean``/``var``. ``num_batches_tracked`` and the classifier
    (``fc.*``, ``classifier.*``) have no counterpart in a backbone: ``None``.

    Args:
      key: a state-dict key such as ``"layer1.0.conv1.weight"``.
      ndim: the rank of the tensor stored under ``key``.

    Example:
      >>> torch_key_to_flax("layer1.0.conv1.weight", 4)
      ('params', ('layer1_0', 'conv1', 'kernel'))
      >>> torch_key_to_flax("layer2.0.downsample.1.weight", 1)
      ('params', ('layer2_0', 'downsample_1', 'scale'))
      >>> torch_key_to_flax("bn1.running_var", 1)
      ('batch_stats', ('bn1', 'var'))
      >>> torch_key_to_flax("features.28.bias", 1)
      ('params', ('features_28', 'bias'))
      >>> torch_key_to_flax("fc.weight", 2) is None
      True
    """
    parts = key.split(".")
    if parts[0] in ("fc", "classifier") or parts[-1] == "num_batches_tracked":
        return None
    names: list[str] = []
    for part in parts[:-1]:
        if part.isdigit() and names:
            names[-1] = f"{names[-1]}_{part}"
        else:
            names.append(part)
    leaf = parts[-1]
    if leaf in ("running_mean", "running_var"):
        return "batch_stats", (*names, leaf[len("running_") :])
    if leaf == "weight":
        if ndim not in (1, 4):
            raise ValueError(
                f"{key}: expected a 4-D conv weight or a 1-D BatchNorm weight, got ndim={ndim}."
            )
        leaf = "kernel" if ndim == 4 else "scale"
    return "params", (*names, leaf)
