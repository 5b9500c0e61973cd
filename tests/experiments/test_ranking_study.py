"""``python -m experiments.ranking --quick``: both objectives train, the JSON and the plot are written."""

import doctest
import json

from experiments import ranking as study


def test_quick_study_writes_results_and_plot(tmp_path):
    assert doctest.testmod(study).failed == 0
    results = study.main(["--quick", "--out", str(tmp_path / "out"), "--data-dir", str(tmp_path)])
    saved = json.loads((tmp_path / "out" / "ranking.json").read_text())
    assert saved["table"] == results["table"]
    assert sorted(saved["table"]) == ["ap_ranking", "multilabel_soft_margin"]
    assert {r["loss"] for r in saved["runs"]} == set(study.OBJECTIVES)
    assert all(0.0 <= r["test_mAP"] <= 1.0 and r["val_curve"] for r in saved["runs"])
    assert (tmp_path / "out" / "ranking.png").stat().st_size > 5000
