"""Does hard negative mining help zero-shot classification? (CIFAR-10, unseen cat and truck)

For every seed, CNN features are computed once (``configs/cifar10_zsl.py``: a small CNN trained on
the training classes) and shared by every negative scheme; the metric model is trained with each
scheme (``train_and_evaluate_zsl``, model selection and GZSL calibration on validation only), and
ESZSL is fitted on the same features (its ``γ``, ``λ`` chosen on validation; ``±1`` targets as in
Romera-Paredes and Torr, ``--eszsl-coding 01`` for one-hot ones). Both follow the GBU protocol
(:mod:`wsl_jax.zsl.protocol`): settings chosen with the validation classes, then refitted on all
seen classes and tested once. Writes
``<out>/results.json`` (every run, mean ± std per scheme, learning curves) and
``<out>/learning_curves.png`` (unseen test accuracy per epoch, logged for the plot only), copies
them to ``--results`` (default ``experiments/results/zsl_mining_<vectors>[_pairs].{json,png}``,
none with ``--quick``) and prints a Markdown table. ``<out>`` (default ``/tmp/wsl_jax_zsl_mining``)
also holds the feature files and the training workdirs; an interrupted study resumes from them.

    python -m experiments.zsl_mining --out /tmp/zslm/socher                 # the study
    python -m experiments.zsl_mining --class-vectors minilm --out /tmp/zslm/minilm \
        --features-dir /tmp/zslm/socher/features                            # same features
    python -m experiments.zsl_mining --pairs --seeds 0 --out /tmp/zslm/pairs  # 45 pairs
    python -m experiments.zsl_mining --quick --out /tmp/zsl_quick           # CI smoke run
    python -m experiments.zsl_mining --features efficientnet_lite0 --out /tmp/zslm/effnet

``--features efficientnet_lite0`` replaces the seen-class CNN by ImageNet-pretrained EfficientNet-Lite0
features (:mod:`experiments.cifar10_pretrained_features`; the 32×32 images upsampled to
``--image-size``): the 60,000 images are encoded once, cached as ``.npy`` in the features folder, and
every seed uses the same features. ImageNet-1k has classes close to the unseen cat and truck, so
these results are an upper bound, not zero-shot ones.

``--pairs`` repeats the study for each of the 45 unseen pairs of CIFAR-10 classes (no validation
classes then: selection on held-out seen images, no calibration) and averages over the pairs.
"""

from __future__ import annotations

import argparse
import functools
import itertools
import json
import time
from pathlib import Path

import ml_collections
import numpy as np

import wsl_jax
from configs import cifar10_zsl
from experiments.cifar10_pretrained_features import task_features
from wsl_jax.data.cifar_mosaic import CIFAR10_CLASSES
from wsl_jax.data.zsl_splits import trainval_task
from wsl_jax.data.zsl_tasks import load_task
from wsl_jax.train.zero_shot import train_and_evaluate_zsl
from wsl_jax.zsl import eszsl_fit, eszsl_scores
from wsl_jax.zsl.protocol import (
    calibrate_on_validation,
    metrics_on_test,
    validation_metric,
)

FEATURES = ("cnn", "efficientnet_lite0")
SCHEMES = ("uniform", "hard", "semi_hard", "uncertain", "correlated", "mixture", "bootstrap")
QUICK = {
    "data.max_train_examples": 400,
    "data.max_test_examples": 200,
    "features.epochs": 1,
    "features.widths": (8, 16),
    "features.feature_dim": 32,
    "features.batch_size": 32,
    "train.epochs": 2,
    "train.batch_size": 32,
}
ESZSL_GRID = tuple(10.0**k for k in range(-3, 3))


def _set(config, overrides):
    config.update_from_flattened_dict(overrides)
    return config


def _config(args, seed, scheme, unseen=None):
    config = _set(cifar10_zsl.get_config(), QUICK if args.quick else {})
    config.seed = seed
    config.progress_bar = False
    config.zsl.class_vectors = args.class_vectors
    config.zsl.scheme = scheme
    config.train.log_test_curve = True
    if unseen is not None:
        config.data.unseen_classes = unseen
        config.data.val_classes = ()
    if args.features_epochs:
        config.features.epochs = args.features_epochs
    if args.max_train_examples:
        config.data.max_train_examples = args.max_train_examples
    if args.cifar_path:
        config.data.dir = args.cifar_path
    if args.class_vectors_dir:
        config.data.class_vectors_dir = args.class_vectors_dir
    if args.features != "cnn":  # What the cached features depend on (load_task checks it).
        config.features = ml_collections.ConfigDict(
            {"backbone": args.features, "image_size": args.image_size}
        )
    return config


def _ensure_pretrained_features(args, config, workdir):
    """Writes the seed's feature file ``config.data.features_cache`` from the pretrained backbone's
    cached archive features, through ``load_task``'s ``cnn_features`` hook (the trainer then finds
    the file and never trains a CNN)."""
    hook = functools.partial(
        task_features,
        cache_dir=Path(config.data.features_cache).parent,
        backbone=args.features,
        image_size=args.image_size,
    )
    load_task(config, workdir, log=print, cnn_features=hook)


def _curve(workdir):
    lines = [json.loads(x) for x in (workdir / "metrics.jsonl").read_text().splitlines()]
    return [x["test_zsl_unseen_acc"] for x in lines if "test_zsl_unseen_acc" in x]


def run_eszsl(config, workdir, coding="pm1") -> dict:
    """ESZSL on the run's features, GBU protocol: ``γ``, ``λ`` (and the calibration) chosen on
    validation with a fit on the training classes, then refitted on all seen images and tested."""
    task = load_task(config, workdir, log=lambda *_: None)

    def fit(t, gamma, lam):
        y = np.searchsorted(t.train_classes, t.labels["train"])
        att = t.attributes[t.train_classes]
        return eszsl_fit(t.features["train"], y, att, gamma=gamma, lam=lam, coding=coding)

    def score(v, t, splits):
        return {s: np.asarray(eszsl_scores(v, t.features[s], t.attributes)) for s in splits}

    best = None
    for gamma, lam in itertools.product(ESZSL_GRID, ESZSL_GRID):
        scores = score(fit(task, gamma, lam), task, ("val_seen", "val_unseen"))
        _, value = validation_metric(task, scores)
        if best is None or value > best[0]:
            best = (value, gamma, lam, scores)
    value, gamma, lam, scores = best
    calibration, _ = calibrate_on_validation(task, scores)
    full = trainval_task(task)
    test = score(fit(full, gamma, lam), full, ("test_seen", "test_unseen"))
    return {
        "best_val_metric": value,
        "gamma": gamma,
        "lam": lam,
        "coding": coding,
        "protocol": "gbu",
        **metrics_on_test(full, test, calibration=calibration),
    }


def _command(args, scheme):
    flags = " --quick" if args.quick else ""
    flags += f" --class-vectors {args.class_vectors}" if args.class_vectors != "socher" else ""
    flags += " --pairs" if args.pairs else ""
    if args.features != "cnn":
        flags += f" --features {args.features} --image-size {args.image_size}"
    flags += f" --features-epochs {args.features_epochs}" if args.features_epochs else ""
    flags += f" --max-train-examples {args.max_train_examples}" if args.max_train_examples else ""
    flags += f" --features-dir {args.features_dir}" if args.features_dir else ""
    flags += " --eszsl-coding 01" if scheme == "eszsl" and args.eszsl_coding == "01" else ""
    seeds = " ".join(map(str, args.seeds))
    return f"python -m experiments.zsl_mining{flags} --seeds {seeds} --schemes {scheme}"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", default="/tmp/wsl_jax_zsl_mining")
    parser.add_argument("--results", default="", help="JSON/PNG path prefix to copy results to")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--schemes", nargs="+", default=list(SCHEMES) + ["eszsl"])
    parser.add_argument("--class-vectors", default="socher")
    parser.add_argument("--pairs", action="store_true", help="all 45 unseen pairs")
    parser.add_argument("--features-epochs", type=int, default=0)
    parser.add_argument("--max-train-examples", type=int, default=0)
    parser.add_argument("--features-dir", default="", help="feature cache (default <out>/features)")
    parser.add_argument(
        "--cifar-path", default="", help="cifar10-jpg.tar.gz (default: $WSL_JAX_CIFAR10)"
    )
    parser.add_argument(
        "--class-vectors-dir",
        default="",
        help="folder of the CIFAR-10 class vectors (default: $WSL_JAX_ZSL_CLASS_VECTORS)",
    )
    parser.add_argument(
        "--features",
        choices=FEATURES,
        default="cnn",
        help="cnn: a small CNN trained on the training classes per seed; efficientnet_lite0: "
        "ImageNet-pretrained features (not zero-shot: ImageNet has cat and truck classes)",
    )
    parser.add_argument(
        "--image-size",
        type=int,
        default=128,
        help="with a pretrained backbone: the size the 32x32 images are upsampled to",
    )
    parser.add_argument("--quick", action="store_true", help="tiny budget (CI)")
    parser.add_argument(
        "--eszsl-coding",
        choices=("pm1", "01"),
        default="pm1",
        help="ESZSL targets: pm1 (the paper's ±1) or 01 (one-hot)",
    )
    args = parser.parse_args(argv)
    if args.features != "cnn" and (args.quick or args.features_epochs):
        parser.error(
            f"--features {args.features} encodes all 60,000 images with a fixed network: "
            "--quick and --features-epochs are for the CNN features."
        )
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    pairs = list(itertools.combinations(CIFAR10_CLASSES, 2)) if args.pairs else [None]
    runs = []
    for seed, unseen in itertools.product(args.seeds, pairs):
        tag = f"seed{seed}" + ("" if unseen is None else "_" + "-".join(unseen))
        # One feature file per seed (and pair), shared by every scheme and by both class vectors.
        cache = Path(args.features_dir or out / "features") / f"{tag}.npz"
        for scheme in args.schemes:
            config = _config(args, seed, "hard" if scheme == "eszsl" else scheme, unseen)
            config.data.features_cache = str(cache)
            workdir = out / "runs" / scheme / tag
            if args.features != "cnn" and not cache.is_file():
                _ensure_pretrained_features(args, config, workdir)
            started = time.perf_counter()
            if scheme == "eszsl":
                if not cache.is_file():  # features come from a metric-model run otherwise
                    train_and_evaluate_zsl(config, workdir)
                result, curve = run_eszsl(config, workdir, args.eszsl_coding), []
            else:
                result, curve = train_and_evaluate_zsl(config, workdir), _curve(workdir)
            runs.append(
                {
                    "scheme": scheme,
                    "seed": seed,
                    "unseen": unseen,
                    "curve": curve,
                    "seconds": time.perf_counter() - started,
                    **{
                        k: result[k]
                        for k in ("zsl_unseen_acc", "gzsl", "calibration", "per_class_zsl")
                    },
                    **{k: result.get(k) for k in ("protocol", "ausuc", "selected_epoch")},
                    **({"coding": result["coding"]} if scheme == "eszsl" else {}),
                }
            )
            print(
                f"{tag} {scheme}: ZSL {result['zsl_unseen_acc']:.3f} H {result['gzsl']['H']:.3f}",
                flush=True,
            )
            table = _aggregate(runs, args)  # written after every run: partial results survive
            (out / "results.json").write_text(
                json.dumps({"args": vars(args), "table": table, "runs": runs}, indent=1)
            )
    _plot(runs, out / "learning_curves.png", args)
    results = args.results or (
        ""
        if args.quick
        else "experiments/results/zsl_mining_"
        + ("" if args.features == "cnn" else "effnet_")
        + args.class_vectors
        + ("_pairs" if args.pairs else "")
    )
    if results:
        Path(results).parent.mkdir(parents=True, exist_ok=True)
        Path(results + ".json").write_bytes((out / "results.json").read_bytes())
        Path(results + ".png").write_bytes((out / "learning_curves.png").read_bytes())
    print("| scheme | ZSL unseen acc. | GZSL H | GZSL u | GZSL s | AUSUC | command |")
    print("|---|---|---|---|---|---|---|")
    for row in table:
        print(
            f"| {row['scheme']} | {row['zsl']} | {row['H']} | {row['u']} | {row['s']} | "
            f"{row['ausuc']} | `{row['command']}` |"
        )
    return table


def _aggregate(runs, args):
    table = []
    for scheme in args.schemes:
        rows = [r for r in runs if r["scheme"] == scheme]
        if not rows:
            continue

        def stat(values):
            values = 100 * np.asarray(values)
            return f"{values.mean():.1f} ± {values.std():.1f}"

        table.append(
            {
                "scheme": scheme,
                "n": len(rows),
                "zsl": stat([r["zsl_unseen_acc"] for r in rows]),
                "H": stat([r["gzsl"]["H"] for r in rows]),
                "u": stat([r["gzsl"]["u"] for r in rows]),
                "s": stat([r["gzsl"]["s"] for r in rows]),
                "ausuc": stat([r["ausuc"] for r in rows]),
                "command": _command(args, scheme),
            }
        )
    return table


def _plot(runs, path, args):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    for scheme in args.schemes:
        curves = [r["curve"] for r in runs if r["scheme"] == scheme and r["curve"]]
        if not curves:
            continue
        length = min(len(c) for c in curves)
        mean = 100 * np.mean([c[:length] for c in curves], axis=0)
        ax.plot(np.arange(1, length + 1), mean, marker="o", markersize=3, label=scheme)
    ax.set_xlabel("epoch")
    ax.set_ylabel("unseen test accuracy (%), mean over runs")
    ax.set_title(
        f"CIFAR-10 zero-shot ({args.class_vectors} vectors)"
        + (", 45 pairs" if args.pairs else ", unseen cat/truck")
        + (
            ""
            if args.features == "cnn"
            else f"\non {args.features} ImageNet features (not zero-shot)"
        )
    )
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


if __name__ == "__main__":
    wsl_jax.use_recommended_xla_flags()  # Before JAX starts a backend (convolutions on CPU).
    main()
