"""Negative-pair mining schemes (Bucher, Herbin, Jurie 2016, hard negative mining; SPEC B2).

For each image ``i`` of a batch (label ``y_i``), a scheme picks ``n_neg`` *distinct* negative
classes ``c ≠ y_i`` among the seen classes, from the ``(B, C)`` distance matrix
``D[i, c] = D(x_i, a_c)`` of the current model (see :func:`wsl_jax.zsl.distances`):

============== ===============================================================================
``uniform``    uniformly at random, without replacement (the baseline)
``hard``       the ``n_neg`` smallest distances (highest loss); deterministic, ties → lower id
``semi_hard``  uniformly at random among the band ``D_pos < D[i, c] < D_pos + margin``;
               when the band holds fewer than ``n_neg`` classes the rest is filled by the
               ``fallback`` scheme (``"hard"``: the smallest remaining distances, default;
               ``"uniform"``: at random) among the other valid classes
``uncertain``  the smallest ``|f| = |b − D|`` (closest to the decision threshold)
``correlated`` sampled without replacement with probability ∝ ``exp(sim(a_c, a_y) / T)``
               (cosine similarity, Gumbel top-k: column 0 is an exact softmax draw)
``mixture``    a fraction of each named scheme; counts are resolved statically by largest
               remainder (:func:`resolve_counts`), components are drawn in the given order, each
               excluding the classes already picked
``bootstrap``  ``round(hard_fraction · n_neg)`` hard negatives, the rest uniform;
               ``hard_fraction`` may be traced, e.g. :func:`bootstrap_schedule` of the step
============== ===============================================================================

All schemes are pure, jittable functions (``n_neg``, the scheme name, ``fractions`` and
``fallback`` must be static) returning ``(B, n_neg)`` int32 class ids. Every row is computed
independently, so with the batch axis sharded (``NamedSharding(mesh, P("data"))``) mining runs
per device without communication, and — JAX's default threefry being partitionable — random
schemes give the same draws sharded or not. ``key`` is a PRNG key (required by random schemes;
``hard`` and ``uncertain`` ignore it). ``seen_mask`` is an optional ``(C,)`` bool mask of the
classes that may be negatives (default: all ``C``).

Validity (labels seen, ``n_neg ≤ #seen − 1``) is checked on concrete inputs; under ``jit`` with a
traced ``seen_mask`` only ``n_neg ≤ C − 1`` is checked, and asking for more negatives than there
are valid classes then returns invalid ids.

>>> import jax, jax.numpy as jnp
>>> from wsl_jax.zsl import mine_negatives
>>> d, y = jnp.array([[0.0, 0.3, 0.1, 5.0]]), jnp.array([0])  # positive class 0
>>> [mine_negatives(s, d, y, n_neg=2, key=jax.random.key(0)).tolist() for s in ("hard", "uniform")]
[[[2, 1]], [[...]]]
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping

import jax
import jax.numpy as jnp
import numpy as np

from wsl_jax.zsl.checks import check_attributes, check_finite, is_concrete

BASE_SCHEMES = ("uniform", "hard", "semi_hard", "uncertain", "correlated", "bootstrap")
SCHEMES = BASE_SCHEMES + ("mixture",)

__all__ = [
    "SCHEMES",
    "bootstrap_negatives",
    "bootstrap_schedule",
    "correlated_negatives",
    "hard_negatives",
    "make_miner",
    "make_pairs",
    "mine_negatives",
    "mining_options",
    "mixture_negatives",
    "negative_mask",
    "resolve_counts",
    "semi_hard_negatives",
    "uncertain_negatives",
    "uniform_negatives",
]


# ----------------------------------------------------------------------------- helpers


def negative_mask(labels, num_classes: int, seen_mask=None) -> jax.Array:
    """``(B, C)`` bool: class ``c`` may be a negative of image ``i`` (seen and ``c ≠ y_i``).

    >>> import jax.numpy as jnp
    >>> from wsl_jax.zsl import negative_mask
    >>> negative_mask(jnp.array([0, 2]), 4, seen_mask=jnp.array([True, True, True, False]))
    Array([[False,  True,  True, False],
           [ True,  True, False, False]], dtype=bool)
    """
    labels = jnp.asarray(labels)
    valid = labels[:, None] != jnp.arange(num_classes)[None, :]
    if seen_mask is not None:
        valid = valid & jnp.asarray(seen_mask, bool)[None, :]
    return valid


def _validate(distances, labels, n_neg, seen_mask):
    distances, labels = jnp.asarray(distances), jnp.asarray(labels)
    if distances.ndim != 2:
        raise ValueError(f"`distances` must be (B, C), got shape {distances.shape}.")
    batch, num_classes = distances.shape
    if labels.shape != (batch,):
        raise ValueError(f"`labels` must have shape ({batch},), got {labels.shape}.")
    if not jnp.issubdtype(labels.dtype, jnp.integer):
        raise ValueError(f"`labels` must hold integer class ids, got dtype {labels.dtype}.")
    if isinstance(n_neg, bool) or not isinstance(n_neg, (int, np.integer)) or n_neg < 1:
        raise ValueError(f"`n_neg` must be a positive (static) int, got {n_neg!r}.")
    if seen_mask is not None and jnp.shape(seen_mask) != (num_classes,):
        raise ValueError(
            f"`seen_mask` must have shape ({num_classes},), got {jnp.shape(seen_mask)}."
        )
    seen = None
    if seen_mask is None:
        n_seen = num_classes
    elif is_concrete(seen_mask):
        seen = np.asarray(seen_mask, bool)
        n_seen = int(seen.sum())
    else:
        n_seen = num_classes
    if n_neg > n_seen - 1:
        raise ValueError(
            f"`n_neg`={n_neg} exceeds the number of seen classes minus one "
            f"({n_seen} - 1 = {n_seen - 1})."
        )
    if is_concrete(labels) and batch:
        lab = np.asarray(labels)
        if lab.min() < 0 or lab.max() >= num_classes:
            raise ValueError(
                f"`labels` must be class ids in [0, {num_classes}), got values in "
                f"[{lab.min()}, {lab.max()}]."
            )
        if seen is not None and not seen[lab].all():
            raise ValueError(
                f"`labels` contain unseen classes {sorted(set(lab[~seen[lab]]))}: "
                f"training images must belong to seen classes."
            )
    check_finite("distances", distances)
    return distances, labels


def _need_key(key, scheme):
    if key is None:
        raise ValueError(f"Scheme {scheme!r} is random: pass a PRNG `key`.")
    return key


def _select(priority, valid, k):
    """Top-``k`` valid entries of ``priority`` per row (descending, ties → lower id)."""
    masked = jnp.where(valid, priority, -jnp.inf)
    return jax.lax.top_k(masked, k)[1].astype(jnp.int32)


def _rank_ascending(values, valid):
    """Per-row rank (0 = smallest) of ``values`` among valid entries; invalid ones rank last."""
    order = jnp.argsort(jnp.where(valid, values, jnp.inf), axis=-1, stable=True)
    return jnp.argsort(order, axis=-1, stable=True)


def _positive_distance(distances, labels):
    return jnp.take_along_axis(distances, labels[:, None], axis=-1)  # (B, 1)


# ------------------------------------------------------------------- scheme priorities
# Each returns a (B, C) float priority; the top-k valid entries are the negatives.


def _uniform_priority(distances, labels, valid, *, key):
    return jax.random.uniform(_need_key(key, "uniform"), distances.shape)


def _hard_priority(distances, labels, valid, *, key=None):
    return -distances


def _uncertain_priority(distances, labels, valid, *, bias, key=None):
    return -jnp.abs(jnp.asarray(bias, distances.dtype) - distances)


def _semi_hard_priority(distances, labels, valid, *, margin, key, fallback="hard"):
    k_band, k_fall = jax.random.split(_need_key(key, "semi_hard"))
    d_pos = _positive_distance(distances, labels)
    band = valid & (distances > d_pos) & (distances < d_pos + margin)
    in_band = 2.0 + jax.random.uniform(k_band, distances.shape)  # [2, 3)
    if fallback == "hard":
        num_classes = distances.shape[-1]
        rest = 1.0 - _rank_ascending(distances, valid).astype(jnp.float32) / num_classes  # (0, 1]
    else:
        rest = jax.random.uniform(k_fall, distances.shape)  # [0, 1)
    return jnp.where(band, in_band, rest)


def _correlated_priority(distances, labels, valid, *, attributes, key, temperature=1.0):
    attributes = jnp.asarray(attributes, jnp.float32)
    unit = attributes / jnp.maximum(jnp.linalg.norm(attributes, axis=-1, keepdims=True), 1e-12)
    # (B, C) cosine similarity to the positive class. A one-hot product rather than a gather
    # `unit[labels]`, which fails under an explicit-axes mesh with the batch sharded.
    sim_cc = jnp.matmul(unit, unit.T, precision=jax.lax.Precision.HIGHEST)
    onehot = jax.nn.one_hot(labels, sim_cc.shape[0], dtype=sim_cc.dtype)
    sim = jnp.matmul(onehot, sim_cc, precision=jax.lax.Precision.HIGHEST)
    gumbel = jax.random.gumbel(_need_key(key, "correlated"), distances.shape)
    return sim / temperature + gumbel


def _bootstrap_priority(distances, labels, valid, *, hard_fraction, key, n_neg):
    n_hard = jnp.round(jnp.clip(jnp.asarray(hard_fraction, jnp.float32), 0.0, 1.0) * n_neg)
    rank = _rank_ascending(distances, valid)
    num_classes = distances.shape[-1]
    hard = 2.0 + 1.0 - rank.astype(jnp.float32) / num_classes  # (2, 3], hardest first
    random = jax.random.uniform(_need_key(key, "bootstrap"), distances.shape)  # [0, 1)
    return jnp.where(rank < n_hard, hard, random)


_PRIORITIES = {
    "uniform": _uniform_priority,
    "hard": _hard_priority,
    "semi_hard": _semi_hard_priority,
    "uncertain": _uncertain_priority,
    "correlated": _correlated_priority,
    "bootstrap": _bootstrap_priority,
}


_REQUIRED = {
    "uniform": ("key",),
    "hard": (),
    "semi_hard": ("margin", "key"),
    "uncertain": ("bias",),
    "correlated": ("attributes", "key"),
    "bootstrap": ("hard_fraction", "key"),
}


def _mine(scheme, distances, labels, valid, n_neg, options):
    """Checks a scheme's options, then runs the jitted priority + top-k."""
    options = {k: v for k, v in options.items() if v is not None}
    if "key" in _REQUIRED[scheme] and "key" not in options:
        raise ValueError(f"Scheme {scheme!r} is random: pass a PRNG `key`.")
    missing = [o for o in _REQUIRED[scheme] if o not in options]
    if missing:
        raise ValueError(f"Scheme {scheme!r} needs option(s) {missing}.")
    fallback = options.pop("fallback", "hard")
    if fallback not in ("hard", "uniform"):
        raise ValueError(f"`fallback` must be 'hard' or 'uniform', got {fallback!r}.")
    if scheme == "correlated":
        check_attributes(options["attributes"], num_classes=distances.shape[-1])
    return _mine_jit(
        scheme,
        n_neg,
        fallback if scheme == "semi_hard" else None,
        distances,
        labels,
        valid,
        options,
    )


@functools.partial(jax.jit, static_argnames=("scheme", "n_neg", "fallback"))
def _mine_jit(scheme, n_neg, fallback, distances, labels, valid, options):
    # One compiled function per (scheme, n_neg, shapes): eager calls do not dispatch op by op,
    # and inside a caller's jit this is simply inlined.
    if scheme == "bootstrap":
        options = dict(options, n_neg=n_neg)
    if scheme == "semi_hard":
        options = dict(options, fallback=fallback)
    priority = _PRIORITIES[scheme](distances, labels, valid, **options)
    return _select(priority, valid, n_neg)


# ---------------------------------------------------------------------- public schemes


def uniform_negatives(distances, labels, *, n_neg: int, key, seen_mask=None) -> jax.Array:
    """``n_neg`` distinct negatives per image, uniformly at random among the valid classes.

    ``distances`` is used only for its shape.

    >>> import jax, jax.numpy as jnp
    >>> from wsl_jax.zsl import uniform_negatives
    >>> neg = uniform_negatives(jnp.zeros((2, 5)), jnp.array([0, 3]), n_neg=4,
    ...                         key=jax.random.key(0))
    >>> [sorted(r) for r in neg.tolist()]
    [[1, 2, 3, 4], [0, 1, 2, 4]]
    """
    distances, labels = _validate(distances, labels, n_neg, seen_mask)
    valid = negative_mask(labels, distances.shape[-1], seen_mask)
    return _mine("uniform", distances, labels, valid, n_neg, {"key": key})


def hard_negatives(distances, labels, *, n_neg: int, key=None, seen_mask=None) -> jax.Array:
    """The ``n_neg`` valid classes with the smallest distance, nearest first (``key`` unused).

    >>> import jax.numpy as jnp
    >>> from wsl_jax.zsl import hard_negatives
    >>> d = jnp.array([[0.1, 0.5, 0.2, 0.9], [3.0, 2.0, 1.0, 0.0]])
    >>> hard_negatives(d, jnp.array([0, 3]), n_neg=2)
    Array([[2, 1],
           [2, 1]], dtype=int32)
    """
    distances, labels = _validate(distances, labels, n_neg, seen_mask)
    valid = negative_mask(labels, distances.shape[-1], seen_mask)
    return _mine("hard", distances, labels, valid, n_neg, {})


def semi_hard_negatives(
    distances, labels, *, n_neg: int, margin: float, key, seen_mask=None, fallback: str = "hard"
) -> jax.Array:
    """Negatives at random in ``D_pos < D < D_pos + margin``; too few → ``fallback`` fills up.

    ``fallback="hard"`` (default) completes with the smallest remaining distances (which may be
    closer than the positive), ``"uniform"`` with random valid classes. Band members always come
    first in the output.

    >>> import jax, jax.numpy as jnp
    >>> from wsl_jax.zsl import semi_hard_negatives
    >>> d = jnp.array([[1.0, 0.5, 1.2, 1.4, 5.0]])  # positive class 0 at distance 1.0
    >>> neg = semi_hard_negatives(d, jnp.array([0]), n_neg=2, margin=0.5, key=jax.random.key(0))
    >>> sorted(neg[0].tolist())  # both band members (1.2, 1.4)
    [2, 3]
    >>> semi_hard_negatives(d, jnp.array([0]), n_neg=3, margin=0.5, key=jax.random.key(0))[0, 2]
    Array(1, dtype=int32)
    """
    distances, labels = _validate(distances, labels, n_neg, seen_mask)
    valid = negative_mask(labels, distances.shape[-1], seen_mask)
    return _mine(
        "semi_hard",
        distances,
        labels,
        valid,
        n_neg,
        {"margin": margin, "key": key, "fallback": fallback},
    )


def uncertain_negatives(
    distances, labels, *, n_neg: int, bias, key=None, seen_mask=None
) -> jax.Array:
    """The ``n_neg`` valid classes whose score ``f = bias − D`` is closest to 0 (``key`` unused).

    >>> import jax.numpy as jnp
    >>> from wsl_jax.zsl import uncertain_negatives
    >>> d = jnp.array([[0.0, 0.1, 1.9, 3.0, 1.0]])  # |f| with b = 2: 2, 1.9, 0.1, 1, 1
    >>> uncertain_negatives(d, jnp.array([0]), n_neg=2, bias=2.0)
    Array([[2, 3]], dtype=int32)
    """
    distances, labels = _validate(distances, labels, n_neg, seen_mask)
    valid = negative_mask(labels, distances.shape[-1], seen_mask)
    return _mine("uncertain", distances, labels, valid, n_neg, {"bias": bias})


def correlated_negatives(
    distances, labels, *, n_neg: int, attributes, key, temperature: float = 1.0, seen_mask=None
) -> jax.Array:
    """Negatives drawn without replacement with ``P(c) ∝ exp(cos(a_c, a_y) / temperature)``.

    Gumbel top-k: the first column is an exact draw from that softmax over the valid classes,
    the next ones continue sampling without replacement. ``distances`` gives only the shape.

    >>> import jax, jax.numpy as jnp
    >>> from wsl_jax.zsl import correlated_negatives
    >>> att = jnp.array([[1., 0.], [0.99, 0.1], [-1., 0.], [0., 1.]])
    >>> neg = correlated_negatives(jnp.zeros((1000, 4)), jnp.zeros(1000, int), n_neg=1,
    ...                            attributes=att, temperature=0.1, key=jax.random.key(0))
    >>> float(jnp.mean(neg == 1)) > 0.99  # class 1 is by far the most similar to class 0
    True
    """
    distances, labels = _validate(distances, labels, n_neg, seen_mask)
    valid = negative_mask(labels, distances.shape[-1], seen_mask)
    return _mine(
        "correlated",
        distances,
        labels,
        valid,
        n_neg,
        {"attributes": attributes, "key": key, "temperature": temperature},
    )


def bootstrap_negatives(
    distances, labels, *, n_neg: int, hard_fraction, key, seen_mask=None
) -> jax.Array:
    """``round(hard_fraction · n_neg)`` hardest negatives first, the rest uniformly at random.

    ``hard_fraction`` may be a traced scalar (e.g. :func:`bootstrap_schedule` of the step).

    >>> import jax, jax.numpy as jnp
    >>> from wsl_jax.zsl import bootstrap_negatives
    >>> d = jnp.array([[0.0, 0.3, 0.1, 5.0, 6.0, 7.0]])
    >>> neg = bootstrap_negatives(d, jnp.array([0]), n_neg=3, hard_fraction=0.67,
    ...                           key=jax.random.key(0))
    >>> neg[0, :2]
    Array([2, 1], dtype=int32)
    """
    distances, labels = _validate(distances, labels, n_neg, seen_mask)
    valid = negative_mask(labels, distances.shape[-1], seen_mask)
    return _mine(
        "bootstrap", distances, labels, valid, n_neg, {"hard_fraction": hard_fraction, "key": key}
    )


def resolve_counts(fractions: Mapping[str, float], n_neg: int) -> dict:
    """Static per-scheme counts summing to ``n_neg`` (largest remainder; ties → earlier scheme).

    >>> from wsl_jax.zsl import resolve_counts
    >>> resolve_counts({"hard": 0.5, "uniform": 0.3, "correlated": 0.2}, 4)
    {'hard': 2, 'uniform': 1, 'correlated': 1}
    """
    if not fractions:
        raise ValueError("`fractions` must name at least one scheme.")
    unknown = [s for s in fractions if s not in BASE_SCHEMES]
    if unknown:
        raise ValueError(f"Unknown mixture component(s) {unknown}; valid: {list(BASE_SCHEMES)}.")
    values = np.array([float(f) for f in fractions.values()])
    if np.any(values < 0) or not math.isclose(values.sum(), 1.0, abs_tol=1e-6):
        raise ValueError(
            f"Mixture fractions must be non-negative and sum to 1, got {dict(fractions)}."
        )
    exact = values * n_neg
    counts = np.floor(exact).astype(int)
    remainder = exact - counts
    for i in sorted(range(len(values)), key=lambda j: (-remainder[j], j))[: n_neg - counts.sum()]:
        counts[i] += 1
    return {name: int(c) for name, c in zip(fractions, counts)}


def mixture_negatives(
    distances, labels, *, n_neg: int, fractions: Mapping[str, float], key, seen_mask=None, **options
) -> jax.Array:
    """A fraction of each scheme: ``fractions`` maps scheme names to fractions summing to 1.

    Counts come from :func:`resolve_counts` (static). Components are mined in the given order,
    each with key ``fold_in(key, i)`` and excluding the classes already picked, so the
    ``n_neg`` negatives of a row are distinct. ``options`` are passed to the components that take
    them (``margin``, ``bias``, ``attributes``, ``temperature``, ``fallback``,
    ``hard_fraction``).

    >>> import jax, jax.numpy as jnp
    >>> from wsl_jax.zsl import mixture_negatives
    >>> d = jnp.array([[0.0, 0.3, 0.1, 5.0, 6.0, 7.0]])
    >>> neg = mixture_negatives(d, jnp.array([0]), n_neg=4, key=jax.random.key(0),
    ...                         fractions={"hard": 0.5, "uniform": 0.5})
    >>> neg[0, :2], sorted(set(neg[0].tolist())) == sorted(neg[0].tolist())
    (Array([2, 1], dtype=int32), True)
    """
    distances, labels = _validate(distances, labels, n_neg, seen_mask)
    counts = resolve_counts(fractions, n_neg)
    valid = negative_mask(labels, distances.shape[-1], seen_mask)
    picked = []
    for i, (scheme, count) in enumerate(counts.items()):
        if count == 0:
            continue
        comp = _component_options(scheme, options)
        if key is not None:
            comp["key"] = jax.random.fold_in(key, i)
        neg = _mine(scheme, distances, labels, valid, count, comp)
        picked.append(neg)
        valid = valid & ~jnp.any(
            jnp.arange(distances.shape[-1])[None, None, :] == neg[:, :, None], axis=1
        )
    return jnp.concatenate(picked, axis=-1)


_OPTIONS = {
    "uniform": (),
    "hard": (),
    "uncertain": ("bias",),
    "semi_hard": ("margin", "fallback"),
    "correlated": ("attributes", "temperature"),
    "bootstrap": ("hard_fraction",),
}


def _component_options(scheme, options):
    known = {o for opts in _OPTIONS.values() for o in opts}
    extra = set(options) - known
    if extra:
        raise ValueError(f"Unknown mining option(s) {sorted(extra)}; known: {sorted(known)}.")
    return {k: v for k, v in options.items() if k in _OPTIONS[scheme]}


def bootstrap_schedule(step, *, warmup_steps: int, anneal_steps: int) -> jax.Array:
    """Hard-negative fraction at ``step``: 0 (uniform) for ``warmup_steps``, then linear to 1.

    ``anneal_steps=0`` switches abruptly from uniform to hard. Jittable in ``step``.

    >>> from wsl_jax.zsl import bootstrap_schedule
    >>> [float(bootstrap_schedule(s, warmup_steps=10, anneal_steps=20))
    ...  for s in (0, 10, 20, 30, 99)]
    [0.0, 0.0, 0.5, 1.0, 1.0]
    >>> float(bootstrap_schedule(10, warmup_steps=10, anneal_steps=0))
    1.0
    """
    if warmup_steps < 0 or anneal_steps < 0:
        raise ValueError("`warmup_steps` and `anneal_steps` must be non-negative.")
    step = jnp.asarray(step, jnp.float32)
    if anneal_steps == 0:
        return (step >= warmup_steps).astype(jnp.float32)
    return jnp.clip((step - warmup_steps) / anneal_steps, 0.0, 1.0)


def mine_negatives(
    scheme: str, distances, labels, *, n_neg: int, key=None, seen_mask=None, **options
) -> jax.Array:
    """Dispatches to a scheme by name (see the module docstring); ``(B, n_neg)`` class ids.

    Args:
      scheme: one of :data:`SCHEMES` (static).
      distances: ``(B, C)`` current distances ``D(x_i, a_c)``.
      labels: ``(B,)`` positive class ids.
      n_neg: negatives per image (static), at most ``#seen − 1``.
      key: PRNG key (random schemes).
      seen_mask: optional ``(C,)`` bool mask of the seen classes.
      **options: scheme options: ``margin``/``fallback`` (semi_hard), ``bias`` (uncertain),
        ``attributes``/``temperature`` (correlated), ``hard_fraction`` (bootstrap),
        ``fractions`` (mixture, plus its components' options).

    >>> import jax.numpy as jnp
    >>> from wsl_jax.zsl import mine_negatives
    >>> mine_negatives("hard", jnp.array([[0.0, 0.2, 0.1]]), jnp.array([0]), n_neg=1)
    Array([[2]], dtype=int32)
    >>> mine_negatives("hardest", jnp.zeros((1, 3)), jnp.array([0]), n_neg=1)
    Traceback (most recent call last):
    ...
    ValueError: Unknown mining scheme 'hardest'; valid schemes: uniform, hard, semi_hard, ...
    """
    if scheme not in SCHEMES:
        raise ValueError(f"Unknown mining scheme {scheme!r}; valid schemes: {', '.join(SCHEMES)}.")
    if scheme == "mixture":
        if "fractions" not in options:
            raise ValueError("Scheme 'mixture' needs `fractions` (scheme → fraction).")
        return mixture_negatives(
            distances, labels, n_neg=n_neg, key=key, seen_mask=seen_mask, **options
        )
    distances, labels = _validate(distances, labels, n_neg, seen_mask)
    extra = set(options) - set(_OPTIONS[scheme])
    if extra:
        raise ValueError(
            f"Scheme {scheme!r} takes options {list(_OPTIONS[scheme])}, got "
            f"unexpected {sorted(extra)}."
        )
    comp = dict(options)
    if scheme not in ("hard", "uncertain"):
        comp["key"] = key
    valid = negative_mask(labels, distances.shape[-1], seen_mask)
    return _mine(scheme, distances, labels, valid, n_neg, comp)


def make_pairs(labels, negatives):
    """Pairs for :func:`wsl_jax.zsl.pair_loss`: the positive first, then the negatives.

    Returns ``(pair_classes, pair_labels)``, both ``(B, 1 + n_neg)``; labels are ``+1`` / ``−1``.

    >>> import jax.numpy as jnp
    >>> from wsl_jax.zsl import make_pairs
    >>> make_pairs(jnp.array([0, 2]), jnp.array([[1, 2], [0, 1]]))
    (Array([[0, 1, 2],
           [2, 0, 1]], dtype=int32), Array([[ 1, -1, -1],
           [ 1, -1, -1]], dtype=int32))
    """
    labels, negatives = jnp.asarray(labels), jnp.asarray(negatives)
    classes = jnp.concatenate([labels[:, None], negatives], axis=-1).astype(jnp.int32)
    signs = jnp.concatenate(
        [jnp.ones((labels.shape[0], 1), jnp.int32), -jnp.ones(negatives.shape, jnp.int32)], axis=-1
    )
    return classes, signs


def mining_options(zsl_config, *, steps_per_epoch: int) -> tuple:
    """``(static options, hard_fraction(step) or None)`` of the scheme a config names.

    ``zsl_config`` is a config's ``zsl`` block (``scheme`` and that scheme's settings: ``margin``
    and ``fallback``, ``temperature``, ``fractions``, ``warmup_epochs`` / ``anneal_epochs``).
    Everything a config says about mining goes through here and :func:`make_miner`.

    >>> import ml_collections
    >>> z = ml_collections.ConfigDict({"scheme": "semi_hard", "margin": 1.0, "fallback": "hard"})
    >>> mining_options(z, steps_per_epoch=10)
    ({'margin': 1.0, 'fallback': 'hard'}, None)
    >>> z = ml_collections.ConfigDict({"scheme": "bootstrap", "warmup_epochs": 5, "anneal_epochs": 5})
    >>> opts, schedule = mining_options(z, steps_per_epoch=10)
    >>> opts, float(schedule(50)), float(schedule(100))
    ({}, 0.0, 1.0)
    """
    z = zsl_config
    scheme = z.scheme
    if scheme not in SCHEMES:
        raise ValueError(f"config.zsl.scheme must be one of {SCHEMES}, got {scheme!r}.")
    if scheme == "bootstrap":
        warmup, anneal = z.warmup_epochs * steps_per_epoch, z.anneal_epochs * steps_per_epoch
        return {}, functools.partial(bootstrap_schedule, warmup_steps=warmup, anneal_steps=anneal)
    if scheme == "semi_hard":
        return {"margin": z.margin, "fallback": z.fallback}, None
    if scheme == "mixture":
        fractions = dict(z.fractions)
        unknown = set(fractions) - set(SCHEMES) | ({"mixture", "bootstrap"} & set(fractions))
        if unknown or not fractions:
            raise ValueError(
                f"config.zsl.fractions must map base schemes to fractions, got {fractions}."
            )
        options = {"fractions": fractions}
        if "semi_hard" in fractions:
            options |= {"margin": z.margin, "fallback": z.fallback}
        if "correlated" in fractions:
            options["temperature"] = z.temperature
        return options, None
    if scheme == "correlated":
        return {"temperature": z.temperature}, None
    return {}, None


def make_miner(scheme: str, *, n_neg: int, options: Mapping | None = None, hard_fraction=None):
    """``miner(distances, labels, *, key, step, attributes, bias) → (B, n_neg)`` negatives.

    Wraps :func:`mine_negatives` for a training step: the miner passes each scheme the inputs it
    needs (class ``attributes`` to ``correlated``, the model's ``bias`` to ``uncertain``,
    ``hard_fraction(step)`` to ``bootstrap``) and ignores the others. ``options`` and
    ``hard_fraction`` come from :func:`mining_options`. Jittable.

    >>> import jax, jax.numpy as jnp
    >>> miner = make_miner("hard", n_neg=1)
    >>> d = jnp.array([[0.0, 1.0, 5.0], [2.0, 0.0, 0.5]])
    >>> miner(d, jnp.array([0, 1]), key=jax.random.key(0), step=0, attributes=None, bias=0.0)
    Array([[1],
           [2]], dtype=int32)
    """
    options = dict(options or {})
    fractions = options.get("fractions", {})

    def miner(distances, labels, *, key, step, attributes, bias):
        opts = dict(options)
        if scheme == "correlated" or "correlated" in fractions:
            opts["attributes"] = attributes
        if scheme == "uncertain" or "uncertain" in fractions:
            opts["bias"] = bias
        if hard_fraction is not None:
            opts["hard_fraction"] = hard_fraction(step)
        return mine_negatives(scheme, distances, labels, n_neg=n_neg, key=key, **opts)

    return miner
