"""Multi-host training on localhost: two ``train.py`` processes × 4 CPU devices (jax.distributed,
gloo collectives) against one process × 8 devices, resuming, and the failures that must be clear.
"""

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import jax
import numpy as np
import orbax.checkpoint as ocp
import pytest

from tests.train.tiny_run import TINY
from tests.train.tiny_run import tiny_config as make_tiny_config
from wsl_jax.data import prepare_dataset
from wsl_jax.train import distributed, loop

ROOT = Path(__file__).resolve().parents[2]
RUN_TIMEOUT_S = 240  # One two-process run takes about 40 s on two busy cores.


@pytest.fixture(scope="module")
def tiny_config(tmp_path_factory):
    config = make_tiny_config(tmp_path_factory.mktemp("tfds"))
    prepare_dataset(config.data.name, config.data.dir)  # Built once, before the processes start.
    return config


@pytest.fixture(scope="module")
def one_process(tiny_config, tmp_path_factory):
    """The reference: this (pytest) process, 8 devices."""
    workdir = tmp_path_factory.mktemp("one") / "run"
    return workdir, loop.train_and_evaluate(tiny_config, workdir)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _train_py(config, workdir, *flags):
    overrides = [f"--config.{key}={value}" for key, value in TINY.items()]
    return [
        sys.executable,
        "train.py",
        "--config",
        "configs/digits_weldon.py",
        "--workdir",
        str(workdir),
        f"--config.data.dir={config.data.dir}",
        *overrides,
        *flags,
    ]


def _env(devices: int) -> dict:
    return dict(
        os.environ,
        XLA_FLAGS=f"--xla_force_host_platform_device_count={devices}",
        JAX_PLATFORMS="cpu",
        PYTHONUNBUFFERED="1",
    )


def _run_processes(config, workdir, *flags, num_processes=2, timeout_s=RUN_TIMEOUT_S):
    """Starts ``num_processes`` train.py processes on localhost; their return codes and logs.

    Every process is killed when the time is up or the test fails: nothing outlives the call.
    """
    port = _free_port()
    logs = [workdir.parent / f"{workdir.name}.process{i}.log" for i in range(num_processes)]
    procs = []
    try:
        for i, log in enumerate(logs):
            command = _train_py(
                config,
                workdir,
                f"--coordinator_address=127.0.0.1:{port}",
                f"--num_processes={num_processes}",
                f"--process_id={i}",
                "--distributed_timeout=60",
                *flags,
            )
            with open(log, "w") as out:
                procs.append(
                    subprocess.Popen(
                        command,
                        cwd=ROOT,
                        env=_env(8 // num_processes),
                        stdout=out,
                        stderr=subprocess.STDOUT,
                        start_new_session=True,
                    )
                )
        deadline = time.monotonic() + timeout_s
        codes = [p.wait(timeout=max(deadline - time.monotonic(), 1)) for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait()
    return codes, [log.read_text() for log in logs]


def _assert_ok(codes, logs):
    for i, (code, log) in enumerate(zip(codes, logs)):
        assert code == 0, f"process {i} exited with {code}:\n{log[-3000:]}"


def _metrics(workdir):
    return [json.loads(line) for line in (workdir / "metrics.jsonl").read_text().splitlines()]


def _series(workdir, key):
    return [(m["step"], m[key]) for m in _metrics(workdir) if key in m]


def _final_state(workdir, target=None):
    """The state after step 6; one written by 2 processes restores here given a ``target`` tree."""
    path = (workdir / "checkpoints" / "6" / "state").absolute()
    return ocp.StandardCheckpointer().restore(path, target)


def _assert_trees_close(a, b, **tolerance):
    paths_a, leaves_a = zip(*jax.tree_util.tree_leaves_with_path(a))
    _, leaves_b = zip(*jax.tree_util.tree_leaves_with_path(b))
    for path, x, y in zip(paths_a, leaves_a, leaves_b):
        np.testing.assert_allclose(
            np.asarray(x), np.asarray(y), err_msg=jax.tree_util.keystr(path), **tolerance
        )


def _assert_same_run(two, one, target, rtol=1e-5, atol=1e-6):
    summary_two = json.loads((two / "summary.json").read_text())
    summary_one = json.loads((one / "summary.json").read_text())
    assert summary_two["best_step"] == summary_one["best_step"]
    assert summary_two["test_examples"] == summary_one["test_examples"] == 20
    for key in ("best_val_mAP", "test_mAP"):
        assert summary_two[key] == pytest.approx(summary_one[key], abs=1e-6), key
    for key in ("loss", "grad_norm", "val_mAP"):
        steps_two, values_two = zip(*_series(two, key))
        steps_one, values_one = zip(*_series(one, key))
        assert steps_two == steps_one, key  # Written once (process 0), each step once.
        np.testing.assert_allclose(values_two, values_one, rtol=rtol, atol=atol, err_msg=key)
    _assert_trees_close(_final_state(two, target), _final_state(one, target), rtol=rtol, atol=atol)


def test_two_processes_train_like_one_and_resume(tiny_config, one_process, tmp_path):
    """Two processes × 4 devices, stopped after step 4 and resumed: one process × 8 devices' run."""
    one, _ = one_process
    target = _final_state(one)  # On this process's 8 devices.

    # 1. Steps 1-4 on two processes, checkpointed at 2 and 4; the losses of one process so far.
    two = tmp_path / "two"
    _assert_ok(*_run_processes(tiny_config, two, "--stop_after_steps=4"))
    assert not (two / "summary.json").exists()
    assert sorted(int(p.name) for p in (two / "checkpoints").iterdir() if p.name.isdigit()) == [
        2,
        4,
    ]
    assert json.loads((two / "processes.json").read_text()) == {"process_count": 2}
    assert sorted(p.name for p in (two / "checkpoints" / "4" / "data").glob("process_*")) == [
        "process_0-of-2.json",
        "process_1-of-2.json",
    ]  # The data iterator's position, one file per process.
    steps, losses = zip(*_series(two, "loss"))
    assert steps == (1, 2, 3, 4)
    np.testing.assert_allclose(losses, [v for _, v in _series(one, "loss")][:4], rtol=1e-5)

    # 2. Resumed from step 4 on two processes: parameters, losses, mAPs of one process, to rounding.
    codes, logs = _run_processes(tiny_config, two)
    _assert_ok(codes, logs)
    _assert_same_run(two, one, target)
    assert '"test_mAP"' in logs[0] and '"test_mAP"' not in logs[1]  # Process 0 reports.

    # 3. Resuming the two-process run with one process is refused, and the checkpoints are kept.
    with pytest.raises(ValueError, match=r"run with 2 process\(es\) but this run has 1"):
        loop.train_and_evaluate(tiny_config, two)
    assert (two / "checkpoints" / "6" / "state").is_dir()


def test_unreachable_coordinator_is_a_clear_error_within_the_timeout(tiny_config, tmp_path):
    port = _free_port()  # Nobody listens there.
    command = _train_py(
        tiny_config,
        tmp_path / "run",
        f"--coordinator_address=127.0.0.1:{port}",
        "--num_processes=2",
        "--process_id=1",
        "--distributed_timeout=3",
    )
    started = time.monotonic()
    result = subprocess.run(
        command, cwd=ROOT, env=_env(4), capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode != 0
    assert f"coordinator 127.0.0.1:{port} not reachable within 3 s" in result.stderr
    assert time.monotonic() - started < 60  # Start-up plus 3 s, not a hang.


def test_coordinator_alone_aborts_after_the_timeout(tiny_config, tmp_path):
    """Process 0 whose peers never come: JAX aborts it after the timeout, with our explanation."""
    command = _train_py(
        tiny_config,
        tmp_path / "run",
        f"--coordinator_address=127.0.0.1:{_free_port()}",
        "--num_processes=2",
        "--process_id=0",
        "--distributed_timeout=3",
    )
    started = time.monotonic()
    result = subprocess.run(
        command, cwd=ROOT, env=_env(4), capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode != 0
    assert "for all 2 processes to join" in result.stderr
    assert time.monotonic() - started < 60


def test_settings_errors_come_before_jax_starts(monkeypatch):
    def must_not_run(*args, **kwargs):
        raise AssertionError("jax.distributed.initialize should not have been reached")

    monkeypatch.setattr(jax.distributed, "initialize", must_not_run)
    with socket.socket() as busy:
        busy.bind(("", 0))
        busy.listen()
        port = busy.getsockname()[1]
        with pytest.raises(OSError, match=f"cannot serve the coordinator on port {port}"):
            distributed.initialize(f"127.0.0.1:{port}", 2, 0, timeout_s=5, env={})
    with pytest.raises(ValueError, match="process_id must be in \\[0, num_processes=2\\), got 5"):
        distributed.initialize("127.0.0.1:1234", 2, 5, env={})
    with pytest.raises(
        ValueError, match="environment variable JAX_NUM_PROCESSES must be an integer"
    ):
        distributed.initialize(env={"JAX_NUM_PROCESSES": "two"})
    assert distributed.initialize_if_requested(env={}) == (0, 1)  # Nothing asked: one process.
