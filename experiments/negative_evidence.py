"""Study 1: does negative evidence help? Pooling heads compared with one backbone and one budget.

Each run trains ``configs/digits_weldon.py``'s small CNN (4 maps per class) on a data set with one
pooling head, selects its step on validation, and ``evaluate_workdir`` reports test mAP and the
localization metrics: the pointing game, the pointwise localization mAP, MaxBoxAccV2 (and MaxBoxAcc at
IoU 30/50/70), GT-known localization and PxAP (the WSOL metrics), and segmentation mIoU (the
background and score-map thresholds chosen on validation). Heads:

* ``gap`` (``k_max=1.0``: every region), ``gmp`` (``k_max=1``: one region), ``topk`` (``k⁺=0.2``,
  no negative evidence);
* ``maxmin_0.5`` / ``maxmin_0.7`` / ``maxmin_1`` (``k⁺ = k⁻ = 0.2``, ``λ`` = 0.5, 0.7, 1);
* the k sweep ``k1`` / ``k0.05`` / ``k0.1`` / ``k0.4`` (``k⁺ = k⁻ = k``, ``λ = 0.7``; ``k = 0.2`` is
  ``maxmin_0.7``).

Data sets (64×64, built once into ``--data-dir``): ``cluttered_mnist/small`` (canvases of real MNIST
digits, ``--mnist-dir``; 10,000 train / 2,000 validation / 2,000 test) and ``cifar_mosaic/small64``
(mosaics of real CIFAR-10 images, ``--cifar-path``; 5,000 / 1,000 / 1,000). Budget: ``--steps`` (500) of
32 images, validation at the middle and the end. Writes ``negative_evidence.json`` (after every run)
and ``negative_evidence.png`` under ``--out``. The results file of an ``--out`` accumulates: a later
invocation with the same budget skips the runs it already holds (re-running a killed command resumes
it) and adds its own, and the table and plot cover all of them, so the study can be run in pieces
(``--datasets``, ``--seeds``); another budget needs another ``--out``.

    python -m experiments.negative_evidence --out /tmp/ne          # full study: 60 runs, ~1.5 h on 2 cores
    python -m experiments.negative_evidence --datasets cifar_mosaic --seeds 0 --out /tmp/ne  # 10 runs
    python -m experiments.negative_evidence --quick --out /tmp/ne  # CI: tiny data, a few steps
    python -m experiments.negative_evidence --replot /tmp/ne/negative_evidence.json  # tables, plot

Results files written before the WSOL metrics were recorded load and replot: "—" in the tables.

Example (the config of one run, without training):

>>> config = run_config("cluttered_mnist", "gmp", seed=0, quick=True, data_dir="/tmp/tfds",
...                     mnist_dir="/data/mnist", cifar_path=None)
>>> config.model.k_max, config.model.k_min, config.data.name  # k_max stays an int count
(1, 0, 'cluttered_mnist/tiny')
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import ml_collections
import numpy as np

import wsl_jax
from configs import digits_weldon

# head name → (k_max, k_min, lam); an int k is a count, a float k a fraction of the regions.
HEADS = {
    "gap": (1.0, 0, 1.0),
    "gmp": (1, 0, 1.0),
    "topk": (0.2, 0, 1.0),
    "maxmin_0.5": (0.2, 0.2, 0.5),
    "maxmin_0.7": (0.2, 0.2, 0.7),
    "maxmin_1": (0.2, 0.2, 1.0),
    "k1": (1, 1, 0.7),
    "k0.05": (0.05, 0.05, 0.7),
    "k0.1": (0.1, 0.1, 0.7),
    "k0.4": (0.4, 0.4, 0.7),
}
K_SWEEP = (
    ("k1", "1 region"),
    ("k0.05", "0.05"),
    ("k0.1", "0.1"),
    ("maxmin_0.7", "0.2"),
    ("k0.4", "0.4"),
)
DATASETS = {
    # name → (tfds name, quick tfds name, image size, quick image size); study-sized builder configs.
    "cluttered_mnist": ("cluttered_mnist/small", "cluttered_mnist/tiny", (64, 64), (32, 32)),
    "cifar_mosaic": ("cifar_mosaic/small64", "cifar_mosaic/tiny", (64, 64), (64, 64)),
}
# The metrics recorded per run (None where the data set has no boxes/masks, or the results file
# predates them), and those of the two tables: classification, then localization (WSOL).
METRICS = (
    "test_mAP",
    "pointing_game",
    "mIoU",
    "pointwise_mAP",
    "MaxBoxAccV2",
    "MaxBoxAcc_30",
    "MaxBoxAcc_50",
    "MaxBoxAcc_70",
    "gt_known_loc",
    "PxAP",
)
MAIN_COLUMNS = (("test_mAP", "mAP"), ("pointing_game", "PG"), ("mIoU", "mIoU"))
LOCALIZATION_COLUMNS = (
    ("pointing_game", "PG"),
    ("pointwise_mAP", "pointwise"),
    ("MaxBoxAccV2", "MaxBoxAccV2"),
    ("gt_known_loc", "GT-known"),
    ("PxAP", "PxAP"),
    ("mIoU", "mIoU"),
)
QUICK = {
    "model.backbone_kwargs.widths": (8, 16),
    "train.steps": 4,
    "train.batch_size": 8,
    "train.log_every": 2,
    "train.eval_every": 4,
    "train.checkpoint_every": 4,
    "eval.batch_size": 8,
}


def run_config(
    dataset: str,
    head: str,
    *,
    seed: int,
    quick: bool,
    data_dir: str,
    mnist_dir,
    cifar_path,
    steps: int = 500,
):
    """The default config with ``head``'s pooling on ``dataset``; the same budget for every head."""
    if dataset not in DATASETS:
        raise ValueError(f"dataset must be one of {sorted(DATASETS)}, got {dataset!r}")
    if head not in HEADS:
        raise ValueError(f"head must be one of {sorted(HEADS)}, got {head!r}")
    name, quick_name, size, quick_size = DATASETS[dataset]
    config = digits_weldon.get_config()
    config.progress_bar = False
    config.seed = seed
    config.data.name = quick_name if quick else name
    config.data.image_size = quick_size if quick else size
    config.data.dir = data_dir
    # A missing path is left to the builder: it reads $WSL_JAX_MNIST_DIR / $WSL_JAX_CIFAR10, or
    # says which to set.
    source = (
        {"mnist_dir": mnist_dir} if dataset == "cluttered_mnist" else {"cifar_path": cifar_path}
    )
    config.data.builder_kwargs = ml_collections.ConfigDict(
        {key: str(value) for key, value in source.items() if value}
    )
    config.data.random_flip = dataset == "cifar_mosaic"
    config.train.steps = steps
    config.train.eval_every = max(steps // 2, 1)
    config.train.checkpoint_every = steps
    if quick:
        config.update_from_flattened_dict(QUICK)
    # A new model block: ConfigDict keeps a field's type, and k_max=1 must stay an int (GMP), not
    # become 1.0 (GAP).
    k_max, k_min, lam = HEADS[head]
    config.model = ml_collections.ConfigDict(
        {**config.model.to_dict(), "k_max": k_max, "k_min": k_min, "lam": lam}
    )
    return config


def _one_run(config, workdir: Path) -> dict:
    from wsl_jax.train import evaluation, train_and_evaluate

    started = time.perf_counter()
    summary = train_and_evaluate(config, workdir)
    test = evaluation.evaluate_workdir(workdir, num_overlays=0)["test"]
    return {
        "test_mAP": summary["test_mAP"],
        "best_step": summary["best_step"],
        **localization_record(test),
        "seconds": time.perf_counter() - started,
    }


def localization_record(test: dict) -> dict:
    """The localization figures of ``evaluate_workdir``'s test metrics, flat (None where absent).

    >>> localization_record({"pointing_game": {"mean_over_classes": 0.9},
    ...                      "wsol": {"MaxBoxAccV2": 0.5, "MaxBoxAcc": {"50": 0.6}}})
    ... # doctest: +NORMALIZE_WHITESPACE
    {'pointing_game': 0.9, 'mIoU': None, 'pointwise_mAP': None, 'MaxBoxAccV2': 0.5,
     'MaxBoxAcc_30': None, 'MaxBoxAcc_50': 0.6, 'MaxBoxAcc_70': None, 'gt_known_loc': None,
     'PxAP': None}
    """
    wsol = test.get("wsol", {})
    box_acc = wsol.get("MaxBoxAcc", {})
    record = {
        "pointing_game": test.get("pointing_game", {}).get("mean_over_classes"),
        "mIoU": test.get("segmentation", {}).get("mIoU"),
        "pointwise_mAP": test.get("pointwise_localization", {}).get("mAP"),
        "MaxBoxAccV2": wsol.get("MaxBoxAccV2"),
        **{f"MaxBoxAcc_{iou}": box_acc.get(str(iou)) for iou in (30, 50, 70)},
        "gt_known_loc": wsol.get("gt_known_loc"),
        "PxAP": wsol.get("PxAP"),
    }
    return {key: None if value is None else float(value) for key, value in record.items()}


def _finished_runs(results_path: Path, *, quick: bool, steps: int) -> list[dict]:
    """The runs of earlier invocations into the same ``--out`` (which must have had this budget)."""
    if not results_path.exists():
        return []
    saved = json.loads(results_path.read_text())
    if saved.get("quick") != quick or saved.get("steps") != steps:
        raise ValueError(
            f"--out {results_path.parent} holds results of another budget (quick={saved.get('quick')}, "
            f"steps={saved.get('steps')}); use another --out for quick={quick}, steps={steps}"
        )
    return saved["runs"]


def summarize(runs: list[dict]) -> dict:
    """``{dataset: {head: {metric: [mean, std, n]}}}`` over the seeds (std with ddof=0).

    A metric a run lacks (absent or None: no boxes/masks, or an older results file) is left out.

    >>> summarize([{"dataset": "d", "head": "gap", "test_mAP": 0.5, "pointing_game": 1.0,
    ...             "mIoU": None}])
    {'d': {'gap': {'test_mAP': [0.5, 0.0, 1], 'pointing_game': [1.0, 0.0, 1]}}}
    """
    table: dict = {}
    for run in runs:
        row = table.setdefault(run["dataset"], {}).setdefault(run["head"], {})
        for metric in METRICS:
            if run.get(metric) is not None:
                row.setdefault(metric, []).append(run[metric])
    return {
        dataset: {
            head: {m: [float(np.mean(v)), float(np.std(v)), len(v)] for m, v in metrics.items()}
            for head, metrics in heads.items()
        }
        for dataset, heads in table.items()
    }


def _cell(value) -> str:
    if value is None:
        return "—"
    if value[2] == 1:  # One seed: no spread to show.
        return f"{value[0]:.3f}"
    return f"{value[0]:.3f} ± {value[1]:.3f}"


def markdown_table(table: dict, columns=MAIN_COLUMNS) -> str:
    """One row per head, ``columns`` (mean ± std over seeds) per data set; "—" where missing.

    >>> print(markdown_table({"d": {"gap": {"test_mAP": [0.5, 0.01, 3], "mIoU": [0.2, 0.0, 3]}}}))
    | head | d mAP | d PG | d mIoU |
    |---|---|---|---|
    | gap | 0.500 ± 0.010 | — | 0.200 ± 0.000 |
    """
    datasets = list(table)
    header = ["head"] + [f"{d} {label}" for d in datasets for _, label in columns]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for head in HEADS:
        if not any(head in table[d] for d in datasets):
            continue
        cells = [head]
        for d in datasets:
            for metric, _ in columns:
                cells.append(_cell(table[d].get(head, {}).get(metric)))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def localization_tables(table: dict) -> str:
    """Per data set, one row per head: PG, pointwise, MaxBoxAccV2, GT-known loc., PxAP, mIoU.

    >>> print(localization_tables({"d": {"gmp": {"pointing_game": [0.9, 0.0, 1]}}}))
    d
    | head | d PG | d pointwise | d MaxBoxAccV2 | d GT-known | d PxAP | d mIoU |
    |---|---|---|---|---|---|---|
    | gmp | 0.900 | — | — | — | — | — |
    """
    return "\n\n".join(
        f"{dataset}\n" + markdown_table({dataset: heads}, LOCALIZATION_COLUMNS)
        for dataset, heads in table.items()
    )


def _bars(axis, table_of_dataset: dict, heads: list, columns) -> None:
    """Grouped bars: one group per head, one bar per metric of ``columns`` (mean, std error bar)."""
    width = 0.8 / len(columns)
    for j, (metric, label) in enumerate(columns):
        values = [table_of_dataset[h].get(metric, [np.nan, 0.0])[:2] for h in heads]
        x = np.arange(len(heads)) + (j - (len(columns) - 1) / 2) * width
        axis.bar(x, [v[0] for v in values], width, yerr=[v[1] for v in values], label=label)
    axis.set_xticks(np.arange(len(heads)), heads, rotation=20)
    axis.set(ylim=(0, 1.05))
    axis.legend(fontsize=7, ncol=2)


def plot(table: dict, path: Path) -> None:
    """Per data set: the main heads' mAP/PG/mIoU, their localization (WSOL) metrics, and test mAP
    against k (the sweep). Metrics a results file lacks are left blank."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    datasets = list(table)
    fig, axes = plt.subplots(len(datasets), 3, figsize=(16, 3.4 * len(datasets)), squeeze=False)
    for row, dataset in enumerate(datasets):
        heads = [h for h in HEADS if h in table[dataset] and not h.startswith("k")]
        bars, localization, sweep = axes[row]
        _bars(bars, table[dataset], heads, MAIN_COLUMNS)
        bars.set(title=f"{dataset}: heads")
        wsol_columns = [c for c in LOCALIZATION_COLUMNS if c[0] not in ("pointing_game", "mIoU")]
        _bars(localization, table[dataset], heads, LOCALIZATION_COLUMNS)
        localization.set(title=f"{dataset}: localization")
        if not any(m in table[dataset][h] for h in heads for m, _ in wsol_columns):
            localization.text(
                0.5,
                0.5,
                "no WSOL metrics in this results file",
                ha="center",
                transform=localization.transAxes,
            )
        points = [
            (label, table[dataset][h]["test_mAP"]) for h, label in K_SWEEP if h in table[dataset]
        ]
        if points:
            sweep.errorbar(
                [p[0] for p in points],
                [p[1][0] for p in points],
                yerr=[p[1][1] for p in points],
                marker="o",
            )
        sweep.set(title=f"{dataset}: k⁺ = k⁻ = k, λ = 0.7", xlabel="k", ylabel="test mAP")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def _write_results(path: Path, runs: list[dict], args) -> dict:
    results = {
        "study": "negative_evidence",
        "quick": args.quick,
        "steps": args.steps,
        "seeds": sorted({r["seed"] for r in runs}),
        "table": summarize(runs),
        "runs": runs,
    }
    path.write_text(json.dumps(results, indent=2))
    return results


def replot(results_path: Path, png_path: Path | None = None) -> dict:
    """Re-tabulates and re-plots a results file without training (older files: "—" and blank bars
    for the metrics they lack); the plot goes beside it (``.png``) unless ``png_path`` is given.

        python -m experiments.negative_evidence --replot experiments/results/negative_evidence.json
    """
    results_path = Path(results_path)
    if not results_path.is_file():
        raise FileNotFoundError(
            f"--replot expects a negative_evidence results file, got {results_path}"
        )
    results = json.loads(results_path.read_text())
    results["table"] = summarize(results["runs"])
    plot(results["table"], png_path or results_path.with_suffix(".png"))
    return results


def _print_tables(table: dict) -> None:
    print(markdown_table(table))
    print("\nLocalization (test):\n")
    print(localization_tables(table))


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny data and budget (CI)")
    parser.add_argument("--datasets", nargs="+", default=list(DATASETS), choices=list(DATASETS))
    parser.add_argument("--heads", nargs="+", default=list(HEADS), choices=list(HEADS))
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--steps", type=int, default=500)
    parser.add_argument("--data-dir", default="~/.cache/wsl_jax/tfds")
    parser.add_argument(
        "--mnist-dir", default=None, help="MNIST IDX files (default: $WSL_JAX_MNIST_DIR)"
    )
    parser.add_argument(
        "--cifar-path", default=None, help="cifar10-jpg.tar.gz (default: $WSL_JAX_CIFAR10)"
    )
    parser.add_argument("--out", default="/tmp/negative_evidence", type=Path)
    parser.add_argument(
        "--replot",
        type=Path,
        default=None,
        help="a results file: print its tables and redraw its plot (beside it), no training",
    )
    args = parser.parse_args(argv)
    if args.replot is not None:
        results = replot(args.replot)
        _print_tables(results["table"])
        return results
    if args.quick and args.seeds == [0, 1, 2]:
        args.seeds = [0]
    from tqdm.auto import tqdm

    args.out.mkdir(parents=True, exist_ok=True)
    results_path = args.out / "negative_evidence.json"
    # Seed-major order: an interrupted study has every head on as many seeds as possible. Runs
    # already in the results file (same quick/steps) are kept, so re-running the command resumes.
    runs = _finished_runs(results_path, quick=args.quick, steps=args.steps)
    done = {(r["dataset"], r["head"], r["seed"]) for r in runs}
    jobs = [(d, h, s) for s in args.seeds for d in args.datasets for h in args.heads]
    for dataset, head, seed in tqdm([j for j in jobs if j not in done], desc="runs"):
        config = run_config(
            dataset,
            head,
            seed=seed,
            quick=args.quick,
            data_dir=str(Path(args.data_dir).expanduser()),
            mnist_dir=args.mnist_dir,
            cifar_path=args.cifar_path,
            steps=args.steps,
        )
        budget = f"quick{args.steps}" if args.quick else f"steps{args.steps}"
        result = _one_run(config, args.out / "runs" / f"{dataset}_{head}_seed{seed}_{budget}")
        runs.append({"dataset": dataset, "head": head, "seed": seed, **result})
        results = _write_results(results_path, runs, args)  # After every run: partial results.
    results = _write_results(results_path, runs, args)
    plot(results["table"], args.out / "negative_evidence.png")
    _print_tables(results["table"])
    return results


if __name__ == "__main__":
    wsl_jax.use_recommended_xla_flags()  # Before JAX starts a backend (convolutions on CPU).
    main()
