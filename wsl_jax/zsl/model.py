"""Metric-learning zero-shot model (Bucher, Herbin, Jurie 2016; SPEC B1).

An image feature ``x`` (``d``) is mapped to predicted attributes ``z = φ(x)`` (``p``) and compared
with a class attribute vector ``a`` under the metric ``M = LᵀL`` (``L`` is ``r × p``)::

    D(x, a) = ‖L (φ(x) − a)‖²,       f(x, a) = b − D(x, a),       ŷ = argmax_c f(x, a_c).

Parameters are a plain pytree (a dict) so that optimisers, sharding and checkpoints see them
directly:

* ``"W"``: ``(h, p)`` last (or only) layer of the image map, ``φ(x) = hᵀ W``;
* ``"L"``: ``(r, p)`` metric factor;
* ``"b"``: scalar bias (the decision threshold of ``f``);
* ``"hidden_0"``, ``"hidden_1"``, …: optional ``{"kernel": (in, out), "bias": (out,)}`` ReLU layers
  before ``W``. Without them ``φ(x) = Wᵀx`` (the paper's linear map); with them ``φ`` is an MLP.

The image map is thus chosen by the pytree's contents, behind the same pure functions
(:func:`distances`, :func:`scores`, :func:`pair_loss`, :func:`predict`). The Flax module
:class:`MetricEmbedding` creates exactly this pytree (``variables["params"]``).

Shapes: ``x`` is ``(B, d)``; ``attributes`` is ``(C, p)``, one row per class (the xlsa17 ``att``
array is ``(p, C)``: transpose it). Weight decay is left to the optimiser
(``optax.adamw`` / ``optax.add_decayed_weights``).

>>> import jax.numpy as jnp
>>> from wsl_jax.zsl import distances, predict, scores
>>> params = {"W": jnp.eye(2), "L": jnp.eye(2), "b": jnp.array(1.)}  # φ(x) = x, M = I
>>> x, att = jnp.array([[1., 0.]]), jnp.array([[1., 0.], [0., 1.]])
>>> distances(params, x, att), scores(params, x, att), predict(params, x, att)
(Array([[0., 2.]], dtype=float32), Array([[ 1., -1.]], dtype=float32), Array([0], dtype=int32))
"""

from __future__ import annotations

from collections.abc import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from wsl_jax.zsl.checks import check_attributes, check_finite, is_concrete

__all__ = [
    "MetricEmbedding",
    "distances",
    "embed_images",
    "embedded_distances",
    "init_metric_params",
    "pair_loss",
    "predict",
    "scores",
]


def _hidden_layers(params) -> list:
    n = sum(1 for k in params if str(k).startswith("hidden_"))
    try:
        return [params[f"hidden_{i}"] for i in range(n)]
    except KeyError as err:
        raise ValueError(f"MLP layers must be named hidden_0 .. hidden_{n - 1}; missing {err}.")


def init_metric_params(
    key,
    *,
    feature_dim: int,
    attribute_dim: int,
    rank: int | None = None,
    hidden_dims: Sequence[int] = (),
    init_bias: float = 1.0,
    dtype=jnp.float32,
) -> dict:
    """Initial parameter pytree ``{"W", "L", "b"}`` (+ ``"hidden_i"`` layers for an MLP map).

    ``W`` and the hidden kernels are LeCun-normal, ``L`` has orthonormal rows (so that initially
    ``D`` is a squared Euclidean distance in an ``r``-dimensional projection), ``b = init_bias``.

    Args:
      key: PRNG key.
      feature_dim: ``d``, the image feature size.
      attribute_dim: ``p``, the class attribute size.
      rank: ``r ≤ p`` rows of ``L`` (default ``p``).
      hidden_dims: sizes of ReLU hidden layers; ``()`` (default) gives the linear map ``Wᵀx``.
      init_bias: initial ``b``.
      dtype: parameter dtype.

    >>> import jax
    >>> from wsl_jax.zsl import init_metric_params
    >>> p = init_metric_params(jax.random.key(0), feature_dim=8, attribute_dim=5, rank=3)
    >>> {k: v.shape for k, v in p.items()}
    {'L': (3, 5), 'W': (8, 5), 'b': ()}
    >>> sorted(init_metric_params(jax.random.key(0), feature_dim=8, attribute_dim=5,
    ...                           hidden_dims=(16,)))
    ['L', 'W', 'b', 'hidden_0']
    """
    rank = attribute_dim if rank is None else rank
    if not 1 <= rank <= attribute_dim:
        raise ValueError(f"`rank` must be in [1, attribute_dim={attribute_dim}], got {rank}.")
    if feature_dim < 1 or attribute_dim < 1:
        raise ValueError("`feature_dim` and `attribute_dim` must be positive.")
    keys = jax.random.split(key, len(hidden_dims) + 2)
    lecun = jax.nn.initializers.lecun_normal()
    params = {}
    fan_in = feature_dim
    for i, width in enumerate(hidden_dims):
        params[f"hidden_{i}"] = {
            "kernel": lecun(keys[i], (fan_in, width), dtype),
            "bias": jnp.zeros((width,), dtype),
        }
        fan_in = width
    params["W"] = lecun(keys[-2], (fan_in, attribute_dim), dtype)
    params["L"] = jax.nn.initializers.orthogonal()(keys[-1], (rank, attribute_dim), dtype)
    params["b"] = jnp.asarray(init_bias, dtype)
    return dict(sorted(params.items()))


def embed_images(params, x) -> jax.Array:
    """Predicted attributes ``φ(x)``: ``(B, d) → (B, p)`` (linear, or MLP if hidden layers).

    >>> import jax.numpy as jnp
    >>> from wsl_jax.zsl import embed_images
    >>> params = {"W": jnp.array([[1., 0.], [0., 2.], [1., 1.]]), "L": jnp.eye(2), "b": 0.}
    >>> embed_images(params, jnp.array([[1., 1., 0.]]))
    Array([[1., 2.]], dtype=float32)
    """
    layers = _hidden_layers(params)
    x = jnp.asarray(x)
    expected = jnp.shape(layers[0]["kernel"] if layers else params["W"])[0]
    if x.ndim != 2 or x.shape[-1] != expected:
        raise ValueError(f"`x` must be (B, {expected}) image features, got shape {x.shape}.")
    check_finite("x", x)
    h = x
    for layer in layers:
        h = jax.nn.relu(h @ layer["kernel"] + layer["bias"])
    return h @ params["W"]


def embedded_distances(z, attributes, metric) -> jax.Array:
    """``D[i, c] = ‖L (z_i − a_c)‖²`` for predicted attributes ``z`` ``(B, p)``: ``(B, C)``.

    Expands the square, ``‖Lz‖² − 2⟨Lz, La⟩ + ‖La‖²``, so memory is ``O((B + C) r + B C)``,
    never ``B × C × p``; rounding can make the expansion slightly negative, so it is clipped at 0.

    Args:
      z: ``(B, p)`` predicted attributes.
      attributes: ``(C, p)`` class attributes.
      metric: ``L``, ``(r, p)``.

    >>> import jax.numpy as jnp
    >>> from wsl_jax.zsl import embedded_distances
    >>> embedded_distances(jnp.array([[0., 0.]]), jnp.array([[3., 4.], [1., 0.]]), jnp.eye(2))
    Array([[25.,  1.]], dtype=float32)
    """
    z, attributes, metric = jnp.asarray(z), jnp.asarray(attributes), jnp.asarray(metric)
    if z.ndim != 2 or metric.ndim != 2 or z.shape[-1] != metric.shape[-1]:
        raise ValueError(
            f"`z` (B, p) and `metric` (r, p) must share p, got shapes {z.shape} and {metric.shape}."
        )
    check_attributes(attributes, attribute_dim=metric.shape[-1])
    lz = z @ metric.T  # (B, r)
    la = attributes @ metric.T  # (C, r)
    sq = jnp.sum(lz * lz, -1)[:, None] - 2.0 * lz @ la.T + jnp.sum(la * la, -1)[None, :]
    return jnp.maximum(sq, 0.0)


def distances(params, x, attributes) -> jax.Array:
    """``D(x_i, a_c) = ‖L (φ(x_i) − a_c)‖²`` for every image and class: ``(B, C)``.

    >>> import jax.numpy as jnp
    >>> from wsl_jax.zsl import distances
    >>> params = {"W": jnp.eye(2), "L": jnp.array([[1., 0.]]), "b": jnp.array(2.)}
    >>> distances(params, jnp.array([[1., 5.]]), jnp.array([[0., 0.], [1., -3.]]))
    Array([[1., 0.]], dtype=float32)
    """
    return embedded_distances(embed_images(params, x), attributes, params["L"])


def scores(params, x, attributes) -> jax.Array:
    """Consistency scores ``f(x_i, a_c) = b − D(x_i, a_c)``: ``(B, C)``; ``f > 0`` means "match".

    >>> import jax.numpy as jnp
    >>> from wsl_jax.zsl import scores
    >>> params = {"W": jnp.eye(2), "L": jnp.eye(2), "b": jnp.array(2.)}
    >>> scores(params, jnp.array([[1., 0.]]), jnp.array([[1., 0.], [0., 1.], [3., 0.]]))
    Array([[ 2.,  0., -2.]], dtype=float32)
    """
    return params["b"] - distances(params, x, attributes)


def pair_loss(
    params, x, attributes, pair_classes, pair_labels, *, lam: float = 0.0, where=None
) -> jax.Array:
    """Per-pair loss ``log(1 + exp(−y f(x, a))) + λ [y = 1] ‖φ(x) − a‖²`` (SPEC B1).

    The logistic term is ``softplus(−y f)``, stable for any ``|f|``. The loss sees only pairs
    (``x_i``, ``a_{pair_classes[i, k]}``) and their consistency ``y``, never a class id directly.

    Args:
      params: parameter pytree (see :func:`init_metric_params`).
      x: ``(B, d)`` image features.
      attributes: ``(C, p)`` class attributes.
      pair_classes: ``(B, K)`` integer rows of ``attributes`` paired with each image.
      pair_labels: ``(B, K)``, ``+1`` (same class) or ``−1`` (different); bool is accepted.
      lam: weight ``λ`` of the attribute-regression term on positive pairs.
      where: optional ``(B, K)`` bool mask; masked-out pairs have loss 0.

    Returns:
      ``(B, K)`` losses; reduce them (e.g. ``mean``) in the training step.

    >>> import jax.numpy as jnp
    >>> from wsl_jax.zsl import pair_loss
    >>> params = {"W": jnp.eye(2), "L": jnp.eye(2), "b": jnp.array(0.)}
    >>> x, att = jnp.array([[1., 0.]]), jnp.array([[1., 0.], [0., 1.]])
    >>> pair_loss(params, x, att, jnp.array([[0, 1]]), jnp.array([[1, -1]]), lam=0.5)
    Array([[0.6931..., 0.1269...]], dtype=float32)
    """
    attributes = jnp.asarray(attributes)
    pair_classes = jnp.asarray(pair_classes)
    y = jnp.asarray(pair_labels)
    if pair_classes.ndim != 2 or y.shape != pair_classes.shape:
        raise ValueError(
            f"`pair_classes` and `pair_labels` must both be (B, K); got "
            f"{pair_classes.shape} and {y.shape}."
        )
    if not jnp.issubdtype(pair_classes.dtype, jnp.integer):
        raise ValueError(f"`pair_classes` must hold integer class ids, got {pair_classes.dtype}.")
    num_classes = attributes.shape[0]
    if is_concrete(pair_classes) and pair_classes.size:
        lo, hi = int(np.asarray(pair_classes).min()), int(np.asarray(pair_classes).max())
        if lo < 0 or hi >= num_classes:
            raise ValueError(
                f"`pair_classes` must index the {num_classes} rows of `attributes`, "
                f"got values in [{lo}, {hi}]."
            )
    if y.dtype == jnp.bool_:
        y = jnp.where(y, 1.0, -1.0)
    elif is_concrete(y) and y.size and not np.all(np.isin(np.asarray(y), (-1, 1))):
        raise ValueError("`pair_labels` must be +1 / -1 (or bool).")
    if where is not None:
        where = jnp.asarray(where, bool)
        if where.shape != pair_classes.shape:
            raise ValueError(f"`where` must have shape {pair_classes.shape}, got {where.shape}.")
    z = embed_images(params, x)  # (B, p)
    # Pair terms are read off (B, C) matrices with take_along_axis rather than gathering
    # attributes[pair_classes]: a gather with batch-sharded indices fails under an
    # explicit-axes mesh, and the (B, C) distances are the ones mining uses anyway.
    dist = jnp.take_along_axis(embedded_distances(z, attributes, params["L"]), pair_classes, 1)
    sq_err = jnp.take_along_axis(  # ‖φ(x) − a‖²
        embedded_distances(z, attributes, jnp.eye(z.shape[-1], dtype=z.dtype)), pair_classes, 1
    )
    f = params["b"] - dist
    y = y.astype(f.dtype)
    loss = jax.nn.softplus(-y * f) + lam * (y > 0) * sq_err
    if where is not None:
        loss = jnp.where(where, loss, 0.0)
    return loss


def predict(params, x, attributes, *, classes=None) -> jax.Array:
    """``argmax_c f(x, a_c)`` over the candidate classes (lowest id on ties): ``(B,)`` class ids.

    Args:
      params: parameter pytree.
      x: ``(B, d)`` features.
      attributes: ``(C, p)`` attributes of all classes.
      classes: optional 1-D candidate ids (rows of ``attributes``), e.g. the unseen classes;
        default all ``C``. The returned ids index ``attributes`` either way.

    >>> import jax.numpy as jnp
    >>> from wsl_jax.zsl import predict
    >>> params = {"W": jnp.eye(2), "L": jnp.eye(2), "b": jnp.array(0.)}
    >>> att = jnp.array([[1., 0.], [0., 1.], [0.9, 0.1]])
    >>> predict(params, jnp.array([[1., 0.], [0., 1.]]), att)
    Array([0, 1], dtype=int32)
    >>> predict(params, jnp.array([[1., 0.], [0., 1.]]), att, classes=jnp.array([1, 2]))
    Array([2, 1], dtype=int32)
    """
    attributes = jnp.asarray(attributes)
    if classes is None:
        return jnp.argmax(scores(params, x, attributes), axis=-1).astype(jnp.int32)
    classes = jnp.asarray(classes).reshape(-1)
    if is_concrete(classes) and classes.size:
        classes = np.asarray(classes)
        if classes.min() < 0 or classes.max() >= attributes.shape[0]:
            raise ValueError(
                f"`classes` must index the {attributes.shape[0]} rows of `attributes`."
            )
    best = jnp.argmax(jnp.take(scores(params, x, attributes), classes, axis=1), axis=-1)
    classes = jnp.asarray(classes, jnp.int32)
    # best → class id without a gather (a gather with batch-sharded indices fails on an
    # explicit-axes mesh)
    hit = best[:, None] == jnp.arange(classes.shape[0])[None, :]
    return jnp.sum(jnp.where(hit, classes[None, :], 0), axis=-1)


class MetricEmbedding(nn.Module):
    """Flax module of the metric model; its ``params`` are the pytree of :func:`init_metric_params`.

    The image map is swappable: ``hidden_dims=()`` gives the paper's linear map ``Wᵀx``; a tuple
    of widths inserts ReLU layers (``hidden_0``, …) before ``W`` (an MLP). ``__call__`` returns
    the scores ``b − D`` ``(B, C)`` through the same pure :func:`scores`, so
    ``module.apply(variables, x, att) == scores(variables["params"], x, att)``, and
    :func:`pair_loss` / :func:`predict` take ``variables["params"]`` unchanged.

    Attributes:
      attribute_dim: ``p``.
      rank: ``r`` (default ``p``).
      hidden_dims: MLP widths, ``()`` for linear.
      init_bias: initial ``b``.

    >>> import jax, jax.numpy as jnp
    >>> from wsl_jax.zsl import MetricEmbedding, scores
    >>> m = MetricEmbedding(attribute_dim=3, rank=2, hidden_dims=(4,))
    >>> x, att = jnp.ones((2, 5)), jnp.eye(3)
    >>> v = m.init(jax.random.key(0), x, att)
    >>> sorted(v["params"]), m.apply(v, x, att).shape
    (['L', 'W', 'b', 'hidden_0'], (2, 3))
    >>> bool(jnp.allclose(m.apply(v, x, att), scores(v["params"], x, att)))
    True
    """

    attribute_dim: int
    rank: int | None = None
    hidden_dims: Sequence[int] = ()
    init_bias: float = 1.0

    @nn.compact
    def __call__(self, x, attributes):
        rank = self.attribute_dim if self.rank is None else self.rank
        params = {}
        fan_in = jnp.shape(x)[-1]
        for i, width in enumerate(self.hidden_dims):
            dense = nn.Dense(width, name=f"hidden_{i}")
            dense(jnp.zeros((1, fan_in), jnp.float32))  # creates the kernel and bias
            params[f"hidden_{i}"] = dense.variables["params"]
            fan_in = width
        params["W"] = self.param("W", nn.initializers.lecun_normal(), (fan_in, self.attribute_dim))
        params["L"] = self.param("L", nn.initializers.orthogonal(), (rank, self.attribute_dim))
        params["b"] = self.param("b", nn.initializers.constant(self.init_bias), ())
        return scores(params, x, attributes)
