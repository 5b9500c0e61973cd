"""The WELDON/WILDCAT head and the full weakly supervised network (SPEC §A1–A2).

:class:`WSLHead`: a 1×1 convolution (the *transfer layer*) maps backbone features ``(B, h, w, D)`` to
``C·M`` modality maps, grouped class-major (channel ``c·M + m``); :func:`~wsl_jax.pooling.class_wise_mean`
averages the ``M`` maps of each class into dense class maps ``(B, h, w, C)``; max+min pooling
(:func:`~wsl_jax.pooling.max_min_pool`) over the ``h·w`` regions gives the scores ``(B, C)``.

:class:`WSLNet` composes any backbone with a head; :func:`build_model` builds one by backbone name.
The parameter tree of a ``WSLNet`` is ``{"backbone": …, "head": {"transfer": {"kernel", "bias"}}}``,
so optimiser rules can single out the backbone (the official recipe trains it at 0.1× the lr).
A ``wildcat.pytorch`` checkpoint's ``classifier.0.weight``/``bias`` is the transfer layer.

Example (a WELDON-style model on 64×64 grayscale images, 10 classes):
  >>> import jax, jax.numpy as jnp
  >>> model = build_model("small_cnn", 10, num_maps=4, k_max=0.2, k_min=0.2, lam=0.7)
  >>> images = jnp.zeros((2, 64, 64, 1))
  >>> variables = model.init(jax.random.key(0), images)
  >>> scores, maps = model.apply(variables, images, return_maps=True)
  >>> scores.shape, maps.shape  # scores (B, C), dense class maps (B, H/8, W/8, C)
  ((2, 10), (2, 8, 8, 10))
"""

from __future__ import annotations

from typing import Any

import jax.numpy as jnp
from flax import linen as nn

from wsl_jax.models import layers
from wsl_jax.models.backbones import build_backbone
from wsl_jax.pooling import CONVENTIONS, class_wise_mean, max_min_pool, resolve_k

__all__ = ["WSLHead", "WSLNet", "build_model"]

Dtype = Any
K = int | float


class WSLHead(nn.Module):
    """Transfer layer + class-wise mean + max+min region pooling (WELDON with ``M=1``, WILDCAT with ``M>1``).

    Attributes:
      num_classes: ``C ≥ 1``.
      num_maps: ``M ≥ 1`` modality maps per class (WILDCAT; 8 in the official VOC recipe).
      k_max, k_min: top/bottom region counts (int) or fractions of the ``h·w`` regions (float in (0, 1]);
        ``k_min=0`` drops the negative evidence. Resolved statically from the feature-map size.
      lam: weight ``λ ≥ 0`` of the bottom regions (WILDCAT's ``α``, usually 0.7).
      convention: ``"paper"`` or ``"wildcat"`` (the official PyTorch outputs, with their ½ factor); see
        :mod:`wsl_jax.pooling`.
      dtype: computation dtype of the transfer layer and the class maps; its parameters are float32.

    ``__call__(features, *, return_maps=False)`` returns the scores ``(B, C)``, or ``(scores, maps)`` with
    the class maps ``(B, h, w, C)`` in ``dtype``. Scores are always float32: the maps are pooled in float32,
    so ``max_min_pool(maps.astype(jnp.float32), ...)`` reproduces them exactly.

    Example:
      >>> import jax, jax.numpy as jnp
      >>> head = WSLHead(num_classes=20, num_maps=8, k_max=0.2, k_min=0.2, lam=0.7)
      >>> features = jnp.ones((2, 7, 7, 64))
      >>> params = jax.eval_shape(head.init, jax.random.key(0), features)  # head.init for values
      >>> params["params"]["transfer"]["kernel"].shape       # 1×1 conv to C·M channels
      (1, 1, 64, 160)
      >>> def forward(params, features):
      ...     return head.apply(params, features, return_maps=True)
      >>> scores, maps = jax.eval_shape(forward, params, features)
      >>> scores.shape, maps.shape
      ((2, 20), (2, 7, 7, 20))
    """

    num_classes: int
    num_maps: int = 1
    k_max: K = 1
    k_min: K = 0
    lam: float = 1.0
    convention: str = "paper"
    dtype: Dtype = jnp.float32

    def __post_init__(self):
        layers.check_positive_int(self.num_classes, "num_classes")
        layers.check_positive_int(self.num_maps, "num_maps")
        if self.convention not in CONVENTIONS:
            raise ValueError(f"convention must be one of {CONVENTIONS}, got {self.convention!r}.")
        # Validates the types and ranges of k now; the counts themselves depend on the map size.
        resolve_k(self.k_max, 10**9, convention=self.convention, name="k_max")
        resolve_k(self.k_min, 10**9, convention=self.convention, name="k_min", allow_zero=True)
        if isinstance(self.lam, (int, float)) and not (0 <= self.lam < float("inf")):
            raise ValueError(f"lam must be a finite number >= 0, got {self.lam!r}.")
        super().__post_init__()

    @nn.compact
    def __call__(self, features, *, return_maps: bool = False):
        x = layers.check_images(features, name="features")
        modality_maps = nn.Conv(
            self.num_classes * self.num_maps,
            (1, 1),
            use_bias=True,
            dtype=self.dtype,
            param_dtype=jnp.float32,
            name="transfer",
        )(x)
        maps = class_wise_mean(modality_maps, self.num_maps)
        scores = max_min_pool(
            maps.astype(jnp.float32),
            k_max=self.k_max,
            k_min=self.k_min,
            lam=self.lam,
            axis=(1, 2),
            convention=self.convention,
        )
        return (scores, maps) if return_maps else scores


class WSLNet(nn.Module):
    """A backbone followed by a :class:`WSLHead`: images ``(B, H, W, C_in)`` → scores ``(B, C)``.

    Attributes:
      backbone: any Flax module mapping ``(images, *, train)`` to a ``(B, h, w, D)`` feature map, e.g.
        one from :func:`~wsl_jax.models.build_backbone`.
      head: the :class:`WSLHead`.

    ``__call__(images, *, train=False, return_maps=False)``: ``train`` switches the backbone's BatchNorm to
    batch statistics (``apply(..., mutable=["batch_stats"])``); ``return_maps`` also returns the class
    maps ``(B, h, w, C)`` at the feature resolution (``h ≈ H / output_stride``).

    Example:
      >>> import jax, jax.numpy as jnp
      >>> from wsl_jax.models import SmallCNN
      >>> net = WSLNet(SmallCNN(widths=(8, 16)), WSLHead(num_classes=10, k_max=2, k_min=2))
      >>> x = jnp.zeros((4, 32, 32, 1))
      >>> variables = jax.eval_shape(net.init, jax.random.key(0), x)   # shapes only; net.init for values
      >>> sorted(variables["params"])
      ['backbone', 'head']
      >>> def train_forward(variables, x):
      ...   return net.apply(variables, x, train=True, return_maps=True, mutable=["batch_stats"])
      >>> (scores, maps), updates = jax.eval_shape(train_forward, variables, x)
      >>> scores.shape, maps.shape
      ((4, 10), (4, 8, 8, 10))
    """

    backbone: nn.Module
    head: WSLHead

    @property
    def output_stride(self) -> int:
        """The backbone's output stride (image pixels per class-map cell)."""
        return self.backbone.output_stride

    @nn.compact
    def __call__(self, images, *, train: bool = False, return_maps: bool = False):
        x = layers.check_images(images)
        return self.head(self.backbone(x, train=train), return_maps=return_maps)


def build_model(
    name: str,
    num_classes: int,
    *,
    num_maps: int = 1,
    k_max: K = 1,
    k_min: K = 0,
    lam: float = 1.0,
    convention: str = "paper",
    dtype: Dtype = jnp.float32,
    **backbone_kwargs,
) -> WSLNet:
    """Builds a :class:`WSLNet` from a backbone name (``"small_cnn"``, ``"resnet18"``, ``"resnet50"``,
    ``"resnet101"``, ``"vgg16"``) and the head's settings; ``dtype`` applies to both parts, other keyword
    arguments go to the backbone. Raises ``ValueError`` listing the valid names for an unknown one.

    Example:
      >>> net = build_model("resnet101", 20, num_maps=8, k_max=0.2, k_min=0.2, lam=0.7)
      >>> type(net.backbone).__name__, net.head.num_maps, net.output_stride
      ('ResNet101', 8, 32)
      >>> build_model("small_cnn", 10, widths=(8, 16)).backbone.widths
      (8, 16)
      >>> build_model("resnet", 10)
      Traceback (most recent call last):
      ...
      ValueError: unknown backbone 'resnet'; valid names: 'small_cnn', 'resnet18', 'resnet50', 'resnet101', 'vgg16', 'efficientnet_lite0'.
    """
    backbone = build_backbone(name, dtype=dtype, **backbone_kwargs)
    head = WSLHead(
        num_classes=num_classes,
        num_maps=num_maps,
        k_max=k_max,
        k_min=k_min,
        lam=lam,
        convention=convention,
        dtype=dtype,
    )
    return WSLNet(backbone=backbone, head=head)
