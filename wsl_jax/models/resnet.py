"""Fully convolutional ResNet-18/50/101 in the torchvision layout (v1.5), NHWC, without pooling or FC.

Layout: ``conv1`` 7×7/2 → ``bn1`` → ReLU → max-pool 3×3/2 → ``layer1`` … ``layer4``; the first block of
layers 2–4 has stride 2, carried by its 3×3 convolution (torchvision "v1.5"; in the Bottleneck that is
``conv2``). Output stride 32; 2048 channels (Bottleneck) or 512 (BasicBlock).

**Names and the torchvision state dict.** Module names repeat torchvision's, with every integer index
joined to the name before it by ``_`` (``layer1.0`` → ``layer1_0``, ``downsample.0`` → ``downsample_0``);
see :func:`wsl_jax.models.torch_key_to_flax`. So

=====================================  ===============================================================
torchvision key                        Flax variable
=====================================  ===============================================================
``conv1.weight`` (O, I, kh, kw)        ``params/conv1/kernel`` (kh, kw, I, O): transpose ``(2, 3, 1, 0)``
``bn1.weight`` / ``bn1.bias``          ``params/bn1/scale`` / ``params/bn1/bias``
``bn1.running_mean`` / ``running_var`` ``batch_stats/bn1/mean`` / ``batch_stats/bn1/var``
``bn1.num_batches_tracked``            dropped
``layer3.1.conv2.weight``              ``params/layer3_1/conv2/kernel``
``layer2.0.downsample.0.weight``       ``params/layer2_0/downsample_0/kernel`` (1×1 conv)
``layer2.0.downsample.1.*``            ``{params,batch_stats}/layer2_0/downsample_1/*`` (its BatchNorm)
``fc.weight`` / ``fc.bias``            none (the backbone has no classifier)
=====================================  ===============================================================

Example (shapes only; output stride 32):
  >>> import jax, jax.numpy as jnp
  >>> x = jnp.zeros((1, 224, 224, 3))
  >>> variables = jax.eval_shape(ResNet50().init, jax.random.key(0), x)
  >>> jax.eval_shape(ResNet50().apply, variables, x).shape
  (1, 7, 7, 2048)
  >>> sorted(variables["params"])[:4]
  ['bn1', 'conv1', 'layer1_0', 'layer1_1']
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import jax.numpy as jnp
from flax import linen as nn

from wsl_jax.models.layers import batch_norm, check_images, conv

__all__ = ["BasicBlock", "Bottleneck", "ResNet", "ResNet18", "ResNet50", "ResNet101"]

Dtype = Any


class BasicBlock(nn.Module):
    """torchvision's ``BasicBlock``: two 3×3 conv-BN, identity or 1×1 projection shortcut, expansion 1.

    Example:
      >>> import jax, jax.numpy as jnp
      >>> block = BasicBlock(features=16, stride=2)
      >>> y, v = jax.eval_shape(lambda x: block.init_with_output(jax.random.key(0), x), jnp.zeros((1, 8, 8, 4)))
      >>> y.shape, sorted(v["params"])
      ((1, 4, 4, 16), ['bn1', 'bn2', 'conv1', 'conv2', 'downsample_0', 'downsample_1'])
    """

    features: int
    stride: int = 1
    dtype: Dtype = jnp.float32
    expansion = 1

    @nn.compact
    def __call__(self, x, *, train: bool = False):
        out = conv(self.features, 3, stride=self.stride, dtype=self.dtype, name="conv1")(x)
        out = nn.relu(batch_norm(train, dtype=self.dtype, name="bn1")(out))
        out = conv(self.features, 3, dtype=self.dtype, name="conv2")(out)
        out = batch_norm(train, dtype=self.dtype, name="bn2")(out)
        return nn.relu(out + _shortcut(self, x, self.features, train))


class Bottleneck(nn.Module):
    """torchvision's ``Bottleneck`` (v1.5): 1×1 → 3×3 (strided) → 1×1 to ``4·features`` channels.

    Example:
      >>> import jax, jax.numpy as jnp
      >>> block = Bottleneck(features=8, stride=2)
      >>> y, _ = jax.eval_shape(lambda x: block.init_with_output(jax.random.key(0), x), jnp.zeros((1, 8, 8, 4)))
      >>> y.shape
      (1, 4, 4, 32)
    """

    features: int
    stride: int = 1
    dtype: Dtype = jnp.float32
    expansion = 4

    @nn.compact
    def __call__(self, x, *, train: bool = False):
        out = conv(self.features, 1, dtype=self.dtype, name="conv1")(x)
        out = nn.relu(batch_norm(train, dtype=self.dtype, name="bn1")(out))
        out = conv(self.features, 3, stride=self.stride, dtype=self.dtype, name="conv2")(out)
        out = nn.relu(batch_norm(train, dtype=self.dtype, name="bn2")(out))
        out = conv(self.features * 4, 1, dtype=self.dtype, name="conv3")(out)
        out = batch_norm(train, dtype=self.dtype, name="bn3")(out)
        return nn.relu(out + _shortcut(self, x, self.features * 4, train))


def _shortcut(block: nn.Module, x, out_features: int, train: bool):
    """Identity, or torchvision's ``downsample`` (1×1 strided conv + BN) when the shape changes."""
    if block.stride == 1 and x.shape[-1] == out_features:
        return x
    x = conv(out_features, 1, stride=block.stride, dtype=block.dtype, name="downsample_0")(x)
    return batch_norm(train, dtype=block.dtype, name="downsample_1")(x)


_BLOCKS = {"basic": BasicBlock, "bottleneck": Bottleneck}


class ResNet(nn.Module):
    """A fully convolutional ResNet (torchvision layout) returning the ``layer4`` feature map.

    Attributes:
      stage_sizes: the number of blocks of ``layer1`` … ``layer4``.
      block: ``"basic"`` (ResNet-18/34) or ``"bottleneck"`` (ResNet-50/101/152).
      dtype: computation dtype (``jnp.bfloat16`` for mixed precision); parameters are always float32.

    ``__call__(images, *, train=False)`` takes ``(B, H, W, C)`` float images (any ``C``) and returns
    ``(B, ⌈H/32⌉, ⌈W/32⌉, D)`` features (exactly ``H/32`` for multiples of 32). With ``train=True``
    BatchNorm uses batch statistics and updates ``batch_stats``, which must then be mutable.

    Example:
      >>> import jax, jax.numpy as jnp
      >>> model = ResNet(stage_sizes=(1, 1, 1, 1), block="basic")       # a ResNet-10
      >>> y, _ = jax.eval_shape(lambda x: model.init_with_output(jax.random.key(0), x), jnp.zeros((2, 64, 64, 3)))
      >>> y.shape, model.num_features, model.output_stride
      ((2, 2, 2, 512), 512, 32)
    """

    stage_sizes: Sequence[int] = (2, 2, 2, 2)
    block: str = "basic"
    dtype: Dtype = jnp.float32

    output_stride = 32

    @property
    def num_features(self) -> int:
        """The channel count ``D`` of the output feature map."""
        return 512 * self._block_cls().expansion

    def _block_cls(self):
        if self.block not in _BLOCKS:
            raise ValueError(f"block must be one of {tuple(_BLOCKS)}, got {self.block!r}.")
        return _BLOCKS[self.block]

    @nn.compact
    def __call__(self, images, *, train: bool = False):
        x = check_images(images)
        block_cls = self._block_cls()
        if len(self.stage_sizes) != 4 or any(int(n) < 1 for n in self.stage_sizes):
            raise ValueError(
                f"stage_sizes must be four positive block counts, got {self.stage_sizes!r}."
            )
        x = conv(64, 7, stride=2, dtype=self.dtype, name="conv1")(x)
        x = nn.relu(batch_norm(train, dtype=self.dtype, name="bn1")(x))
        x = nn.max_pool(x, (3, 3), strides=(2, 2), padding=((1, 1), (1, 1)))
        for stage, num_blocks in enumerate(self.stage_sizes):
            for index in range(num_blocks):
                stride = 2 if stage > 0 and index == 0 else 1
                x = block_cls(
                    64 * 2**stage, stride=stride, dtype=self.dtype, name=f"layer{stage + 1}_{index}"
                )(x, train=train)
        return x


class ResNet18(ResNet):
    """ResNet-18 (BasicBlock, ``(2, 2, 2, 2)``): 11,176,512 parameters, 512 output channels.

    Example:
      >>> import jax, jax.numpy as jnp
      >>> v = jax.eval_shape(ResNet18().init, jax.random.key(0), jnp.zeros((1, 32, 32, 3)))
      >>> sum(p.size for p in jax.tree.leaves(v["params"]))
      11176512
    """

    stage_sizes: Sequence[int] = (2, 2, 2, 2)
    block: str = "basic"


class ResNet50(ResNet):
    """ResNet-50 (Bottleneck, ``(3, 4, 6, 3)``): 23,508,032 parameters, 2048 output channels.

    Example:
      >>> import jax, jax.numpy as jnp
      >>> y, v = jax.eval_shape(lambda x: ResNet50().init_with_output(jax.random.key(0), x), jnp.zeros((1, 64, 64, 3)))
      >>> y.shape, sum(p.size for p in jax.tree.leaves(v["params"]))
      ((1, 2, 2, 2048), 23508032)
    """

    stage_sizes: Sequence[int] = (3, 4, 6, 3)
    block: str = "bottleneck"


class ResNet101(ResNet):
    """ResNet-101 (Bottleneck, ``(3, 4, 23, 3)``): 42,500,160 parameters, 2048 output channels.

    Example:
      >>> import jax, jax.numpy as jnp
      >>> v = jax.eval_shape(ResNet101().init, jax.random.key(0), jnp.zeros((1, 32, 32, 3)))
      >>> sum(p.size for p in jax.tree.leaves(v["params"]))
      42500160
    """

    stage_sizes: Sequence[int] = (3, 4, 23, 3)
    block: str = "bottleneck"
