"""XLA flags that wsl_jax recommends, applied by its entry points before the XLA backend starts.

Importing wsl_jax leaves ``XLA_FLAGS`` alone. The entry points (``train.py``, ``evaluate.py``, the
experiments and benchmarks that train convolutional networks) call
:func:`use_recommended_xla_flags` first thing; a notebook or script does the same, before anything
starts a JAX backend (the first computation, ``jax.devices()``, ...).

On the CPU this jaxlib routes convolutions through YNNPACK, one fusion per convolution;
``--xla_cpu_experimental_ynn_fusion_type=-individual_convolution`` turns that off, and a
WSLNet-ResNet-50 training step then runs about 1.3× faster here (benchmarks/RESULTS.md). XLA aborts
on a flag it does not know, so the flag is only added for the jaxlib versions it was measured
with, only when the user has not set that flag, and only while no backend has started (an
``XLA_FLAGS`` change after that has no effect). Set ``WSL_JAX_DEFAULT_XLA_FLAGS=0`` to make the
entry points leave ``XLA_FLAGS`` alone.

>>> default_xla_flags("0.10.2")
('--xla_cpu_experimental_ynn_fusion_type=-individual_convolution',)
>>> default_xla_flags("0.4.35")
()
>>> merged_xla_flags("--xla_force_host_platform_device_count=8", jaxlib_version="0.10.2")
'--xla_force_host_platform_device_count=8 --xla_cpu_experimental_ynn_fusion_type=-individual_convolution'
>>> merged_xla_flags("--xla_cpu_experimental_ynn_fusion_type=default", jaxlib_version="0.10.2")
'--xla_cpu_experimental_ynn_fusion_type=default'
"""

from __future__ import annotations

import os
import warnings

_YNN_FLAG = "--xla_cpu_experimental_ynn_fusion_type=-individual_convolution"
_MEASURED_JAXLIB = ((0, 10),)  # (major, minor) releases the flag was measured with.


def default_xla_flags(jaxlib_version: str) -> tuple[str, ...]:
    """The flags wsl_jax adds for this jaxlib version."""
    try:
        major_minor = tuple(int(part) for part in jaxlib_version.split(".")[:2])
    except ValueError:
        return ()
    return (_YNN_FLAG,) if major_minor in _MEASURED_JAXLIB else ()


def merged_xla_flags(current: str, *, jaxlib_version: str) -> str:
    """``current`` plus each default flag whose name the user has not set."""
    flags = current.split()
    for flag in default_xla_flags(jaxlib_version):
        name = flag.split("=")[0]
        if not any(f.split("=")[0] == name for f in flags):
            flags.append(flag)
    return " ".join(flags)


def use_recommended_xla_flags() -> str:
    """Adds wsl_jax's recommended XLA flags to ``os.environ["XLA_FLAGS"]``; returns its new value.

    Call it before JAX starts a backend (XLA reads the variable once, then): at the top of a
    notebook or script, as ``train.py`` does. Flags the user has set win; only flags measured with
    this jaxlib are added (see ``wsl_jax/_xla_flags.py``). Nothing changes, with a
    ``RuntimeWarning``, once a backend has started, and nothing when ``WSL_JAX_DEFAULT_XLA_FLAGS=0``.

    Example (too late here: ``jax.devices()`` has started a backend, so nothing changes):
      >>> import os, jax, wsl_jax
      >>> before, _ = os.environ.get("XLA_FLAGS", ""), jax.devices()
      >>> with warnings.catch_warnings(record=True) as caught:
      ...     flags = wsl_jax.use_recommended_xla_flags()
      >>> flags == before == os.environ.get("XLA_FLAGS", ""), caught[0].category.__name__
      (True, 'RuntimeWarning')
    """
    current = os.environ.get("XLA_FLAGS", "")
    if os.environ.get("WSL_JAX_DEFAULT_XLA_FLAGS", "1") == "0":
        return current
    import jaxlib
    from jax._src import xla_bridge

    if getattr(xla_bridge, "_backends", None):  # A backend has started: flags are read already.
        warnings.warn(
            "use_recommended_xla_flags() was called after JAX started a backend: XLA_FLAGS is "
            "left unchanged; call it before the first JAX computation.",
            RuntimeWarning,
            stacklevel=2,
        )
        return current
    version = getattr(jaxlib, "__version__", None) or getattr(jaxlib.version, "__version__", "")
    merged = merged_xla_flags(current, jaxlib_version=version)
    if merged != current:
        os.environ["XLA_FLAGS"] = merged
    return merged
