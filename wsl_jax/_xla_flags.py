"""XLA flags that wsl_jax sets by default, before the XLA backend starts.

On the CPU this jaxlib routes convolutions through YNNPACK, one fusion per convolution;
``--xla_cpu_experimental_ynn_fusion_type=-individual_convolution`` turns that off, and a
WSLNet-ResNet-50 training step then runs about 1.3× faster here (benchmarks/RESULTS.md). XLA aborts
on a flag it does not know, so the flag is only added for the jaxlib versions it was measured
with, only when the user has not set that flag, and only while no backend has started (an
``XLA_FLAGS`` change after that has no effect). Set ``WSL_JAX_DEFAULT_XLA_FLAGS=0`` to opt out.

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


def apply_default_xla_flags() -> None:
    """Adds the defaults to ``os.environ["XLA_FLAGS"]`` unless opted out or too late."""
    if os.environ.get("WSL_JAX_DEFAULT_XLA_FLAGS", "1") == "0":
        return
    try:
        import jaxlib
        from jax._src import xla_bridge
    except ImportError:
        return
    if getattr(xla_bridge, "_backends", None):  # A backend has started: flags are read already.
        return
    version = getattr(jaxlib, "__version__", None) or getattr(jaxlib.version, "__version__", "")
    merged = merged_xla_flags(os.environ.get("XLA_FLAGS", ""), jaxlib_version=version)
    if merged:
        os.environ["XLA_FLAGS"] = merged
