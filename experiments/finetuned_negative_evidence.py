"""Study 1c: negative evidence with a fine-tuned ImageNet backbone (linear probe, then fine-tuning).

§1b (:mod:`experiments.pretrained_negative_evidence`) trains only the WILDCAT head on frozen
EfficientNet-Lite0 features. Here every (head, seed) run goes on to fine-tune the whole network, in
the standard LP-FT order (linear probe, then fine-tuning: the new head is fitted first so that its
random initialisation does not distort the pretrained features in the first steps):

1. **Probe**: the head trained on the cached frozen 7×7×1280 features of ``cifar_mosaic/large224``
   exactly as §1b (``train_head``, same budget flags, same ``--cache``, selection on validation),
   evaluated with §1b's ``evaluate_head`` (56-px protocol): the ``probe`` block of the run.
2. **Fine-tuning**: ``WSLNet`` = EfficientNet-Lite0 with the packaged ImageNet weights + the probed
   head, as ``configs/cifar_mosaic_efficientnet.py`` builds it (``build_backbone``,
   ``pretrained_variables``), trained ``--ft-steps`` steps of ``--ft-batch-size`` images on the
   recipe's pipeline (``make_train_dataset``: random flips, 8-pixel pad-and-crop, the weights'
   input scaling) with the recipe's optimizer (``make_optimizer``: Adam, weight decay 1e-5, cosine
   schedule with the recipe's 5 % warm-up, backbone at 0.1× the learning rate). Validation mAP
   (the whole network on the 300 validation canvases) before fine-tuning, every
   ``--ft-eval-every`` steps and at the end; the best on validation is kept (step 0, the probe,
   included: selection on validation only). The kept network's features of validation and test
   are then computed and its head evaluated with ``evaluate_head``: the ``finetuned`` block, on the
   same protocol as the probe and §1b's table.

**BatchNorm: frozen (eval mode).** The backbone's BatchNorm layers use their ImageNet running
statistics during fine-tuning (``train=False``; their scale and offset are still trained). With 16
images per step, batch statistics are noisy (the last stages see 16 × 7 × 7 positions), and the
mosaics (mostly noisy gray background) are not ImageNet photographs, so train-mode BN would
shift every feature at the first step: the probed head would then sit on features other than those
it was fitted on, undoing the point of LP-FT. Frozen statistics are the usual choice for
small-batch fine-tuning (detection and segmentation fine-tune with frozen BN for this reason) and
make step 0 exactly the probe (the ``val_mAP_step0`` of a run equals the probe's ``val_mAP`` up to
the float16 of the cache).

Cost, measured on the 2-core CPU while another job kept one core busy (topk, seed 0): probe
31 s (600 steps on the cache and its evaluation), fine-tuning step of 16 images at 224 px 3.9 s
(the first, which compiles, ~40 s more), validation pass (300 canvases) 7.6 s, test features (500)
10 s, ``evaluate_head`` of the fine-tuned head 10 s: 353 s per run with the defaults (60 steps,
validation at 0, 20, 40, 60). Frozen BN does not make the step cheaper than train-mode BN here
(both ≈ 3–4 s), so the choice is made for the reason above, not for speed. Each run is appended to
``finetuned_negative_evidence.json`` under ``--out`` when it ends (re-running the command resumes,
skipping finished runs; a different budget is refused; a later invocation with other ``--heads`` /
``--seeds`` adds to it); the summaries (mean ± std per head for the probe and the fine-tuned
network, paired differences max+min − top-k / GMP / GAP with the count of seeds where max+min is
better, the gain of fine-tuning over the probe per head) and a plot (``.png``) are rewritten each
time.

    export WSL_JAX_CIFAR10=/path/to/cifar10-jpg.tar.gz
    python -m experiments.finetuned_negative_evidence --heads topk maxmin_0.7 --seeds 0 1 2 \\
        --data-dir /tmp/ft18_tfds --cache /tmp/ft18_features --out /tmp/ft18      # the main comparison
    python -m experiments.finetuned_negative_evidence --heads gmp gap --seeds 0 1 2 \\
        --data-dir /tmp/ft18_tfds --cache /tmp/ft18_features --out /tmp/ft18      # adds GMP and GAP
    python -m experiments.finetuned_negative_evidence --quick --out /tmp/ft18q       # tiny data, 2 steps

(the feature cache is §1b's: the same ``--cache`` directory serves both studies.)

Example (the recipe's optimizer for a 60-step fine-tuning: 3 warm-up steps, 5 % as the recipe's 20 of 400):

>>> warmup_steps(60), warmup_steps(400), warmup_steps(2)
(3, 20, 1)
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

import wsl_jax
from experiments import pretrained_negative_evidence as pre
from experiments.negative_evidence import HEADS

BACKBONE = "efficientnet_lite0"
STAGES = ("probe", "finetuned")
STAGE_LABELS = {"probe": "probe (frozen)", "finetuned": "fine-tuned"}


def backbone_with_weights():
    """``(module, variables)``: EfficientNet-Lite0 and its packaged ImageNet weights (the recipe's)."""
    from wsl_jax.models import build_backbone, pretrained_variables

    return build_backbone(BACKBONE), pretrained_variables(BACKBONE)


def warmup_steps(steps: int) -> int:
    """The recipe's warm-up (``optimizer.warmup_steps`` of ``train.steps``) scaled to ``steps``."""
    from configs import cifar_mosaic_efficientnet

    recipe = cifar_mosaic_efficientnet.get_config()
    return max(1, round(recipe.optimizer.warmup_steps * steps / recipe.train.steps))


def recipe_optimizer(steps: int, learning_rate: float | None = None):
    """``make_optimizer`` of the recipe's ``optimizer`` block (backbone at 0.1×) over ``steps`` steps."""
    from configs import cifar_mosaic_efficientnet
    from wsl_jax.train.optim import make_optimizer

    config = cifar_mosaic_efficientnet.get_config().optimizer
    if learning_rate is not None:
        config.learning_rate = learning_rate
    config.warmup_steps = warmup_steps(steps)
    return make_optimizer(config, steps)


def _val_map(scores, arrays) -> float:
    from wsl_jax.metrics import classification_metrics

    return float(classification_metrics(np.asarray(scores), arrays["labels"] > 0.5)["mAP"])


def finetune(
    head,
    head_params,
    backbone,
    sources: dict,
    arrays: dict,
    data,
    *,
    seed: int,
    steps: int,
    batch_size: int,
    eval_every: int,
    learning_rate: float | None = None,
    eval_batch_size: int = 50,
) -> dict:
    """Fine-tunes ``WSLNet(backbone, head)`` from the probed ``head_params``; BatchNorm frozen.

    ``backbone``: ``(module, variables)``; ``sources``: the splits of ``open_splits``; ``arrays``:
    the cached features and evaluation fields (their ``labels`` / ``boxes`` / ``mask`` go with the
    recomputed features). Returns ``{"val_mAP", "best_step", "curve": [[step, val mAP], …],
    "val", "test"}`` with ``val`` / ``test`` the arrays of the selected network (its features),
    and the timings.
    """
    import jax
    import optax

    from wsl_jax.data import make_train_dataset
    from wsl_jax.data.catalog import pipeline_options
    from wsl_jax.models import WSLNet
    from wsl_jax.train.objectives import make_objective

    module, variables = backbone
    model = WSLNet(backbone=module, head=head)
    params = {"backbone": variables["params"], "head": head_params["params"]}
    batch_stats = {"backbone": variables.get("batch_stats", {})}
    tx = recipe_optimizer(steps, learning_rate)
    opt_state = tx.init(params)
    objective = make_objective("multilabel_soft_margin")

    @jax.jit
    def train_step(params, batch_stats, opt_state, images, labels, valid):
        def loss_fn(p):  # Eval-mode BatchNorm: the ImageNet statistics, not the batch's.
            scores = model.apply({"params": p, "batch_stats": batch_stats}, images, train=False)
            return objective(scores, labels, valid)

        loss, grads = jax.value_and_grad(loss_fn)(params)
        updates, opt_state = tx.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, loss

    @jax.jit
    def features_of(params, batch_stats, images):
        return module.apply(
            {"params": params["backbone"], "batch_stats": batch_stats["backbone"]},
            images,
            train=False,
        )

    scores_of = jax.jit(head.apply)

    def split_arrays(params, split):
        started = time.perf_counter()
        computed = pre.backbone_features(
            lambda images: features_of(params, batch_stats, images),
            sources[split],
            data,
            batch_size=eval_batch_size,
        )
        if not np.array_equal(computed["labels"], arrays[split]["labels"]):
            raise ValueError(
                f"the feature cache's {split} split is not this data set's; rebuild it"
            )
        return {**arrays[split], "features": computed["features"]}, time.perf_counter() - started

    def validate(params):
        val, seconds = split_arrays(params, "val")
        scores = scores_of({"params": params["head"]}, np.asarray(val["features"], np.float32))
        return _val_map(scores, val), val, seconds

    batches = iter(
        make_train_dataset(
            sources["train"],
            batch_size=batch_size,
            seed=seed,
            random_flip=data.random_flip,
            crop_padding=data.crop_padding,
            image_size=tuple(data.image_size),
            **pipeline_options(data),
        )
    )
    val_map, val, eval_seconds = validate(params)
    curve = [[0, round(val_map, 6)]]
    print(f"  fine-tuning step 0: val mAP {val_map:.4f} ({eval_seconds:.0f} s)", flush=True)
    host = lambda tree: jax.tree.map(np.asarray, tree)
    best = {"val_mAP": val_map, "best_step": 0, "params": host(params), "val": val}
    step_seconds, evals = [], [eval_seconds]
    for t in range(1, steps + 1):
        batch = next(batches)
        started = time.perf_counter()
        params, opt_state, loss = train_step(
            params, batch_stats, opt_state, batch["image"], batch["labels"], batch["valid"]
        )
        loss = float(loss)
        step_seconds.append(time.perf_counter() - started)
        if not np.isfinite(loss):
            raise FloatingPointError(f"fine-tuning loss {loss} at step {t}")
        if t % eval_every == 0 or t == steps:
            val_map, val, seconds = validate(params)
            evals.append(seconds)
            curve.append([t, round(val_map, 6)])
            print(
                f"  fine-tuning step {t}: loss {loss:.4f}, val mAP {val_map:.4f} "
                f"({np.mean(step_seconds[1:] or step_seconds):.1f} s/step, eval {seconds:.0f} s)",
                flush=True,
            )
            if val_map > best["val_mAP"]:
                best = {"val_mAP": val_map, "best_step": t, "params": host(params), "val": val}
    test, test_seconds = split_arrays(best["params"], "test")
    start, end = variables["params"], best["params"]["backbone"]
    moved = sum(
        float(np.sum((np.asarray(b) - np.asarray(a)) ** 2))
        for a, b in zip(jax.tree.leaves(start), jax.tree.leaves(end))
    )
    norm = sum(float(np.sum(np.asarray(a) ** 2)) for a in jax.tree.leaves(start))
    return {
        # ‖Δθ‖ / ‖θ‖ of the selected backbone's parameters (0 when step 0, the probe, is kept).
        "backbone_change": float(np.sqrt(moved / max(norm, 1e-30))),
        "val_mAP": best["val_mAP"],
        "best_step": best["best_step"],
        "curve": curve,
        "head_params": {"params": best["params"]["head"]},
        "val": best["val"],
        "test": test,
        # The first step compiles: the step time is the mean of the others.
        "step_seconds": round(float(np.mean(step_seconds[1:] or step_seconds)), 2),
        "eval_seconds": round(float(np.mean(evals)), 1),
        "test_features_seconds": round(test_seconds, 1),
    }


def gains(runs: list[dict]) -> dict:
    """``{"head: fine-tuned − probe": {metric: [mean, std, n better, n]}}`` (same run).

    >>> runs = [{"head": "gap", "seed": s, "probe": {"test_mAP": p}, "finetuned": {"test_mAP": f}}
    ...         for s, p, f in [(0, 0.5, 0.6), (1, 0.6, 0.6)]]
    >>> gains(runs)
    {'gap: fine-tuned − probe': {'test_mAP': [0.05, 0.05, 1, 2]}}
    """
    out = {}
    for head in HEADS:
        mine = [r for r in runs if r["head"] == head]
        row = {}
        for metric, _ in pre.METRICS:
            d = [
                r["finetuned"][metric] - r["probe"][metric]
                for r in mine
                if r["finetuned"].get(metric) is not None and r["probe"].get(metric) is not None
            ]
            if d:
                row[metric] = [
                    round(float(np.mean(d)), 6),
                    round(float(np.std(d)), 6),
                    int(sum(x > 0 for x in d)),
                    len(d),
                ]
        if row:
            out[f"{head}: fine-tuned − probe"] = row
    return out


def markdown(results: dict) -> str:
    """The per-head tables and paired differences of both stages, and the fine-tuning gains."""
    parts = []
    for stage in STAGES:
        parts += [
            f"**{STAGE_LABELS[stage]}**",
            "",
            pre.markdown_tables(results["table"][stage], results["paired_differences"][stage]),
            "",
        ]
    parts += ["**gain of fine-tuning**", "", pre.markdown_tables({}, results["gains"])]
    return "\n".join(parts)


def plot(runs: list[dict], results: dict, path: Path) -> None:
    """Per head: probe vs fine-tuned bars (mean) with the seeds as dots; the paired differences."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    shown = ("test_mAP", "MaxBoxAccV2", "mIoU")
    fig, axes = plt.subplots(1, len(shown) + 1, figsize=(5 * (len(shown) + 1), 4))
    heads = [h for h in HEADS if any(r["head"] == h for r in runs)]
    width = 0.38
    for ax, metric in zip(axes, shown):
        for j, stage in enumerate(STAGES):
            x = np.arange(len(heads)) + (j - 0.5) * width
            values = [
                [
                    r[stage][metric]
                    for r in runs
                    if r["head"] == h and r[stage].get(metric) is not None
                ]
                for h in heads
            ]
            ax.bar(
                x,
                [np.mean(v) if v else np.nan for v in values],
                width,
                label=STAGE_LABELS[stage],
                color=f"C{j}",
                alpha=0.6,
            )
            for xi, v in zip(x, values):
                ax.plot([xi] * len(v), v, "k.", ms=5)
        ax.set_xticks(np.arange(len(heads)), heads, rotation=20)
        ax.set(title=f"{metric} (bars: mean; dots: seeds)")
        ax.legend(fontsize=7)
    bars = [
        (f"{pair} ({'FT' if stage == 'finetuned' else 'probe'})", row)
        for stage in STAGES
        for pair, row in results["paired_differences"][stage].items()
    ]
    pre.paired_difference_bars(
        axes[-1], bars, title="paired differences (same seed), mean ± std", fontsize=6
    )
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def _budget(args) -> dict:
    return {
        "quick": args.quick,
        "probe": {
            "steps": args.steps,
            "batch_size": args.batch_size,
            "eval_every": args.eval_every,
            "learning_rate": args.learning_rate,
        },
        "finetune": {
            "steps": args.ft_steps,
            "batch_size": args.ft_batch_size,
            "eval_every": args.ft_eval_every,
            "learning_rate": args.ft_learning_rate,
            "batch_norm": "frozen",
        },
    }


def _write(path: Path, runs: list[dict], args) -> dict:
    results = {
        "study": "finetuned_negative_evidence",
        "budget": _budget(args),
        "seeds": sorted({r["seed"] for r in runs}),
        "table": {stage: pre.summarize(runs, stage) for stage in STAGES},
        "paired_differences": {stage: pre.paired_differences(runs, stage) for stage in STAGES},
        "gains": gains(runs),
        "runs": runs,
    }
    path.write_text(json.dumps(results, indent=2))
    return results


def one_run(head_name: str, seed: int, *, arrays, sources, backbone, data, args, eval_size) -> dict:
    """The probe and the fine-tuning of one (head, seed): the record written to the results."""
    started = time.perf_counter()
    num_classes = arrays["train"]["labels"].shape[1]
    head = pre.head_module(head_name, num_classes=num_classes)
    probe_val, probe_step, head_params = pre.train_head(
        head,
        arrays["train"],
        arrays["val"],
        seed=seed,
        steps=args.steps,
        batch_size=args.batch_size,
        eval_every=args.eval_every,
        learning_rate=args.learning_rate,
    )
    image_size = (eval_size, eval_size)
    probe_test = pre.evaluate_head(
        head, head_params, arrays["val"], arrays["test"], image_size=image_size
    )
    probe = {"val_mAP": probe_val, "best_step": probe_step}
    probe.update({metric: pre._get(probe_test, where) for metric, where in pre.METRICS})
    probe_seconds = time.perf_counter() - started
    print(f"{head_name} seed {seed}: probe {json.dumps(probe)}", flush=True)

    tuned = finetune(
        head,
        head_params,
        backbone,
        sources,
        arrays,
        data,
        seed=seed,
        steps=args.ft_steps,
        batch_size=args.ft_batch_size,
        eval_every=args.ft_eval_every,
        learning_rate=args.ft_learning_rate,
    )
    started_eval = time.perf_counter()
    tuned_test = pre.evaluate_head(
        head, tuned["head_params"], tuned["val"], tuned["test"], image_size=image_size
    )
    finetuned = {"val_mAP": tuned["val_mAP"], "best_step": tuned["best_step"]}
    finetuned.update({metric: pre._get(tuned_test, where) for metric, where in pre.METRICS})
    return {
        "head": head_name,
        "seed": seed,
        "probe": probe,
        "finetuned": finetuned,
        "val_mAP_step0": tuned["curve"][0][1],
        "val_mAP_curve": tuned["curve"],
        "best_step": tuned["best_step"],
        "backbone_change": tuned["backbone_change"],
        "timing": {
            "probe_seconds": round(probe_seconds, 1),
            "ft_step_seconds": tuned["step_seconds"],
            "ft_val_pass_seconds": tuned["eval_seconds"],
            "test_features_seconds": tuned["test_features_seconds"],
            "evaluate_head_seconds": round(time.perf_counter() - started_eval, 1),
        },
        "seconds": round(time.perf_counter() - started, 1),
    }


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny data and budget (CI)")
    parser.add_argument(
        "--heads", nargs="+", default=["topk", "maxmin_0.7", "gmp", "gap"], choices=list(HEADS)
    )
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--steps", type=int, default=600, help="probe steps (as §1b)")
    parser.add_argument("--batch-size", type=int, default=32, help="probe batch (as §1b)")
    parser.add_argument("--eval-every", type=int, default=100, help="probe validation (as §1b)")
    parser.add_argument("--learning-rate", type=float, default=1e-3, help="probe Adam lr (as §1b)")
    parser.add_argument("--ft-steps", type=int, default=60)
    parser.add_argument("--ft-batch-size", type=int, default=16)
    parser.add_argument("--ft-eval-every", type=int, default=20)
    parser.add_argument(
        "--ft-learning-rate",
        type=float,
        default=None,
        help="head lr of the fine-tuning (backbone 0.1×); default the recipe's 1e-3",
    )
    parser.add_argument("--data-dir", default="~/.cache/wsl_jax/tfds")
    parser.add_argument(
        "--cifar-path", default=None, help="cifar10-jpg.tar.gz (default: $WSL_JAX_CIFAR10)"
    )
    parser.add_argument(
        "--cache", type=Path, default=None, help="§1b's feature cache (default: OUT/features)"
    )
    parser.add_argument("--out", default="/tmp/finetuned_negative_evidence", type=Path)
    args = parser.parse_args(argv)
    if args.quick:
        args.steps, args.eval_every, args.batch_size = 4, 2, 4
        args.ft_steps, args.ft_eval_every, args.ft_batch_size = 2, 1, 4
        if args.seeds == [0, 1, 2]:
            args.seeds = [0]
    args.out.mkdir(parents=True, exist_ok=True)
    results_path = args.out / "finetuned_negative_evidence.json"
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
    todo = [(h, s) for s in args.seeds for h in args.heads if (h, s) not in done]  # Seed-major.
    if todo:
        from wsl_jax.data.catalog import open_splits

        data = pre.data_config(
            quick=args.quick,
            data_dir=str(Path(args.data_dir).expanduser()),
            cifar_path=args.cifar_path,
        )
        backbone = backbone_with_weights()
        arrays = pre.cache_features(data, args.cache or args.out / "features", backbone=backbone)
        sources = open_splits(data)
        eval_size = data.image_size[0] if args.quick else pre.EVAL_SIZE
    for head_name, seed in todo:
        run = one_run(
            head_name,
            seed,
            arrays=arrays,
            sources=sources,
            backbone=backbone,
            data=data,
            args=args,
            eval_size=eval_size,
        )
        runs.append(run)
        print(json.dumps(run), flush=True)
        _write(results_path, runs, args)  # After every run: partial results.
    results = _write(results_path, runs, args)
    plot(runs, results, args.out / "finetuned_negative_evidence.png")
    print(markdown(results))
    return results


if __name__ == "__main__":
    wsl_jax.use_recommended_xla_flags()  # Before JAX starts a backend (convolutions on CPU).
    main()
