"""Global-average-pooled features of a (pretrained) backbone for an array of images.

:func:`pretrained_features` resizes each batch to the backbone's input size (bilinear), scales it
as the weights expect (:data:`INPUT_SCALING`), runs the backbone in inference mode inside one jitted
function and averages its last feature map over space: ``(N, num_features)`` float32, e.g. 1280-d
for EfficientNet-Lite0. The last batch is padded to ``batch_size`` so that a single program is
compiled, once per backbone and ``image_size`` (later calls reuse it). With ``variables=None``
the backbone's packaged ImageNet weights are read (:func:`~wsl_jax.models.pretrained_variables`,
the ``pretrained`` extra).

Speed on a shared 2-core x86_64 CPU (EfficientNet-Lite0, batches of 64, 32×32 CIFAR-10 images):
about 21 images/s at ``image_size=224``, 48 at 128, 62 at 96.

Example (all-zero weights, to stay cheap; the default reads the ImageNet ones):
  >>> import jax, numpy as np
  >>> from wsl_jax.models import build_backbone
  >>> module = build_backbone("efficientnet_lite0")
  >>> shapes = jax.eval_shape(module.init, jax.random.key(0), np.zeros((1, 32, 32, 3)))
  >>> variables = jax.tree.map(lambda s: np.zeros(s.shape, s.dtype), shapes)
  >>> images = np.zeros((3, 32, 32, 3), np.uint8)               # NHWC, values in [0, 255]
  >>> pretrained_features(images, variables=variables, image_size=32, batch_size=2,
  ...                     progress=False).shape
  (3, 1280)
"""

from __future__ import annotations

import functools

import jax
import numpy as np
from tqdm.auto import tqdm

from wsl_jax.models.backbones import build_backbone
from wsl_jax.models.efficientnet import INPUT_MEAN, INPUT_STD
from wsl_jax.models.pretrained import pretrained_variables

__all__ = ["INPUT_SCALING", "TORCHVISION_SCALING", "pretrained_features"]

#: ``(mean, std)`` of the torchvision ImageNet weights: ``(x / 255 − mean) / std``.
TORCHVISION_SCALING = ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))
#: Backbone name → the ``(mean, std)`` its ImageNet weights expect, ``(x / 255 − mean) / std``.
INPUT_SCALING = {
    "efficientnet_lite0": (INPUT_MEAN, INPUT_STD),  # (x − 127) / 128
    "resnet18": TORCHVISION_SCALING,
    "resnet50": TORCHVISION_SCALING,
    "resnet101": TORCHVISION_SCALING,
    "vgg16": TORCHVISION_SCALING,
}


def pretrained_features(
    images,
    *,
    backbone: str = "efficientnet_lite0",
    variables=None,
    image_size: int = 224,
    batch_size: int = 64,
    progress: bool = True,
) -> np.ndarray:
    """Spatially averaged last-layer features ``(N, C)`` float32 of ``images``.

    Args:
      images: ``(N, H, W, 3)`` RGB images with values in ``[0, 255]`` (uint8 or float), any
        ``H×W``; a NumPy array (batches are sliced from it, so a memory map works too).
      backbone: a name of :data:`INPUT_SCALING` (``build_backbone(backbone)`` is run).
      variables: the backbone's ``{"params", "batch_stats"}``; ``None``: its packaged ImageNet
        weights (``pretrained_variables(backbone)``).
      image_size: each image is resized (bilinear) to ``image_size × image_size`` first.
      batch_size: images per jitted call.
      progress: show a tqdm progress bar (images).

    Raises:
      ValueError: ``images`` not ``(N, H, W, 3)``; ``backbone`` without an input scaling;
        ``image_size`` or ``batch_size`` not positive.

    >>> pretrained_features(np.zeros((2, 32, 32)), variables={})
    Traceback (most recent call last):
    ...
    ValueError: `images` must be (N, H, W, 3) RGB images, got shape (2, 32, 32).
    """
    if not isinstance(images, np.ndarray):
        images = np.asarray(images)
    if images.ndim != 4 or images.shape[-1] != 3:
        raise ValueError(f"`images` must be (N, H, W, 3) RGB images, got shape {images.shape}.")
    if backbone not in INPUT_SCALING:
        valid = ", ".join(repr(n) for n in INPUT_SCALING)
        raise ValueError(f"`backbone` must be one of {valid}, got {backbone!r}.")
    if image_size < 1 or batch_size < 1:
        raise ValueError(
            f"`image_size` and `batch_size` must be positive, got {image_size} and {batch_size}."
        )
    if variables is None:
        variables = pretrained_variables(backbone)
    features = _jitted_features(backbone, image_size)
    out = []
    bar = tqdm(total=len(images), desc=f"{backbone} features", unit="img", disable=not progress)
    for start in range(0, len(images), batch_size):
        batch = np.asarray(images[start : start + batch_size], np.float32)  # one dtype: one trace
        n = len(batch)
        if n < batch_size:  # One compiled shape: pad the last batch.
            batch = np.concatenate(
                [batch, np.zeros((batch_size - n, *batch.shape[1:]), batch.dtype)]
            )
        out.append(np.asarray(features(variables, batch))[:n])
        bar.update(n)
    bar.close()
    if not out:
        return np.zeros((0, build_backbone(backbone).num_features), np.float32)
    return np.concatenate(out).astype(np.float32)


@functools.cache
def _jitted_features(backbone: str, image_size: int):
    """``features(variables, batch)``, jitted once per backbone and size (later calls reuse it)."""
    module = build_backbone(backbone)
    mean, std = (255.0 * np.asarray(v, np.float32) for v in INPUT_SCALING[backbone])

    @jax.jit
    def features(variables, batch):
        x = jax.image.resize(batch, (batch.shape[0], image_size, image_size, 3), "bilinear")
        maps = module.apply(variables, (x - mean) / std, train=False)
        return maps.mean(axis=(1, 2))

    return features
