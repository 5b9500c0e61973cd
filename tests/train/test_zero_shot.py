"""The sharded, checkpointed ZSL trainer on the synthetic task (8 CPU devices), and bad inputs."""

import json

import jax
import jax.numpy as jnp
import numpy as np
import optax
import orbax.checkpoint as ocp
import pytest

from configs.zsl_base import synthetic_config
from wsl_jax.data import make_global_batch
from wsl_jax.train import train_and_evaluate
from wsl_jax.train.state import TrainState
from wsl_jax.train.zero_shot import (
    make_mesh,
    make_zsl_train_step,
    train_and_evaluate_zsl,
)
from wsl_jax.zsl import SCHEMES, init_metric_params
from wsl_jax.zsl.mining import mining_options


def _config(**overrides):
    config = synthetic_config()
    config.train.epochs = 2
    config.update_from_flattened_dict(overrides)
    return config


def _losses(workdir):
    lines = [json.loads(line) for line in (workdir / "metrics.jsonl").read_text().splitlines()]
    return [line["loss"] for line in lines if "loss" in line]


def _params(workdir, step):
    path = (workdir / "checkpoints" / str(step) / "state").absolute()
    return ocp.StandardCheckpointer().restore(path)["params"]


@pytest.fixture(scope="module")
def full_run(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("zsl") / "full"
    summary = train_and_evaluate(_config(**{"zsl.scheme": "uniform"}), workdir)
    return workdir, summary


def test_summary_metrics_and_files(full_run):
    workdir, summary = full_run
    assert jax.device_count() == 8 and summary["num_devices"] == 8
    assert summary["steps"] == 2 * (252 // 32) and summary["best_epoch"] in (1, 2)
    assert summary["val_metric"] == "val_zsl_acc"  # two validation classes
    for key in ("zsl_unseen_acc", "best_val_metric"):
        assert 0.0 <= summary[key] <= 1.0
    assert set(summary["gzsl"]) == {"u", "s", "H"}
    assert set(summary["per_class_zsl"]) == {"class9", "class10", "class11"}
    assert json.loads((workdir / "summary.json").read_text()) == summary
    assert len(_losses(workdir)) == 2 and all(np.isfinite(_losses(workdir)))


def test_eight_devices_match_one_device(full_run, tmp_path):
    workdir, _ = full_run
    single = tmp_path / "single"
    summary = train_and_evaluate_zsl(
        _config(**{"zsl.scheme": "uniform", "train.num_devices": 1}), single
    )
    assert summary["num_devices"] == 1
    np.testing.assert_allclose(_losses(single), _losses(workdir), rtol=1e-5)
    jax.tree.map(
        lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6),
        _params(single, 14),
        _params(workdir, 14),
    )


def test_resume_after_interruption_is_bitwise(full_run, tmp_path):
    workdir, summary = full_run
    resumed = tmp_path / "resumed"
    config = _config(**{"zsl.scheme": "uniform"})
    assert train_and_evaluate_zsl(config, resumed, stop_after_steps=7) == {
        "stopped_at": 7,
        "steps": 14,
    }
    assert not (resumed / "summary.json").exists()
    again = train_and_evaluate_zsl(config, resumed)
    jax.tree.map(np.testing.assert_array_equal, _params(resumed, 14), _params(workdir, 14))
    assert _losses(resumed) == _losses(workdir)
    assert again["zsl_unseen_acc"] == summary["zsl_unseen_acc"]


def test_other_config_in_workdir_is_refused(full_run):
    workdir, _ = full_run
    with pytest.raises(ValueError, match="different config"):
        train_and_evaluate(_config(**{"zsl.scheme": "hard"}), workdir)


@pytest.mark.parametrize("scheme", [s for s in SCHEMES if s != "uniform"])
def test_every_scheme_mines_inside_the_sharded_step(scheme):
    """Each scheme's step on a batch sharded over 8 devices: finite loss, the state advances; the
    mixture (hard + correlated + semi-hard) gives the same losses on one device."""
    config = _config(**{"zsl.scheme": scheme, "zsl.warmup_epochs": 0, "zsl.anneal_epochs": 1})
    config.zsl.fractions = {"hard": 0.34, "correlated": 0.33, "semi_hard": 0.33}
    options, schedule = mining_options(config.zsl, steps_per_epoch=2)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(32, 16)).astype(np.float32)
    y = rng.integers(0, 7, 32).astype(np.int32)
    attributes = jnp.asarray(rng.normal(size=(7, 8)), jnp.float32)
    losses = []
    meshes = (make_mesh(), make_mesh(1)) if scheme == "mixture" else (make_mesh(),)
    for mesh in meshes:
        tx = optax.adamw(1e-2)
        params = init_metric_params(jax.random.key(0), feature_dim=16, attribute_dim=8)
        state = TrainState(jnp.zeros((), jnp.int32), params, {}, tx.init(params))
        step = make_zsl_train_step(
            tx,
            mesh,
            scheme=scheme,
            n_neg=3,
            lam=0.1,
            options=options,
            seed=0,
            hard_fraction=schedule,
        )
        batch = make_global_batch({"x": x, "y": y}, mesh)
        assert batch["x"].sharding.num_devices == mesh.size
        for _ in range(3):
            state, metrics = step(state, batch["x"], batch["y"], attributes)
            losses.append(float(metrics["loss"]))
        assert int(state.step) == 3
    assert np.isfinite(losses).all()
    if scheme == "mixture":  # hard + correlated + semi-hard draws: the same on one device
        np.testing.assert_allclose(losses[:3], losses[3:], rtol=1e-5)


@pytest.mark.parametrize(
    ("overrides", "match"),
    [
        ({"zsl.scheme": "hardest"}, r"config.zsl.scheme must be one of"),
        ({"zsl.n_neg": 7}, r"config.zsl.n_neg=7 must be in \[1, 6\]"),
        ({"train.batch_size": 12}, r"batch_size=12 must be a positive multiple of the number of "),
        ({"train.num_devices": 9}, r"config.train.num_devices must be in \[0, 8\]"),
        ({"data.name": "imagenet"}, r"config.data.name must be one of"),
    ],
)
def test_bad_config_is_refused(overrides, match, tmp_path):
    with pytest.raises(ValueError, match=match):
        train_and_evaluate(_config(**overrides), tmp_path)


def test_unknown_task_is_refused(tmp_path):
    with pytest.raises(ValueError, match="config.task must be one of"):
        train_and_evaluate(_config(task="detection"), tmp_path)
