"""Importing wsl_jax leaves XLA_FLAGS alone; ``wsl_jax.use_recommended_xla_flags()`` (called by the
entry points, or by a notebook) adds the recommended flags unless opted out or too late."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from wsl_jax._xla_flags import _YNN_FLAG, default_xla_flags

PROBE = "import os, wsl_jax; wsl_jax.use_recommended_xla_flags(); print(os.environ.get('XLA_FLAGS', ''))"


def _flags_seen(code, **env):
    environment = {k: v for k, v in os.environ.items() if k not in ("XLA_FLAGS",)}
    environment.update(env)
    out = subprocess.run(
        [sys.executable, "-c", code], env=environment, capture_output=True, text=True, check=True
    )
    return out.stdout.strip().splitlines()[-1] if out.stdout.strip() else ""


ROOT = Path(__file__).resolve().parents[1]

needs_measured_jaxlib = pytest.mark.skipif(
    not default_xla_flags(__import__("jaxlib").__version__),
    reason="this jaxlib is not one the default flags were measured with (none are set)",
)


def test_importing_wsl_jax_leaves_the_environment_unchanged():
    code = (
        "import os; before = dict(os.environ); import wsl_jax, wsl_jax.train, wsl_jax.zsl; "
        "print(dict(os.environ) == before)"
    )
    assert _flags_seen(code, XLA_FLAGS="--xla_force_host_platform_device_count=2") == "True"
    assert _flags_seen(code) == "True"


@needs_measured_jaxlib
def test_the_call_adds_the_flag_and_keeps_the_users():
    seen = _flags_seen(PROBE, XLA_FLAGS="--xla_force_host_platform_device_count=2")
    assert seen.split() == ["--xla_force_host_platform_device_count=2", _YNN_FLAG]


@needs_measured_jaxlib
def test_a_user_setting_of_the_same_flag_wins():
    seen = _flags_seen(PROBE, XLA_FLAGS="--xla_cpu_experimental_ynn_fusion_type=default")
    assert seen == "--xla_cpu_experimental_ynn_fusion_type=default"


def test_opt_out():
    assert _flags_seen(PROBE, WSL_JAX_DEFAULT_XLA_FLAGS="0") == ""


def test_nothing_is_changed_once_a_backend_has_started():
    code = (
        "import os, warnings, jax, wsl_jax; jax.devices(); warnings.simplefilter('error'); "
        "print(repr(os.environ.get('XLA_FLAGS', '')))\n"
        "try:\n    wsl_jax.use_recommended_xla_flags()\n"
        "except RuntimeWarning as w:\n    print('warned', 'before the first JAX computation' in str(w))\n"
        "print(repr(os.environ.get('XLA_FLAGS', '')))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        env={k: v for k, v in os.environ.items() if k != "XLA_FLAGS"},
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split("\n")
    assert out[:3] == ["''", "warned True", "''"]


@needs_measured_jaxlib
def test_the_flag_is_accepted_by_this_xla():
    code = (
        "import wsl_jax; wsl_jax.use_recommended_xla_flags(); import jax.numpy as jnp; "
        "print(float(jnp.ones(3).sum()))"
    )
    assert _flags_seen(code) == "3.0"  # XLA aborts on a flag it does not know.


@needs_measured_jaxlib
@pytest.mark.parametrize("script", ["train.py", "evaluate.py"])
def test_the_entry_points_apply_the_flags(script):
    # Runs the script as __main__ with absl's app.run replaced: what XLA_FLAGS is when main starts.
    code = (
        "import os, runpy; from absl import app; "
        "app.run = lambda main: print(os.environ.get('XLA_FLAGS', '')); "
        f"runpy.run_path({str(ROOT / script)!r}, run_name='__main__')"
    )
    assert _flags_seen(code) == _YNN_FLAG
