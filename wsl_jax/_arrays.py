"""Small array helpers shared by the pure-function modules (metrics, losses, ranking, ...)."""

import jax
import jax.numpy as jnp
import numpy as np


def is_concrete(*xs) -> bool:
    """True when no argument is a tracer, i.e. value checks can run (outside ``jit``)."""
    return not any(isinstance(x, jax.core.Tracer) for x in xs)


def at_least_float32(x) -> jax.Array:
    """``x`` as an array of at least float32; float64 stays float64 (with ``jax_enable_x64``)."""
    x = jnp.asarray(x)
    if not jnp.issubdtype(x.dtype, jnp.floating) or jnp.finfo(x.dtype).bits < 32:
        x = x.astype(jnp.float32)
    return x


def check_class_ids(labels, num_classes: int) -> None:
    """Raises ``ValueError`` naming ``labels`` if concrete class ids fall outside ``[0, num_classes)``."""
    if is_concrete(labels) and labels.size:
        values = np.asarray(labels)
        if values.min() < 0 or values.max() >= num_classes:
            raise ValueError(
                f"`labels` must be class ids in [0, {num_classes}), "
                f"got values in [{values.min()}, {values.max()}]."
            )
