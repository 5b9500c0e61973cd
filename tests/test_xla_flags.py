"""wsl_jax sets its default XLA flags at import, unless opted out or too late."""

import os
import subprocess
import sys

import pytest

from wsl_jax._xla_flags import _YNN_FLAG, default_xla_flags

PROBE = "import os, wsl_jax; print(os.environ.get('XLA_FLAGS', ''))"


def _flags_seen(code, **env):
    environment = {k: v for k, v in os.environ.items() if k not in ("XLA_FLAGS",)}
    environment.update(env)
    out = subprocess.run([sys.executable, "-c", code], env=environment, capture_output=True,
                         text=True, check=True)
    return out.stdout.strip().splitlines()[-1] if out.stdout.strip() else ""


needs_measured_jaxlib = pytest.mark.skipif(
    not default_xla_flags(__import__("jaxlib").__version__),
    reason="this jaxlib is not one the default flags were measured with (none are set)",
)


@needs_measured_jaxlib
def test_import_adds_the_flag_and_keeps_the_users():
    seen = _flags_seen(PROBE, XLA_FLAGS="--xla_force_host_platform_device_count=2")
    assert seen.split() == ["--xla_force_host_platform_device_count=2", _YNN_FLAG]


@needs_measured_jaxlib
def test_a_user_setting_of_the_same_flag_wins():
    seen = _flags_seen(PROBE, XLA_FLAGS="--xla_cpu_experimental_ynn_fusion_type=default")
    assert seen == "--xla_cpu_experimental_ynn_fusion_type=default"


def test_opt_out():
    assert _flags_seen(PROBE, WSL_JAX_DEFAULT_XLA_FLAGS="0") == ""


def test_nothing_is_changed_once_a_backend_has_started():
    code = "import jax; jax.devices(); " + PROBE
    assert _flags_seen(code) == ""


@needs_measured_jaxlib
def test_the_flag_is_accepted_by_this_xla():
    code = "import wsl_jax, jax, jax.numpy as jnp; print(float(jnp.ones(3).sum()))"
    assert _flags_seen(code) == "3.0"  # XLA aborts on a flag it does not know.
