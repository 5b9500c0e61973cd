"""Study 3: the structured AP ranking loss against the multi-label soft margin, same model and data.

Both objectives train the embedded default (``configs/digits_weldon.py``: small CNN, max+min pooling,
``cluttered_digits``) with the same batch, steps, optimiser and seeds; only ``config.loss`` differs.
Each run selects its parameters on validation and reports test mAP once. Writes a JSON of every run
and a PNG (validation mAP against step per objective, and test mAP per seed).

    python -m experiments.ranking                      # full study: 3 seeds × 2 objectives
    python -m experiments.ranking --quick --out /tmp/r # CI: tiny data set, a few steps

Example (the pieces, without training):

>>> config = study_config("ap_ranking", seed=1, quick=True, data_dir="/tmp/tfds")
>>> config.loss, config.seed, config.train.steps
('ap_ranking', 1, 6)
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

import wsl_jax
from configs import digits_weldon

OBJECTIVES = ("multilabel_soft_margin", "ap_ranking")
QUICK = {
    "data.name": "cluttered_digits/tiny",
    "data.image_size": (32, 32),
    "model.backbone_kwargs.widths": (8, 16),
    "train.steps": 6,
    "train.batch_size": 8,
    "train.log_every": 2,
    "train.eval_every": 3,
    "train.checkpoint_every": 6,
    "eval.batch_size": 8,
}


def study_config(
    loss: str, *, seed: int, quick: bool, data_dir: str, steps: int = 1000, batch_size: int = 64
):
    """The default config with ``loss`` and ``seed``; the same budget for every objective."""
    config = digits_weldon.get_config()
    config.progress_bar = False
    config.loss = loss
    config.seed = seed
    config.data.dir = data_dir
    config.train.steps = steps
    config.train.batch_size = batch_size
    config.train.eval_every = max(steps // 10, 1)
    config.train.checkpoint_every = steps
    if quick:
        config.update_from_flattened_dict(QUICK)
    return config


def _val_curve(workdir: Path) -> list[tuple[int, float]]:
    lines = [json.loads(line) for line in (workdir / "metrics.jsonl").read_text().splitlines()]
    return [(line["step"], line["val_mAP"]) for line in lines if "val_mAP" in line]


def run_study(out: Path, *, seeds, quick: bool, data_dir: str, steps: int, batch_size: int) -> dict:
    """Trains every (objective, seed) in ``out/runs`` and returns the results dict."""
    from tqdm.auto import tqdm

    from wsl_jax.train import train_and_evaluate

    runs = []
    jobs = [(loss, seed) for seed in seeds for loss in OBJECTIVES]
    for loss, seed in tqdm(jobs, desc="runs"):
        config = study_config(
            loss, seed=seed, quick=quick, data_dir=data_dir, steps=steps, batch_size=batch_size
        )
        workdir = out / "runs" / f"{loss}_seed{seed}"
        started = time.perf_counter()
        summary = train_and_evaluate(config, workdir)
        runs.append(
            {
                "loss": loss,
                "seed": seed,
                "test_mAP": summary["test_mAP"],
                "best_val_mAP": summary["best_val_mAP"],
                "best_step": summary["best_step"],
                "val_curve": _val_curve(workdir),
                "seconds": time.perf_counter() - started,
            }
        )
    table = {}
    for loss in OBJECTIVES:
        test = np.array([r["test_mAP"] for r in runs if r["loss"] == loss])
        table[loss] = {
            "test_mAP_mean": float(test.mean()),
            "test_mAP_std": float(test.std(ddof=0)),
            "seeds": len(test),
        }
    return {
        "study": "ranking",
        "quick": quick,
        "steps": steps,
        "batch_size": batch_size,
        "seeds": list(seeds),
        "table": table,
        "runs": runs,
    }


def plot(results: dict, path: Path) -> None:
    """Validation mAP against step per run, and test mAP per seed, one colour per objective."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (curves, bars) = plt.subplots(1, 2, figsize=(9, 3.5))
    colours = dict(zip(OBJECTIVES, ("tab:blue", "tab:orange"), strict=True))
    for run in results["runs"]:
        steps, values = zip(*run["val_curve"], strict=True)
        curves.plot(
            steps,
            values,
            color=colours[run["loss"]],
            alpha=0.7,
            label=run["loss"] if run["seed"] == results["seeds"][0] else None,
        )
    curves.set(xlabel="step", ylabel="validation mAP", title="learning curves")
    curves.legend()
    for i, loss in enumerate(OBJECTIVES):
        values = [r["test_mAP"] for r in results["runs"] if r["loss"] == loss]
        bars.bar(i, np.mean(values), yerr=np.std(values), color=colours[loss], alpha=0.6)
        bars.scatter([i] * len(values), values, color="k", s=12, zorder=3)
    bars.set_xticks(range(len(OBJECTIVES)), OBJECTIVES)
    bars.set(ylabel="test mAP", title="selected on validation")
    lows = [r["test_mAP"] for r in results["runs"]]
    bars.set_ylim(max(0.0, min(lows) - 0.05), min(1.0, max(lows) + 0.02))
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny data set and budget (CI)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--data-dir", default="~/.cache/wsl_jax/tfds")
    parser.add_argument("--out", default="experiments/results/ranking", type=Path)
    args = parser.parse_args(argv)
    if args.quick and args.seeds == [0, 1, 2]:
        args.seeds = [0]
    args.out.mkdir(parents=True, exist_ok=True)
    results = run_study(
        args.out,
        seeds=args.seeds,
        quick=args.quick,
        data_dir=args.data_dir,
        steps=args.steps,
        batch_size=args.batch_size,
    )
    (args.out / "ranking.json").write_text(json.dumps(results, indent=2))
    plot(results, args.out / "ranking.png")
    for loss, row in results["table"].items():
        print(
            f"{loss:>24}: test mAP {row['test_mAP_mean']:.4f} ± {row['test_mAP_std']:.4f} "
            f"({row['seeds']} seeds)"
        )
    return results


if __name__ == "__main__":
    wsl_jax.use_recommended_xla_flags()  # Before JAX starts a backend (convolutions on CPU).
    main()
