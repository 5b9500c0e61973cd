"""End-to-end tests of train_and_evaluate on the tiny cluttered_digits config (8 CPU devices)."""

import json

import jax
import numpy as np
import orbax.checkpoint as ocp
import pytest

from configs import digits_weldon
from wsl_jax.train import evaluation, loop


@pytest.fixture(scope="module")
def tiny_config(tmp_path_factory):
    config = digits_weldon.get_config()
    config.progress_bar = False
    config.data.name = "cluttered_digits/tiny"
    config.data.dir = str(tmp_path_factory.mktemp("tfds"))
    config.data.image_size = (32, 32)
    config.model.backbone_kwargs = {"widths": (8, 16), "convs_per_stage": 1}
    config.train.steps = 6
    config.train.batch_size = 8
    config.train.log_every = 1
    config.train.eval_every = 3
    config.train.checkpoint_every = 2
    config.eval.batch_size = 8
    return config


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

    # A run that dies after step 4 (checkpoints at 2 and 4) and is started again.
    real_make_train_step = loop.make_train_step

    def crashing_make_train_step(*args):
        step_fn, calls = real_make_train_step(*args), [0]

        def step(state, batch):
            calls[0] += 1
            if calls[0] == 5:
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
