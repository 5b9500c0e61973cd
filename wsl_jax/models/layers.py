"""Shared building blocks of the backbones: input checks, initialisers, conv and BatchNorm factories.

Every convolution and BatchNorm of :mod:`wsl_jax.models` is made here, so that the numerics match
torchvision: BatchNorm momentum 0.1 in PyTorch terms (``momentum=0.9`` in Flax) and ``eps=1e-5``;
convolutions initialised He-normal with ``fan_out`` (torchvision's ``kaiming_normal_(mode="fan_out")``);
explicit symmetric padding, as PyTorch pads (``"SAME"`` pads a stride-2 layer asymmetrically).
Computation runs in ``dtype`` (e.g. ``jnp.bfloat16``) while parameters stay ``float32``.

Example:
  >>> import jax, jax.numpy as jnp
  >>> layer = conv(8, 3, stride=2)  # 3×3, stride 2, symmetric padding 1, no bias
  >>> variables = layer.init(jax.random.key(0), jnp.zeros((1, 16, 16, 4)))
  >>> layer.apply(variables, jnp.zeros((1, 16, 16, 4))).shape, variables["params"]["kernel"].shape
  ((1, 8, 8, 8), (3, 3, 4, 8))
"""

from __future__ import annotations

import numbers
from typing import Any

import jax
import jax.numpy as jnp
from flax import linen as nn

__all__ = ["batch_norm", "check_images", "check_positive_int", "conv", "he_normal_fan_out"]

Dtype = Any

#: torchvision's ``kaiming_normal_(w, mode="fan_out", nonlinearity="relu")``.
he_normal_fan_out = nn.initializers.variance_scaling(2.0, "fan_out", "normal")


def check_images(x, name: str = "images") -> jax.Array:
    """Checks that ``x`` is a 4-D NHWC float array and returns it as a JAX array.

    Example:
      >>> import jax.numpy as jnp
      >>> check_images(jnp.zeros((2, 8, 8, 3))).shape
      (2, 8, 8, 3)
      >>> check_images(jnp.zeros((8, 8, 3)))
      Traceback (most recent call last):
      ...
      ValueError: images must be a 4-D NHWC array of shape (batch, height, width, channels), got shape (8, 8, 3).
    """
    x = jnp.asarray(x)
    if x.ndim != 4:
        raise ValueError(
            f"{name} must be a 4-D NHWC array of shape (batch, height, width, channels), "
            f"got shape {tuple(x.shape)}."
        )
    if not jnp.issubdtype(x.dtype, jnp.floating):
        raise TypeError(
            f"{name} must be a floating-point array (normalise images before the model), "
            f"got dtype {x.dtype}."
        )
    if any(s == 0 for s in x.shape):
        raise ValueError(f"{name} has an empty dimension: shape {tuple(x.shape)}.")
    return x


def check_positive_int(value, name: str) -> int:
    """Returns ``value`` as an int if it is an integer ``>= 1`` (bools rejected), else raises.

    >>> check_positive_int(3, "num_maps")
    3
    >>> check_positive_int(0, "num_maps")
    Traceback (most recent call last):
    ...
    ValueError: num_maps must be a positive int (>= 1), got 0.
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be a positive int, got {value!r}.")
    if value < 1:
        raise ValueError(f"{name} must be a positive int (>= 1), got {value!r}.")
    return int(value)


def conv(
    features: int,
    kernel: int,
    *,
    stride: int = 1,
    use_bias: bool = False,
    dtype: Dtype = jnp.float32,
    name: str | None = None,
) -> nn.Conv:
    """A square convolution with PyTorch's symmetric padding ``kernel // 2``.

    Example:
      >>> import jax, jax.numpy as jnp
      >>> layer = conv(8, 3, stride=2)
      >>> y, _ = jax.eval_shape(lambda x: layer.init_with_output(jax.random.key(0), x), jnp.zeros((1, 9, 9, 3)))
      >>> y.shape                                  # floor((9 + 2 - 3) / 2) + 1, as torch
      (1, 5, 5, 8)
    """
    pad = kernel // 2
    return nn.Conv(
        features,
        (kernel, kernel),
        strides=(stride, stride),
        padding=((pad, pad), (pad, pad)),
        use_bias=use_bias,
        dtype=dtype,
        param_dtype=jnp.float32,
        kernel_init=he_normal_fan_out,
        name=name,
    )


def batch_norm(train: bool, *, dtype: Dtype = jnp.float32, name: str | None = None) -> nn.BatchNorm:
    """BatchNorm as torch's ``BatchNorm2d`` defaults: batch statistics in training, running ones in eval.

    ``train=True`` normalises with the batch statistics and updates ``batch_stats`` (pass
    ``mutable=["batch_stats"]`` to ``apply``); ``train=False`` uses the stored running averages. Statistics
    are reduced in float32 whatever ``dtype`` is. One difference from PyTorch, in training only: the
    running variance is updated with the biased batch variance (PyTorch uses the unbiased one).

    Example:
      >>> import jax, jax.numpy as jnp
      >>> bn = batch_norm(train=False)
      >>> variables = bn.init(jax.random.key(0), jnp.ones((2, 4, 4, 3)))
      >>> sorted(variables), sorted(variables["batch_stats"])
      (['batch_stats', 'params'], ['mean', 'var'])
    """
    return nn.BatchNorm(
        use_running_average=not train,
        momentum=0.9,
        epsilon=1e-5,
        dtype=dtype,
        param_dtype=jnp.float32,
        name=name,
    )
