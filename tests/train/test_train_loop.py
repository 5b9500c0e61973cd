"""End-to-end tests of train_and_evaluate on the tiny cluttered_digits config (8 CPU devices)."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import jax
import numpy as np
import orbax.checkpoint as ocp
import pytest
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from tests.train.tiny_run import TINY
from tests.train.tiny_run import tiny_config as make_tiny_config
from wsl_jax.train import evaluation, loop

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def tiny_config(tmp_path_factory):
    config = make_tiny_config(tmp_path_factory.mktemp("tfds"))
    return config


def _losses(workdir):
    lines = [json.loads(line) for line in (workdir / "metrics.jsonl").read_text().splitlines()]
    return [line["loss"] for line in lines if "loss" in line]


@pytest.fixture(scope="module")
def trained(tiny_config, tmp_path_factory):
    workdir = tmp_path_factory.mktemp("run") / "full"
    return workdir, loop.train_and_evaluate(tiny_config, workdir)


def _final_params(workdir):
    restored = ocp.StandardCheckpointer().restore(
        (workdir / "checkpoints" / "6" / "state").absolute()
    )
    return restored["params"]


def test_trains_evaluates_and_resumes_bitwise(tiny_config, trained, tmp_path, monkeypatch):
    full, summary = trained
    assert 0.0 <= summary["test_mAP"] <= 1.0 and summary["test_examples"] == 20
    assert summary["best_step"] in (3, 6)  # Selected on validation.
    lines = [json.loads(l) for l in (full / "metrics.jsonl").read_text().splitlines()]
    assert [l["step"] for l in lines if "loss" in l] == [1, 2, 3, 4, 5, 6]
    assert all(np.isfinite(l["loss"]) for l in lines if "loss" in l)
    (_,) = (full / "tensorboard").iterdir()  # The same scalars for TensorBoard, in one file.
    accumulator = EventAccumulator(str(full / "tensorboard"))
    accumulator.Reload()
    assert [e.step for e in accumulator.Scalars("loss")] == [1, 2, 3, 4, 5, 6]

    # A run that dies in step 6, after logging step 5 (checkpoints at 2 and 4), and is started again.
    real_make_train_step = loop.make_train_step

    def crashing_make_train_step(*args):
        step_fn, calls = real_make_train_step(*args), [0]

        def step(state, batch):
            calls[0] += 1
            if calls[0] == 6:
                raise KeyboardInterrupt("simulated crash")
            return step_fn(state, batch)

        return step

    monkeypatch.setattr(loop, "make_train_step", crashing_make_train_step)
    with pytest.raises(KeyboardInterrupt):
        loop.train_and_evaluate(tiny_config, tmp_path / "resumed")
    monkeypatch.setattr(loop, "make_train_step", real_make_train_step)
    loop.train_and_evaluate(tiny_config, tmp_path / "resumed")
    resumed_steps = [
        json.loads(l)["step"]
        for l in (tmp_path / "resumed" / "metrics.jsonl").read_text().splitlines()
        if "loss" in json.loads(l)
    ]
    assert resumed_steps == [1, 2, 3, 4, 5, 6]  # Step 5 is not logged twice: resumed from 4.
    accumulator = EventAccumulator(str(tmp_path / "resumed" / "tensorboard"))
    accumulator.Reload()  # Two event files; TensorBoard drops the first one's step 5.
    assert [e.step for e in accumulator.Scalars("loss")] == [1, 2, 3, 4, 5, 6]
    jax.tree.map(
        np.testing.assert_array_equal, _final_params(full), _final_params(tmp_path / "resumed")
    )


def test_workdir_of_another_config_is_refused(tiny_config, tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"seed": 123}))
    with pytest.raises(ValueError, match="different config"):
        loop.train_and_evaluate(tiny_config, tmp_path)


def test_batch_size_must_divide_over_devices(tiny_config, tmp_path):
    config = tiny_config.copy_and_resolve_references()
    config.train.batch_size = 12  # 8 devices in tests.
    with pytest.raises(ValueError, match="divisible by the number of devices"):
        loop.train_and_evaluate(config, tmp_path)


def test_evaluate_workdir_reports_localization_and_writes_overlays(trained):
    workdir, summary = trained
    results = evaluation.evaluate_workdir(workdir, num_overlays=2)
    assert results["test"]["mAP"] == pytest.approx(summary["test_mAP"], abs=1e-6)
    for split in ("validation", "test"):
        r = results[split]
        assert r["examples"] == 20
        assert 0.0 <= r["pointing_game"]["mean_over_classes"] <= 1.0
        assert 0.0 <= r["segmentation"]["mIoU"] <= 1.0
    # The background threshold is chosen on validation and reused on test.
    assert (
        results["test"]["segmentation"]["background_threshold"]
        == results["validation"]["segmentation"]["background_threshold"]
    )
    pngs = sorted((workdir / "overlays").glob("*.png"))
    assert len(pngs) == 2 and all(p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for p in pngs)
    assert json.loads((workdir / "eval.json").read_text())["test"]["mAP"] == results["test"]["mAP"]


def test_evaluate_needs_a_training_workdir(tmp_path):
    with pytest.raises(FileNotFoundError, match="config.json"):
        evaluation.evaluate_workdir(tmp_path)


def test_one_device_gives_the_same_loss_curve_as_eight(tiny_config, trained, tmp_path):
    """train.py in a subprocess with a single CPU device against the in-process 8-device run."""
    workdir, _ = trained
    flags = [f"--config.{key}={value}" for key, value in TINY.items()]
    env = dict(
        os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=1", JAX_PLATFORMS="cpu"
    )
    subprocess.run(
        [
            sys.executable,
            "train.py",
            "--config",
            "configs/digits_weldon.py",
            "--workdir",
            str(tmp_path / "one"),
            f"--config.data.dir={tiny_config.data.dir}",
            *flags,
        ],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
    )
    config = json.loads((tmp_path / "one" / "config.json").read_text())
    assert config["train"]["batch_size"] == 8
    np.testing.assert_allclose(_losses(tmp_path / "one"), _losses(workdir), rtol=1e-4)


def test_corrupt_latest_checkpoint_falls_back_to_the_previous(tiny_config, trained, tmp_path):
    workdir, _ = trained
    run = tmp_path / "run"
    shutil.copytree(workdir, run)
    shutil.rmtree(run / "overlays", ignore_errors=True)
    for f in (run / "checkpoints" / "6" / "state").rglob("*"):
        if f.is_file():
            f.write_bytes(b"garbage")  # A truncated or corrupt save.
    with pytest.warns(UserWarning, match="unreadable"):
        loop.train_and_evaluate(tiny_config, run)
    jax.tree.map(np.testing.assert_array_equal, _final_params(workdir), _final_params(run))


def test_non_finite_loss_stops_with_a_clear_error(tiny_config, tmp_path):
    config = tiny_config.copy_and_resolve_references()
    config.optimizer.name = "sgd"
    config.optimizer.learning_rate = 1e30
    config.optimizer.warmup_steps = 0
    with pytest.raises(FloatingPointError, match="non-finite loss"):
        loop.train_and_evaluate(config, tmp_path)


def test_no_recompilation_after_the_first_step(tiny_config, tmp_path, monkeypatch):
    steps = []
    real = loop.make_train_step

    def recording(*args):
        steps.append(real(*args))
        return steps[-1]

    monkeypatch.setattr(loop, "make_train_step", recording)
    loop.train_and_evaluate(tiny_config, tmp_path)
    assert steps[0]._cache_size() == 1


KILLING_DRIVER = """
import os, runpy, signal, sys
from wsl_jax.train import loop

kill_at, real = int(os.environ["KILL_AT_STEP"]), loop.make_train_step


def killing_make_train_step(*args):
    step_fn, calls = real(*args), [0]

    def step(state, batch):
        calls[0] += 1
        if calls[0] == kill_at:
            os.kill(os.getpid(), signal.SIGKILL)  # No cleanup, async checkpoint writes cut short.
        return step_fn(state, batch)

    return step


loop.make_train_step = killing_make_train_step
sys.argv = ["train.py", *sys.argv[1:]]
runpy.run_path("train.py", run_name="__main__")
"""


def _train_flags(tiny_config, workdir):
    return [
        "--config",
        "configs/digits_weldon.py",
        "--workdir",
        str(workdir),
        f"--config.data.dir={tiny_config.data.dir}",
        *[f"--config.{key}={value}" for key, value in TINY.items()],
    ]


def test_sigkilled_run_resumes_to_bitwise_equal_parameters(tiny_config, trained, tmp_path):
    """train.py in a subprocess, SIGKILLed at a random step, then resumed from its workdir."""
    full, summary = trained
    kill_at = int(np.random.default_rng().integers(2, 7))  # Killed while running step 2 … 6.
    killed = subprocess.run(
        [sys.executable, "-c", KILLING_DRIVER, *_train_flags(tiny_config, tmp_path / "run")],
        cwd=ROOT,
        env=dict(os.environ, KILL_AT_STEP=str(kill_at)),
        capture_output=True,
        text=True,
        check=False,
    )
    assert killed.returncode == -9, (kill_at, killed.stderr[-2000:])
    assert not (tmp_path / "run" / "summary.json").exists()

    resumed = loop.train_and_evaluate(tiny_config, tmp_path / "run")
    jax.tree.map(
        np.testing.assert_array_equal, _final_params(full), _final_params(tmp_path / "run")
    )
    assert resumed == summary, f"killed at step {kill_at}"


def test_same_config_and_seed_give_bitwise_identical_runs(tiny_config, trained, tmp_path):
    full, summary = trained
    again = loop.train_and_evaluate(tiny_config, tmp_path / "again")
    assert again == summary
    jax.tree.map(
        np.testing.assert_array_equal, _final_params(full), _final_params(tmp_path / "again")
    )
    assert _losses(tmp_path / "again") == _losses(full)  # Exactly, not to a tolerance.


def test_unknown_config_key_is_refused_by_train_py(tiny_config, tmp_path):
    out = subprocess.run(
        [
            sys.executable,
            "train.py",
            *_train_flags(tiny_config, tmp_path / "run"),
            "--config.train.stepz=10",
        ],
        cwd=ROOT,
        check=False,
        capture_output=True,
        text=True,
    )
    assert out.returncode != 0
    assert "stepz" in out.stderr
    assert not (tmp_path / "run").exists()  # Refused before anything is written.


def test_unknown_data_set_is_a_clear_error(tiny_config, tmp_path):
    config = tiny_config.copy_and_resolve_references()
    config.data.name = "cluttered_digitz"
    with pytest.raises(ValueError, match="data.name='cluttered_digitz' is not a known data set"):
        loop.train_and_evaluate(config, tmp_path)


def test_missing_image_folder_is_a_clear_error(tiny_config, tmp_path):
    config = tiny_config.copy_and_resolve_references()
    config.data.name = "labeled_image_folder"
    config.data.root = str(tmp_path / "nowhere")
    with pytest.raises(FileNotFoundError, match="data.root="):
        loop.train_and_evaluate(config, tmp_path / "run")
