"""``python -m experiments.negative_evidence --quick`` on the real MNIST: heads train, metrics (WSOL
included) and plot written; an older results file replots."""

import doctest
import json
from pathlib import Path

import pytest

from experiments import negative_evidence as study

ROOT = Path(__file__).resolve().parents[2]
MNIST = ROOT.parent / "shared" / "data" / "mnist"


def test_gmp_keeps_an_integer_k_and_bad_names_are_refused():
    assert doctest.testmod(study).failed == 0
    kwargs = {"seed": 0, "quick": False, "data_dir": "/tmp", "mnist_dir": "/m", "cifar_path": "/c"}
    assert isinstance(study.run_config("cluttered_mnist", "gmp", **kwargs).model.k_max, int)
    assert study.run_config("cifar_mosaic", "gap", **kwargs).model.k_max == 1.0
    with pytest.raises(ValueError, match="head must be one of"):
        study.run_config("cluttered_mnist", "gwp", **kwargs)


@pytest.mark.skipif(not MNIST.is_dir(), reason=f"real MNIST not found at {MNIST}")
def test_quick_study_writes_results_plot_and_resumes(tmp_path, monkeypatch):
    out = tmp_path / "out"
    args = [
        "--quick",
        "--datasets",
        "cluttered_mnist",
        "--heads",
        "gmp",
        "maxmin_0.7",
        "--out",
        str(out),
        "--data-dir",
        str(tmp_path / "tfds"),
        "--mnist-dir",
        str(MNIST),
    ]
    study.main(args)
    saved = json.loads((out / "negative_evidence.json").read_text())
    table = saved["table"]["cluttered_mnist"]
    assert sorted(table) == ["gmp", "maxmin_0.7"]
    wsol = ("pointwise_mAP", "MaxBoxAccV2", "gt_known_loc", "PxAP")
    for metrics in table.values():
        for metric in ("test_mAP", "pointing_game", "mIoU", *wsol):
            assert 0.0 <= metrics[metric][0] <= 1.0, metric
    for run in saved["runs"]:  # Every run records the WSOL metrics, not only the table.
        assert all(0.0 <= run[metric] <= 1.0 for metric in wsol), run
    assert (out / "negative_evidence.png").stat().st_size > 5000

    # The same command again resumes: the finished runs are kept, nothing is trained again.
    def no_training(*args):
        raise AssertionError("a finished run was trained again")

    monkeypatch.setattr(study, "_one_run", no_training)
    again = study.main(args)
    assert again["runs"] == saved["runs"] and again["table"] == saved["table"]
    with pytest.raises(ValueError, match="another budget"):
        study.main([*args, "--steps", "7"])  # Would mix budgets in one results file.


def test_an_older_results_file_without_the_wsol_metrics_still_replots(tmp_path, capsys):
    old = {
        "study": "negative_evidence",
        "quick": False,
        "steps": 500,
        "seeds": [0],
        "runs": [
            {
                "dataset": "cifar_mosaic",
                "head": head,
                "seed": 0,
                "test_mAP": 0.4,
                "pointing_game": 0.7,
                "mIoU": 0.1,
            }
            for head in ("gmp", "maxmin_0.7")
        ],
    }
    path = tmp_path / "old.json"
    path.write_text(json.dumps(old))
    results = study.main(["--replot", str(path)])
    assert results["table"]["cifar_mosaic"]["gmp"] == {
        "test_mAP": [0.4, 0.0, 1],
        "pointing_game": [0.7, 0.0, 1],
        "mIoU": [0.1, 0.0, 1],
    }
    printed = capsys.readouterr().out
    assert "| gmp | 0.700 | — | — | — | — | 0.100 |" in printed
    assert path.with_suffix(".png").stat().st_size > 5000
