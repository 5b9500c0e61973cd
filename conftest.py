"""Test-session setup shared by ``tests/`` and the doctests in ``wsl_jax/``.

Multi-device tests run on the CPU with eight virtual devices; the flag must be set
before JAX initialises its backends, which is why it lives here, at the root.
"""
import os

_FLAG = "--xla_force_host_platform_device_count=8"
if _FLAG not in os.environ.get("XLA_FLAGS", ""):
    os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " " + _FLAG).strip()
os.environ.setdefault("JAX_PLATFORMS", "cpu")

# The XLA flags that train.py and the other entry points add (importing wsl_jax adds none), so that
# this process and the train.py subprocesses of the tests compute alike (bitwise-resume tests).
import wsl_jax

wsl_jax.use_recommended_xla_flags()
