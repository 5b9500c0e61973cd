"""Small array helpers shared by the pure-function modules (metrics, losses, ranking, ...)."""

import jax
import jax.numpy as jnp


def is_concrete(*xs) -> bool:
    """True when no argument is a tracer, i.e. value checks can run (outside ``jit``)."""
    return not any(isinstance(x, jax.core.Tracer) for x in xs)


def at_least_float32(x) -> jax.Array:
    """``x`` as an array of at least float32; float64 stays float64 (with ``jax_enable_x64``)."""
    x = jnp.asarray(x)
    if not jnp.issubdtype(x.dtype, jnp.floating) or jnp.finfo(x.dtype).bits < 32:
        x = x.astype(jnp.float32)
    return x
