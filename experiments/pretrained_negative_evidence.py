"""Study 1b: does negative evidence help on an ImageNet-pretrained backbone? Frozen features, many seeds.

The paper's regime: a pretrained backbone on real photographs. EfficientNet-Lite0 with the ImageNet
weights of the ``pretrained`` extra computes the 7×7×1280 stride-32 feature maps of every
``cifar_mosaic/large224`` canvas once (eval mode, no augmentation; 224×224 mosaics of 1–4 real
CIFAR-10 photographs, 2,000 train / 300 validation / 500 test, masks and boxes), cached in
``--cache`` (not in the repository). Only the WILDCAT head is trained on them (1×1 transfer layer
to ``C·M`` maps, ``M = 4``, class-wise mean, max+min pooling; multi-label soft margin; Adam), one
run per head and seed, with the same budget (``--steps`` batches of ``--batch-size``, validation
mAP every ``--eval-every`` steps, the best step kept: selection on validation only). Heads as in
:mod:`experiments.negative_evidence` (``HEADS``): ``gap``, ``gmp``, ``topk`` (k⁺ = 0.2),
``maxmin_0.5/0.7/1`` (k⁺ = k⁻ = 0.2), the k sweep ``k1`` / ``k0.05`` / ``k0.1`` / ``k0.4`` at
λ = 0.7 (a 7×7 map has 49 regions: 0.05 → 3 regions, 0.1 → 5, 0.2 → 10, 0.4 → 20).

The selected head is evaluated with the library's metrics, as ``evaluate.py`` does: class maps
upsampled bilinearly to 224 px and min-max normalised (``class_maps_to_heatmaps``), test mAP,
pointing game, pointwise localization, MaxBoxAccV2, GT-known localization and the segmentation
background threshold chosen on validation, PxAP and mIoU (``wsl_jax.train.evaluation``'s
``choose_thresholds`` and ``_localization_metrics`` on the same sums as its ``_scan_split``).
Paired differences (same seed) of max+min (λ = 0.7) against top-k, GMP and GAP.

Writes ``pretrained_negative_evidence.json`` (after every run: re-running the command resumes; a
later invocation with other ``--seeds`` / ``--heads`` adds to it) and ``.png`` under ``--out``.

    python -m experiments.pretrained_negative_evidence --cifar-path cifar10-jpg.tar.gz \\
        --data-dir /tmp/pre18_tfds --cache /tmp/pre18_features --out /tmp/pre18   # 50 runs
    python -m experiments.pretrained_negative_evidence --quick --out /tmp/pre18q  # CI: tiny

Example (the head of one run):

>>> head_module("k0.05", num_classes=10)
WSLHead(
    # attributes
    num_classes = 10
    num_maps = 4
    k_max = 0.05
    k_min = 0.05
    lam = 0.7
    convention = 'paper'
    dtype = float32
)
"""

from __future__ import annotations

import argparse
import functools
import json
import time
from pathlib import Path

import ml_collections
import numpy as np

import wsl_jax
from experiments.negative_evidence import HEADS, K_SWEEP

NUM_MAPS = 4
SPLITS = ("train", "val", "test")
FULL = {"name": "cifar_mosaic/large224", "image_size": (224, 224)}
QUICK = {"name": "cifar_mosaic/tiny", "image_size": (64, 64)}
METRICS = (  # name → path in the evaluation dict of a split.
    ("test_mAP", ("mAP",)),
    ("pointing_game", ("pointing_game", "mean_over_classes")),
    ("pointwise_loc", ("pointwise_localization", "mAP")),
    ("MaxBoxAccV2", ("wsol", "MaxBoxAccV2")),
    ("gt_known_loc", ("wsol", "gt_known_loc")),
    ("PxAP", ("wsol", "PxAP")),
    ("mIoU", ("segmentation", "mIoU")),
)
# Evaluation at 56×56 (8 px per cell of the 7×7 maps), the score-map threshold sweep in steps of 0.05
# and 9 background thresholds: at 224 px with evaluate.py's sweeps (0.01, 19) one run's evaluation
# takes ~50 min on the shared 2-core CPU (MaxBoxAcc ~50 s per 50 canvases).
EVAL_SIZE = 56
EVAL_CAM_INTERVAL = 0.05
EVAL_THRESHOLDS = tuple(np.round(np.arange(0.1, 0.91, 0.1), 2))
PAIRS = (("maxmin_0.7", "topk"), ("maxmin_0.7", "gmp"), ("maxmin_0.7", "gap"))


def data_config(*, quick: bool, data_dir: str, cifar_path) -> ml_collections.ConfigDict:
    """The ``config.data`` block of ``configs/cifar_mosaic_efficientnet.py`` on ``data_dir``."""
    from configs import cifar_mosaic_efficientnet

    data = cifar_mosaic_efficientnet.get_config().data
    data.update(QUICK if quick else FULL)
    data.dir = data_dir
    data.builder_kwargs = ml_collections.ConfigDict(
        {"cifar_path": str(cifar_path)} if cifar_path else {}
    )
    return data


def backbone_features(forward, source, data, *, batch_size: int = 50) -> dict:
    """``{"features": float16 (N, h, w, D), labels, boxes, …}`` of ``source`` in its order (no augmentation).

    ``forward(images) -> features`` is the backbone in eval mode; the other fields are the
    evaluation fields of ``make_eval_dataset``'s batches (the padding rows dropped).
    """
    from wsl_jax.data import make_eval_dataset
    from wsl_jax.data.catalog import pipeline_options

    fields: dict = {}
    for host in make_eval_dataset(
        source,
        batch_size=batch_size,
        image_size=tuple(data.image_size),
        **pipeline_options(data),
    ):
        valid = host["valid"]
        features = np.asarray(forward(host["image"]))[valid].astype(np.float16)
        fields.setdefault("features", []).append(features)
        for key in ("labels", "boxes", "label_per_box", "box_mask", "mask"):
            if key in host:
                fields.setdefault(key, []).append(np.asarray(host[key])[valid])
    return {k: np.concatenate(v) for k, v in fields.items()}


def cache_features(data, cache: Path, *, batch_size: int = 50, backbone=None) -> dict:
    """``{split: arrays}``: backbone features (float16) and the evaluation fields, computed once.

    A split already in ``cache`` (``<split>.npz``) is read back, not recomputed. ``backbone``:
    ``(module, variables)``; default EfficientNet-Lite0 with its packaged ImageNet weights.
    """
    import jax

    from wsl_jax.data.catalog import open_splits
    from wsl_jax.models import build_backbone, pretrained_variables

    cache.mkdir(parents=True, exist_ok=True)
    out, sources, forward = {}, None, None
    for split in SPLITS:
        path = cache / f"{split}.npz"
        if path.exists():
            out[split] = dict(np.load(path))
            continue
        if sources is None:
            sources = open_splits(data)
            if backbone is None:
                backbone = (
                    build_backbone("efficientnet_lite0"),
                    pretrained_variables("efficientnet_lite0"),
                )
            module, variables = backbone
            forward = jax.jit(functools.partial(module.apply, variables, train=False))
        started = time.perf_counter()
        out[split] = backbone_features(forward, sources[split], data, batch_size=batch_size)
        np.savez(path, **out[split])
        print(
            f"features of {split}: {out[split]['features'].shape} in "
            f"{time.perf_counter() - started:.0f} s",
            flush=True,
        )
    return out


def head_module(head: str, *, num_classes: int):
    """The WILDCAT head of ``head`` (``HEADS``: k⁺, k⁻, λ) with ``M = 4`` maps per class."""
    from wsl_jax.models import WSLHead

    if head not in HEADS:
        raise ValueError(f"head must be one of {sorted(HEADS)}, got {head!r}")
    k_max, k_min, lam = HEADS[head]
    return WSLHead(num_classes, num_maps=NUM_MAPS, k_max=k_max, k_min=k_min, lam=lam)


def train_head(
    module,
    train: dict,
    val: dict,
    *,
    seed: int,
    steps: int,
    batch_size: int,
    eval_every: int,
    learning_rate: float = 1e-3,
):
    """Adam on the multi-label soft margin; returns the parameters of the best validation mAP."""
    import jax
    import jax.numpy as jnp
    import optax

    from wsl_jax.losses import multilabel_soft_margin
    from wsl_jax.metrics import classification_metrics

    features = np.asarray(train["features"], np.float32)
    labels = np.asarray(train["labels"], np.float32)
    params = module.init(jax.random.key(seed), features[:1])
    optimizer = optax.adam(learning_rate)
    opt_state = optimizer.init(params)

    @jax.jit
    def step(
        params, opt_state, x, y
    ):  # Arrays as arguments: a closure would embed them as constants.
        def loss_fn(p):
            return multilabel_soft_margin(module.apply(p, x), y).mean()

        loss, grads = jax.value_and_grad(loss_fn)(params)
        updates, opt_state = optimizer.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, loss

    val_features = jnp.asarray(val["features"], jnp.float32)
    scores_of = jax.jit(module.apply)
    rng = np.random.default_rng(seed)
    order, position = rng.permutation(len(labels)), 0
    best = (-1.0, 0, params)
    for t in range(1, steps + 1):
        if position + batch_size > len(order):
            order, position = rng.permutation(len(labels)), 0
        index = order[position : position + batch_size]
        position += batch_size
        params, opt_state, _ = step(params, opt_state, features[index], labels[index])
        if t % eval_every == 0 or t == steps:
            scores = np.asarray(scores_of(params, val_features))
            val_map = classification_metrics(scores, val["labels"] > 0.5)["mAP"]
            if val_map > best[0]:
                best = (float(val_map), t, params)
    return best


def scan_split(
    module,
    params,
    arrays: dict,
    *,
    image_size,
    pointing_tolerance,
    pointwise_tolerance,
    cam_curve_interval=EVAL_CAM_INTERVAL,
    thresholds=EVAL_THRESHOLDS,
    batch_size: int = 50,
) -> dict:
    """The sums of ``wsl_jax.train.evaluation._scan_split`` over cached features (each example once)."""
    import jax

    from wsl_jax.localization import (
        boxes_to_pixels,
        class_maps_to_heatmaps,
        segmentation_from_heatmaps,
    )
    from wsl_jax.localization_metrics import (
        IOU_THRESHOLDS,
        cam_thresholds,
        confusion_matrix,
        maxboxacc_hits,
        pointing_game,
        pointwise_localization_hits,
        pxap_histograms,
    )

    predict = jax.jit(functools.partial(module.apply, return_maps=True))
    num_classes = arrays["labels"].shape[1]
    num_taus = len(cam_thresholds(cam_curve_interval))
    scores, point_hits, objects = [], [], []
    hits = np.zeros(num_classes, np.int64)
    totals = np.zeros(num_classes, np.int64)
    box_correct = np.zeros((len(IOU_THRESHOLDS), num_taus), np.int64)
    box_total = 0
    pixels = [np.zeros(num_taus + 2, np.int64), np.zeros(num_taus + 2, np.int64)]
    confusions = {t: np.zeros((num_classes + 1,) * 2, np.int64) for t in thresholds}
    for start in range(0, len(arrays["labels"]), batch_size):
        part = {k: v[start : start + batch_size] for k, v in arrays.items()}
        step = part["mask"].shape[1] // image_size[0]  # Masks at the evaluation size (nearest).
        part["mask"] = part["mask"][:, ::step, ::step]
        batch_scores, maps = predict(params, np.asarray(part["features"], np.float32))
        batch_scores = np.asarray(batch_scores)
        heat = np.asarray(class_maps_to_heatmaps(maps, tuple(image_size), normalize=True))
        present = part["labels"] > 0.5
        scores.append(batch_scores)
        boxes = boxes_to_pixels(part["boxes"], tuple(image_size))
        h, t = pointing_game(
            heat,
            boxes,
            part["label_per_box"],
            present,
            box_valid=part["box_mask"],
            tolerance=pointing_tolerance,
        )
        hits += np.asarray(h)
        totals += np.asarray(t)
        near, has_object = pointwise_localization_hits(
            heat,
            boxes,
            part["label_per_box"],
            box_valid=part["box_mask"],
            tolerance=pointwise_tolerance,
        )
        point_hits.append(np.asarray(near))
        objects.append(np.asarray(has_object))
        box_hits, scored = maxboxacc_hits(
            heat,
            boxes,
            part["label_per_box"],
            present,
            box_valid=part["box_mask"],
            cam_curve_interval=cam_curve_interval,
        )
        box_correct += box_hits[scored].sum(axis=0)
        box_total += int(scored.sum())
        for total, piece in zip(
            pixels,
            pxap_histograms(heat, part["mask"], present, cam_curve_interval=cam_curve_interval),
        ):
            total += np.asarray(piece)
        for threshold in thresholds:
            pred = segmentation_from_heatmaps(
                heat, class_mask=batch_scores > 0, background_threshold=threshold
            )
            confusions[threshold] += np.asarray(
                confusion_matrix(pred, part["mask"], num_classes=num_classes + 1)
            )
    return dict(  # noqa: C408  (the keys of evaluation._scan_split)
        scores=np.concatenate(scores),
        labels=arrays["labels"],
        where=None,
        hits=hits,
        totals=totals,
        point_hits=np.concatenate(point_hits),
        objects=np.concatenate(objects),
        box_correct=box_correct,
        box_correct_top1=box_correct,
        box_total=box_total,
        cam_curve_interval=cam_curve_interval,
        pixels=pixels,
        has_masks=True,
        confusions=confusions,
    )


def evaluate_head(
    module, params, val: dict, test: dict, *, image_size=(EVAL_SIZE, EVAL_SIZE)
) -> dict:
    """Test metrics of the selected head, thresholds chosen on validation (as ``evaluate_workdir``)."""
    from configs import cifar_mosaic_efficientnet
    from wsl_jax.metrics import classification_metrics
    from wsl_jax.train.evaluation import _localization_metrics, choose_thresholds

    side = min(image_size)
    options = {
        "image_size": image_size,
        # The recipe's 8 px at 224 px, scaled to the image; Oquab et al.'s 18 px at 224 px.
        "pointing_tolerance": cifar_mosaic_efficientnet.get_config().eval.pointing_tolerance
        * side
        / 224,
        "pointwise_tolerance": 18.0 * side / 224,
    }
    chosen = choose_thresholds(scan_split(module, params, val, **options))
    scan = scan_split(module, params, test, **options)
    out = classification_metrics(scan["scores"], scan["labels"] > 0.5)
    out.update(_localization_metrics(scan, chosen))
    out["wsol"].pop("top1_loc", None)  # Multi-label data: no top-1 localization.
    return out


def _get(tree: dict, path):
    for key in path:
        if not isinstance(tree, dict) or key not in tree:
            return None
        tree = tree[key]
    return float(tree)


def _metrics(run: dict, stage: str | None) -> dict:
    """The metrics of ``run``: the run itself, or its ``run[stage]`` block (e.g. ``"probe"``)."""
    return run if stage is None else run.get(stage) or {}


def summarize(runs: list[dict], stage: str | None = None) -> dict:
    """``{head: {metric: [mean, std, n]}}`` over the seeds (std with ddof=0).

    ``stage``: read the metrics of each run from ``run[stage]`` (a run with several evaluations).

    >>> summarize([{"head": "gap", "seed": 0, "test_mAP": 0.5}, {"head": "gap", "seed": 1, "test_mAP": 0.7}])
    {'gap': {'test_mAP': [0.6, 0.1, 2]}}
    """
    table: dict = {}
    for run in runs:
        row = table.setdefault(run["head"], {})
        values = _metrics(run, stage)
        for metric, _ in METRICS:
            if values.get(metric) is not None:
                row.setdefault(metric, []).append(values[metric])
    return {
        head: {
            m: [round(float(np.mean(v)), 6), round(float(np.std(v)), 6), len(v)]
            for m, v in row.items()
        }
        for head, row in table.items()
    }


def paired_differences(runs: list[dict], stage: str | None = None) -> dict:
    """``{"a − b": {metric: [mean, std, n better, n]}}`` over the seeds both heads ran (same seed).

    ``stage``: as in :func:`summarize`.

    >>> runs = [{"head": h, "seed": s, "test_mAP": v} for h, s, v in
    ...         [("maxmin_0.7", 0, 0.6), ("topk", 0, 0.5), ("maxmin_0.7", 1, 0.5), ("topk", 1, 0.6)]]
    >>> paired_differences(runs)["maxmin_0.7 − topk"]["test_mAP"]
    [0.0, 0.1, 1, 2]
    """
    by = {(r["head"], r["seed"]): _metrics(r, stage) for r in runs}
    out = {}
    for a, b in PAIRS:
        seeds = sorted(s for h, s in by if h == a and (b, s) in by)
        if not seeds:
            continue
        row = {}
        for metric, _ in METRICS:
            d = [
                by[a, s][metric] - by[b, s][metric]
                for s in seeds
                if by[a, s].get(metric) is not None and by[b, s].get(metric) is not None
            ]
            if d:
                row[metric] = [
                    round(float(np.mean(d)), 6),
                    round(float(np.std(d)), 6),
                    int(sum(x > 0 for x in d)),
                    len(d),
                ]
        out[f"{a} − {b}"] = row
    return out


def markdown_tables(table: dict, pairs: dict) -> str:
    """The per-head table (mean ± std over seeds) and the paired differences, in Markdown.

    An empty ``table`` leaves the per-head table out (the paired differences alone).

    >>> print(markdown_tables({"gap": {"test_mAP": [0.5, 0.01, 3]}}, {}).splitlines()[2])
    | gap | 3 | 0.500 ± 0.010 | – | – | – | – | – | – |
    """
    names = [m for m, _ in METRICS]
    lines = []
    if table:
        lines = ["| head | seeds | " + " | ".join(names) + " |", "|" + "---|" * (len(names) + 2)]
    for head in HEADS:
        if head in table:
            row = table[head]
            n = max(v[2] for v in row.values())
            cells = ["–" if m not in row else f"{row[m][0]:.3f} ± {row[m][1]:.3f}" for m in names]
            lines.append(f"| {head} | {n} | " + " | ".join(cells) + " |")
    if pairs:
        lines += [
            *([""] if lines else []),
            "| paired difference | " + " | ".join(names) + " |",
            "|" + "---|" * (len(names) + 1),
        ]
        for pair, row in pairs.items():
            cells = [
                "–"
                if m not in row
                else f"{row[m][0]:+.3f} ± {row[m][1]:.3f} ({row[m][2]}/{row[m][3]})"
                for m in names
            ]
            lines.append(f"| {pair} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def plot(table: dict, pairs: dict, path: Path) -> None:
    """Bars of the main heads' metrics, the k sweep (test mAP, mIoU), the paired differences."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (bars, sweep, diffs) = plt.subplots(1, 3, figsize=(17, 4))
    heads = [h for h in HEADS if h in table and not h.startswith("k")]
    shown = ("test_mAP", "pointing_game", "MaxBoxAccV2", "PxAP", "mIoU")
    width = 0.8 / len(shown)
    for j, metric in enumerate(shown):
        values = [table[h].get(metric, [np.nan, 0.0])[:2] for h in heads]
        x = np.arange(len(heads)) + (j - (len(shown) - 1) / 2) * width
        bars.bar(x, [v[0] for v in values], width, yerr=[v[1] for v in values], label=metric)
    bars.set_xticks(np.arange(len(heads)), heads, rotation=20)
    bars.set(title="frozen EfficientNet-Lite0: heads (mean ± std over seeds)", ylim=(0, 1.05))
    bars.legend(fontsize=7)
    for metric in ("test_mAP", "mIoU", "pointing_game"):
        points = [
            (label, table[h][metric]) for h, label in K_SWEEP if h in table and metric in table[h]
        ]
        if points:
            sweep.errorbar(
                [p[0] for p in points],
                [p[1][0] for p in points],
                yerr=[p[1][1] for p in points],
                marker="o",
                label=metric,
            )
    sweep.set(title="k⁺ = k⁻ = k, λ = 0.7 (49 regions)", xlabel="k")
    sweep.legend(fontsize=7)
    paired_difference_bars(diffs, list(pairs.items()), title="paired differences (same seed)")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def paired_difference_bars(ax, rows: list, *, title: str, fontsize: int = 7) -> None:
    """Grouped bars on ``ax``: one group per metric, one bar (mean ± std) per ``(label, row)``.

    ``row`` is a ``{metric: [mean, std, …]}`` of :func:`paired_differences`.
    """
    names = [m for m, _ in METRICS]
    width = 0.8 / max(len(rows), 1)
    for j, (label, row) in enumerate(rows):
        x = np.arange(len(names)) + (j - (len(rows) - 1) / 2) * width
        ax.bar(
            x,
            [row.get(m, [np.nan, 0])[0] for m in names],
            width,
            yerr=[row.get(m, [0, 0])[1] for m in names],
            label=label,
        )
    ax.axhline(0, color="k", lw=0.8)
    ax.set_xticks(np.arange(len(names)), names, rotation=25)
    ax.set(title=title)
    if rows:
        ax.legend(fontsize=fontsize)


def _budget(args) -> dict:
    return {
        "quick": args.quick,
        "steps": args.steps,
        "batch_size": args.batch_size,
        "eval_every": args.eval_every,
        "learning_rate": args.learning_rate,
    }


def _write(path: Path, runs: list[dict], args) -> dict:
    table, pairs = summarize(runs), paired_differences(runs)
    results = {
        "study": "pretrained_negative_evidence",
        "budget": _budget(args),
        "seeds": sorted({r["seed"] for r in runs}),
        "table": table,
        "paired_differences": pairs,
        "runs": runs,
    }
    path.write_text(json.dumps(results, indent=2))
    return results


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny data and budget (CI)")
    parser.add_argument("--heads", nargs="+", default=list(HEADS), choices=list(HEADS))
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--steps", type=int, default=600)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--eval-every", type=int, default=100)
    parser.add_argument("--learning-rate", type=float, default=1e-3)
    parser.add_argument("--data-dir", default="~/.cache/wsl_jax/tfds")
    parser.add_argument(
        "--cifar-path", default=None, help="cifar10-jpg.tar.gz (default: $WSL_JAX_CIFAR10)"
    )
    parser.add_argument(
        "--cache", type=Path, default=None, help="feature cache (default: OUT/features)"
    )
    parser.add_argument("--out", default="/tmp/pretrained_negative_evidence", type=Path)
    args = parser.parse_args(argv)
    if args.quick:
        args.steps, args.eval_every, args.batch_size = 4, 2, 4
        if args.seeds == [0, 1, 2, 3, 4]:
            args.seeds = [0]
    args.out.mkdir(parents=True, exist_ok=True)
    data = data_config(
        quick=args.quick, data_dir=str(Path(args.data_dir).expanduser()), cifar_path=args.cifar_path
    )
    arrays = cache_features(data, args.cache or args.out / "features")
    results_path = args.out / "pretrained_negative_evidence.json"
    runs = []
    if results_path.exists():
        saved = json.loads(results_path.read_text())
        if saved["budget"] != _budget(args):
            raise ValueError(
                f"--out {args.out} holds results of another budget {saved['budget']}; "
                f"use another --out for {_budget(args)}"
            )
        runs = saved["runs"]
    done = {(r["head"], r["seed"]) for r in runs}
    num_classes = arrays["train"]["labels"].shape[1]
    # Seed-major: an interrupted study has every head on as many seeds as possible.
    for seed in args.seeds:
        for head in args.heads:
            if (head, seed) in done:
                continue
            started = time.perf_counter()
            module = head_module(head, num_classes=num_classes)
            val_map, best_step, params = train_head(
                module,
                arrays["train"],
                arrays["val"],
                seed=seed,
                steps=args.steps,
                batch_size=args.batch_size,
                eval_every=args.eval_every,
                learning_rate=args.learning_rate,
            )
            size = data.image_size[0] if args.quick else EVAL_SIZE
            test = evaluate_head(
                module, params, arrays["val"], arrays["test"], image_size=(size, size)
            )
            run = {"head": head, "seed": seed, "val_mAP": val_map, "best_step": best_step}
            run.update({metric: _get(test, where) for metric, where in METRICS})
            run["seconds"] = round(time.perf_counter() - started, 1)
            runs.append(run)
            print(json.dumps(run), flush=True)
            _write(results_path, runs, args)  # After every run: partial results.
    results = _write(results_path, runs, args)
    plot(
        results["table"],
        results["paired_differences"],
        args.out / "pretrained_negative_evidence.png",
    )
    print(markdown_tables(results["table"], results["paired_differences"]))
    return results


if __name__ == "__main__":
    wsl_jax.use_recommended_xla_flags()  # Before JAX starts a backend (convolutions on CPU).
    main()
