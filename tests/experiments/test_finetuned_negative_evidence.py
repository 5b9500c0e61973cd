"""``python -m experiments.finetuned_negative_evidence --quick``: probe, fine-tuning, summaries, resume.

The data are a real ``cifar_mosaic/tiny`` build from a fake CIFAR archive (random JPEGs); the backbone
is a small random CNN standing in for EfficientNet-Lite0 (the real run's; its weights are an optional
extra and it compiles slowly), so the whole path (feature cache, probe, fine-tuning on the input
pipeline, evaluation of both) runs in seconds.
"""

import doctest
import io
import json
import math
import tarfile

import numpy as np
import pytest
from PIL import Image

from experiments import finetuned_negative_evidence as study
from experiments import pretrained_negative_evidence as pre
from wsl_jax.data.cifar_mosaic import CIFAR10_CLASSES


def fake_cifar(path, per_class=(4, 2)):
    rng = np.random.default_rng(0)
    with tarfile.open(path, "w:gz") as tar:
        for split, n in zip(("train", "test"), per_class):
            for name in CIFAR10_CLASSES:
                for i in range(n):
                    buffer = io.BytesIO()
                    pixels = rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)
                    Image.fromarray(pixels).save(buffer, format="JPEG")
                    info = tarfile.TarInfo(f"{split}/{name}/{i:04d}.jpg")
                    info.size = buffer.tell()
                    buffer.seek(0)
                    tar.addfile(info, buffer)
    return path


def small_backbone():
    import jax
    import jax.numpy as jnp

    from wsl_jax.models import build_backbone

    module = build_backbone("small_cnn", widths=(8, 16))
    variables = module.init(jax.random.key(0), jnp.zeros((1, 64, 64, 3)), train=False)
    return module, variables


def test_docstrings():
    assert doctest.testmod(study).failed == 0
    assert doctest.testmod(pre).failed == 0  # Its summaries gained a `stage`.


def fake_run(head, seed, probe_map, tuned_map):
    metrics = {metric: 0.5 for metric, _ in pre.METRICS}
    return {
        "head": head,
        "seed": seed,
        "probe": {**metrics, "test_mAP": probe_map},
        "finetuned": {**metrics, "test_mAP": tuned_map},
    }


def test_summaries_of_both_stages(tmp_path):
    """Per stage: the table, the paired differences (same seed) and the gains, in JSON, Markdown, PNG."""
    runs = [
        fake_run("topk", 0, 0.60, 0.70),
        fake_run("maxmin_0.7", 0, 0.55, 0.72),
        fake_run("topk", 1, 0.62, 0.66),
        fake_run("maxmin_0.7", 1, 0.58, 0.65),
        fake_run("gmp", 0, 0.50, 0.50),
    ]
    namespace = type(
        "Args",
        (),
        {
            "quick": True,
            "steps": 1,
            "batch_size": 1,
            "eval_every": 1,
            "learning_rate": 1e-3,
            "ft_steps": 1,
            "ft_batch_size": 1,
            "ft_eval_every": 1,
            "ft_learning_rate": None,
        },
    )
    results = study._write(tmp_path / "r.json", runs, namespace)
    assert results["table"]["probe"]["topk"]["test_mAP"] == [0.61, 0.01, 2]
    assert results["table"]["finetuned"]["topk"]["test_mAP"] == [0.68, 0.02, 2]
    probe = results["paired_differences"]["probe"]["maxmin_0.7 − topk"]["test_mAP"]
    tuned = results["paired_differences"]["finetuned"]["maxmin_0.7 − topk"]["test_mAP"]
    assert probe == [-0.045, 0.005, 0, 2]
    assert tuned[2:] == [1, 2] and tuned[0] == pytest.approx(0.005)
    assert results["paired_differences"]["finetuned"]["maxmin_0.7 − gmp"]["test_mAP"][3] == 1
    assert results["gains"]["maxmin_0.7: fine-tuned − probe"]["test_mAP"][2:] == [2, 2]
    assert results["gains"]["gmp: fine-tuned − probe"]["test_mAP"] == [0.0, 0.0, 0, 1]
    text = study.markdown(results)
    assert "| maxmin_0.7 − topk | -0.045 ± 0.005 (0/2) |" in text
    assert "| topk: fine-tuned − probe | +0.070 ± 0.030 (2/2) |" in text
    study.plot(runs, results, tmp_path / "r.png")
    assert (tmp_path / "r.png").stat().st_size > 5000


def test_quick_study_probes_finetunes_and_resumes(tmp_path, monkeypatch):
    monkeypatch.setattr(study, "backbone_with_weights", small_backbone)
    out = tmp_path / "out"
    args = ["--quick", "--heads", "maxmin_0.7", "--out", str(out)]  # One head: CI time.
    args += [
        "--data-dir",
        str(tmp_path / "tfds"),
        "--cifar-path",
        str(fake_cifar(tmp_path / "c.tgz")),
    ]
    study.main(args)
    saved = json.loads((out / "finetuned_negative_evidence.json").read_text())
    assert [(r["head"], r["seed"]) for r in saved["runs"]] == [("maxmin_0.7", 0)]
    for run in saved["runs"]:
        for stage in study.STAGES:
            for metric, _ in pre.METRICS:
                assert 0.0 <= run[stage][metric] <= 1.0, (run["head"], stage, metric)
            assert math.isfinite(run[stage]["val_mAP"])
        # Fine-tuning: validation at steps 0, 1 and 2 (--quick), the kept step among them.
        assert [step for step, _ in run["val_mAP_curve"]] == [0, 1, 2]
        assert run["finetuned"]["best_step"] in (0, 1, 2)
        assert run["finetuned"]["val_mAP"] == pytest.approx(
            max(v for _, v in run["val_mAP_curve"]), abs=1e-6
        )
        assert (run["backbone_change"] > 0) == (run["best_step"] > 0)
        # Frozen BatchNorm: step 0 is the probe (its head on features recomputed by the network).
        assert run["val_mAP_step0"] == pytest.approx(run["probe"]["val_mAP"], abs=0.05)
        assert run["timing"]["ft_step_seconds"] > 0
    for stage in study.STAGES:
        assert saved["table"][stage]["maxmin_0.7"]["test_mAP"][2] == 1
    assert list(saved["gains"]) == ["maxmin_0.7: fine-tuned − probe"]
    assert (out / "finetuned_negative_evidence.png").stat().st_size > 5000
    assert (out / "features" / "val.npz").exists()  # §1b's cache format, reused.

    # Again: finished runs are kept and nothing is trained; another budget is refused.
    def no_training(*args, **kwargs):
        raise AssertionError("a finished run was trained again")

    monkeypatch.setattr(study, "one_run", no_training)
    again = study.main(args)
    assert again["runs"] == saved["runs"]
    with pytest.raises(ValueError, match="another budget"):
        study.main([*args, "--ft-learning-rate", "0.01"])  # Would mix budgets in one file.
