"""``python -m experiments.zsl_mining --quick`` runs end to end and writes its JSON and PNG."""

import json
from pathlib import Path

import pytest

from experiments import zsl_mining as study

ROOT = Path(__file__).resolve().parents[2]
CIFAR = ROOT / ".." / "shared" / "data" / "cifar10" / "cifar10-jpg.tar.gz"
VECTORS = ROOT / ".." / "shared" / "data" / "zsl" / "cifar10"


def test_quick_study_writes_results_and_plot(tmp_path):
    if not CIFAR.is_file():
        pytest.skip(f"CIFAR-10 archive not found at {CIFAR} (see ../shared/data/README.md)")
    out = tmp_path / "study"
    data = ["--cifar-path", str(CIFAR), "--class-vectors-dir", str(VECTORS)]
    table = study.main(
        ["--quick", "--seeds", "0", "--schemes", "uniform", "bootstrap", "eszsl", "--out", str(out)]
        + data
    )
    assert [row["scheme"] for row in table] == ["uniform", "bootstrap", "eszsl"]
    results = json.loads((out / "results.json").read_text())
    assert len(results["runs"]) == 3 and (out / "learning_curves.png").stat().st_size > 1000
    uniform, _, eszsl = results["runs"]
    assert len(uniform["curve"]) == 2 and eszsl["curve"] == []  # one point per epoch
    assert uniform["per_class_zsl"].keys() == {"cat", "truck"}
    assert uniform["protocol"] == "gbu" and 0.0 <= uniform["ausuc"] <= 1.0
    assert eszsl["coding"] == "pm1" and eszsl["protocol"] == "gbu"  # the paper's ±1 targets
    # every scheme of a seed shares one feature file (and the features CNN's run beside it)
    assert sorted(p.name for p in (out / "features").iterdir()) == ["seed0.npz", "seed0_cnn"]
    assert (out / "features" / "seed0_cnn" / "summary.json").is_file()
