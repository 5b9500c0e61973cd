"""The run skeleton (wsl_jax.train.runner) on a toy task: periodic actions, selection on validation,
the non-finite guard, interruption and resume; both tasks and the features CNN train through it."""

import json

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

from wsl_jax.train import runner
from wsl_jax.train.checkpoints import restore_best
from wsl_jax.train.runner import Schedule, TaskRun, is_due, run
from wsl_jax.train.state import TrainState


def _config(**train):
    return ml_collections.ConfigDict(
        {"seed": 0, "progress_bar": False, "train": {"keep_checkpoints": 3, **train}}
    )


def _toy_task(validation_values=None, nan_at=None, total=6):
    """w ← w + batch; validation returns ``validation_values[step]`` (default: -|w - 3|)."""

    def step(state, batch):
        w = state.params["w"] + batch
        if nan_at is not None:
            w = jnp.where(state.step + 1 == nan_at, jnp.nan, w)
        new = state.replace(step=state.step + 1, params={"w": w})
        return new, {"loss": jnp.abs(w - 3.0), "finite": jnp.isfinite(w), "grad_norm": w}

    def validate(state):
        if validation_values is None:
            return {"score": -abs(float(state.params["w"]) - 3.0)}
        return {"score": validation_values[int(state.step)]}

    return TaskRun(
        state=TrainState(jnp.int32(0), {"w": jnp.float32(0.0)}, {}, ()),
        train_step=step,
        next_batch=lambda i: jnp.float32(1.0),
        validate=validate,
        selection="score",
        finish=lambda state, best: {"best_step": best["step"], "w": float(state.params["w"])},
        schedule=Schedule(total_steps=total, log_every=2, eval_every=1, checkpoint_every=2),
        selected=lambda state: state.params,
    )


def _lines(workdir):
    return [json.loads(line) for line in (workdir / "metrics.jsonl").read_text().splitlines()]


def test_periodic_actions_selection_and_files(tmp_path):
    summary = run(_config(), tmp_path, _toy_task)
    assert summary == {"best_step": 3, "w": 6.0}  # w = 3 at step 3: the best validation score.
    best = json.loads((tmp_path / "best.json").read_text())
    assert (best["metric"], best["value"], best["step"]) == ("score", 0.0, 3)
    selected = restore_best(tmp_path, best, {"w": jnp.float32(0)})
    assert float(selected["w"]) == 3.0  # best/ holds the selected step's variables, verified.
    lines = _lines(tmp_path)
    assert [line["step"] for line in lines if "loss" in line] == [2, 4, 6]
    assert [line["step"] for line in lines if "score" in line] == [1, 2, 3, 4, 5, 6]
    assert json.loads((tmp_path / "summary.json").read_text()) == summary
    assert sorted(p.name for p in (tmp_path / "checkpoints").iterdir()) == ["2", "4", "6"]


def test_stop_after_steps_then_resume_equals_an_uninterrupted_run(tmp_path):
    full = run(_config(), tmp_path / "full", _toy_task)
    assert run(_config(), tmp_path / "cut", _toy_task, stop_after=3) == {
        "stopped_at": 3,
        "steps": 6,
    }
    assert not (tmp_path / "cut" / "summary.json").exists()
    assert (tmp_path / "cut" / "checkpoints" / "3").is_dir()  # A checkpoint where it stopped.
    assert run(_config(), tmp_path / "cut", _toy_task) == full
    assert _lines(tmp_path / "cut") == [
        {k: v for k, v in line.items() if k != "steps_per_s"} | _rate(tmp_path / "cut", line)
        for line in _lines(tmp_path / "full")
    ]


def _rate(workdir, line):
    """The logged rate of ``line``'s step in ``workdir`` (timings differ between runs)."""
    if "steps_per_s" not in line:
        return {}
    (same,) = [x for x in _lines(workdir) if x["step"] == line["step"] and "steps_per_s" in x]
    return {"steps_per_s": same["steps_per_s"]}


def test_selection_is_on_validation_and_ties_keep_the_first(tmp_path):
    values = {1: 0.5, 2: 0.9, 3: 0.9, 4: 0.1, 5: 0.9, 6: 0.2}
    summary = run(_config(), tmp_path, lambda: _toy_task(values))
    assert summary["best_step"] == 2


def test_a_non_finite_step_stops_before_anything_is_saved_or_selected(tmp_path):
    with pytest.raises(FloatingPointError, match=r"non-finite loss nan .* at step 3.*step 2"):
        run(_config(), tmp_path, lambda: _toy_task(nan_at=3))
    assert sorted(p.name for p in (tmp_path / "checkpoints").iterdir()) == ["2"]
    assert json.loads((tmp_path / "best.json").read_text())["step"] == 2


def test_a_refused_workdir_runs_nothing(tmp_path):
    run(_config(), tmp_path, _toy_task)
    prepared = []
    with pytest.raises(ValueError, match="different config"):
        run(_config(keep_checkpoints=1), tmp_path, lambda: prepared.append(1))
    assert prepared == []  # The task was not even built.


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="stop_after must be >= 1"):
        run(_config(), "/tmp/unused", _toy_task, stop_after=0)
    with pytest.raises(ValueError, match="eval_every must be >= 1, got 0"):
        Schedule(total_steps=3, log_every=1, eval_every=0, checkpoint_every=1)
    assert [d for d in range(1, 6) if is_due(d, 2, total=5)] == [2, 4, 5]


def test_every_task_trains_through_the_skeleton(monkeypatch, tmp_path):
    """The weakly supervised, zero-shot and features-CNN trainers all call runner.run."""
    from wsl_jax.train import feature_cnn, loop, zero_shot

    assert loop.run is runner.run and zero_shot.run is runner.run and feature_cnn.run is runner.run
    seen = []
    real_run = runner.run

    def recording_run(config, workdir, prepare, **kw):
        seen.append(config.get("task"))
        return real_run(config, workdir, prepare, **kw)

    monkeypatch.setattr(feature_cnn, "run", recording_run)
    images = np.random.default_rng(0).integers(0, 255, (8, 32, 32, 3), dtype=np.uint8)
    _, params = feature_cnn.train_feature_cnn(
        images,
        np.arange(8) % 2,
        workdir=tmp_path,
        num_classes=2,
        epochs=2,
        batch_size=4,
        learning_rate=1e-3,
        seed=0,
        widths=(4,),
        feature_dim=8,
        validation=(images, np.arange(8) % 2),
    )
    assert seen == ["features_cnn"]
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["steps"] == 4 and 0.0 <= summary["val_top1"] <= 1.0
    assert [line["epoch"] for line in _lines(tmp_path) if "loss" in line] == [1, 2]
    # Run again: complete, so nothing is retrained, and the same parameters come back.
    _, again = feature_cnn.train_feature_cnn(
        images,
        np.arange(8) % 2,
        workdir=tmp_path,
        num_classes=2,
        epochs=2,
        batch_size=4,
        learning_rate=1e-3,
        seed=0,
        widths=(4,),
        feature_dim=8,
        validation=(images, np.arange(8) % 2),
    )
    jax.tree.map(np.testing.assert_array_equal, params, again)
