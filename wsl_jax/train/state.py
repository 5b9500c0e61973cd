"""Train state: parameters, batch-norm statistics, optimizer state and step, created sharded.

Example (the structure of a small model's state with Adam; shapes only, nothing computed):
  >>> import optax
  >>> from wsl_jax.models import build_model
  >>> model = build_model("small_cnn", 10, widths=(8,))
  >>> state = jax.eval_shape(
  ...     lambda key: create_train_state(model, optax.adam(1e-3), (1, 16, 16, 1), key, data_mesh()),
  ...     jax.random.key(0))
  >>> state.step.shape, sorted(state.params), type(state.opt_state[0]).__name__
  ((), ['backbone', 'head'], 'ScaleByAdamState')
"""

from __future__ import annotations

from typing import Any

import flax.struct
import jax
import jax.numpy as jnp
import optax
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P


def data_mesh(num_devices: int = 0) -> jax.sharding.Mesh:
    """A 1-D ``"data"`` mesh over the first ``num_devices`` devices (0: all of them).

    The axis type is ``Auto``: XLA decides how to partition what is not sharded by hand, so
    batch-wide operations (the AP ranking loss sorts over the batch, zero-shot mining compares every
    example with every class) work on a batch-sharded input; ``Explicit`` axes would refuse them.

    >>> mesh = data_mesh()
    >>> mesh.axis_names, mesh.shape["data"] == jax.device_count()
    (('data',), True)
    """
    n = num_devices or jax.device_count()
    if not 1 <= n <= jax.device_count():
        raise ValueError(
            f"config.train.num_devices must be in [0, {jax.device_count()}], got {num_devices}."
        )
    return jax.make_mesh(
        (n,), ("data",), axis_types=(jax.sharding.AxisType.Auto,), devices=jax.devices()[:n]
    )


@flax.struct.dataclass
class TrainState:
    """Everything a training step updates (a pytree; checkpointed whole).

    Example (usually made by :func:`create_train_state`; ``replace`` returns an updated copy):
      >>> import jax.numpy as jnp
      >>> state = TrainState(step=jnp.zeros((), jnp.int32), params={"w": jnp.ones(3)},
      ...                    batch_stats={}, opt_state=())
      >>> int(state.replace(step=state.step + 1).step), len(jax.tree.leaves(state))
      (1, 2)
    """

    step: jax.Array
    params: Any
    batch_stats: Any
    opt_state: Any


def create_train_state(model, tx: optax.GradientTransformation, image_shape, key, mesh):
    """Initialises the state directly with its sharding (replicated on ``mesh``).

    The shapes come from ``jax.eval_shape``, so nothing is materialised twice (big_vision style).

    Example:
      >>> import jax, optax
      >>> from wsl_jax.models import build_model
      >>> mesh = jax.make_mesh((jax.device_count(),), ("data",))
      >>> model = build_model("small_cnn", 10, widths=(8, 16))
      >>> state = create_train_state(model, optax.sgd(0.1), (1, 32, 32, 1), jax.random.key(0), mesh)
      >>> int(state.step)
      0
    """

    def init(key):
        variables = model.init(key, jnp.zeros(image_shape, jnp.float32), train=False)
        params = variables["params"]
        return TrainState(
            step=jnp.zeros((), jnp.int32),
            params=params,
            batch_stats=variables.get("batch_stats", {}),
            opt_state=tx.init(params),
        )

    abstract = jax.eval_shape(init, key)
    replicated = jax.tree.map(lambda _: NamedSharding(mesh, P()), abstract)
    return jax.jit(init, out_shardings=replicated)(key)
