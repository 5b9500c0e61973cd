"""wsl_jax.zsl.model: distances, scores, pair loss and prediction against NumPy oracles."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads

from wsl_jax.zsl import (
    MetricEmbedding,
    distances,
    embed_images,
    init_metric_params,
    pair_loss,
    predict,
    scores,
)

B, C, D_FEAT, P_ATT, R = 5, 7, 6, 4, 3


def _problem(hidden_dims=(), seed=0, dtype=jnp.float32):
    params = init_metric_params(
        jax.random.key(seed),
        feature_dim=D_FEAT,
        attribute_dim=P_ATT,
        rank=R,
        hidden_dims=hidden_dims,
        init_bias=0.7,
        dtype=dtype,
    )
    rng = np.random.default_rng(seed)
    x = jnp.asarray(rng.normal(size=(B, D_FEAT)), dtype)
    att = jnp.asarray(rng.normal(size=(C, P_ATT)), dtype)
    return params, x, att


def _np_embed(params, x):
    h = np.asarray(x, np.float64)
    i = 0
    while f"hidden_{i}" in params:
        layer = params[f"hidden_{i}"]
        h = np.maximum(h @ np.asarray(layer["kernel"], np.float64) + np.asarray(layer["bias"]), 0)
        i += 1
    return h @ np.asarray(params["W"], np.float64)


def _np_distances(params, x, att):
    """Direct B × C × p computation of ‖L(φ(x) − a)‖²."""
    z = _np_embed(params, x)
    err = z[:, None, :] - np.asarray(att, np.float64)[None, :, :]
    return np.sum((err @ np.asarray(params["L"], np.float64).T) ** 2, axis=-1)


@pytest.mark.parametrize("hidden_dims", [(), (8,), (8, 5)])
def test_distances_match_direct_oracle(hidden_dims):
    params, x, att = _problem(hidden_dims)
    got = distances(params, x, att)
    assert got.shape == (B, C)
    np.testing.assert_allclose(got, _np_distances(params, x, att), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(
        scores(params, x, att), 0.7 - _np_distances(params, x, att), rtol=1e-4, atol=1e-5
    )


def test_distances_nonnegative_and_zero_on_exact_match():
    params, x, _ = _problem()
    att = embed_images(params, x)  # each image exactly predicts "its" class
    d = distances(params, x, att)
    assert float(jnp.min(d)) >= 0.0
    np.testing.assert_allclose(jnp.diag(d), 0.0, atol=1e-5)


def test_distances_never_materialise_b_c_p():
    params, x, att = _problem()

    def shapes(jaxpr):  # output shapes of every equation, nested jaxprs (jit) included
        for eqn in jaxpr.eqns:
            yield from (tuple(v.aval.shape) for v in eqn.outvars)
            for param in eqn.params.values():
                inner = getattr(param, "jaxpr", param)
                if hasattr(inner, "eqns"):
                    yield from shapes(inner)

    found = set(shapes(jax.make_jaxpr(distances)(params, x, att).jaxpr))
    assert (B, C) in found  # the walk does reach the computation
    assert (B, C, P_ATT) not in found and (B, C, R) not in found


def test_pair_loss_matches_numpy():
    params, x, att = _problem(seed=1)
    rng = np.random.default_rng(1)
    classes = rng.integers(0, C, size=(B, 3))
    labels = np.where(rng.random((B, 3)) < 0.5, 1, -1)
    where = rng.random((B, 3)) < 0.8
    lam = 0.3
    got = pair_loss(
        params, x, att, jnp.asarray(classes), jnp.asarray(labels), lam=lam, where=jnp.asarray(where)
    )
    d_all = _np_distances(params, x, att)
    f = 0.7 - np.take_along_axis(d_all, classes, axis=1)
    z = _np_embed(params, x)
    reg = np.sum((z[:, None, :] - np.asarray(att, np.float64)[classes]) ** 2, -1)
    want = np.logaddexp(0.0, -labels * f) + lam * (labels > 0) * reg
    np.testing.assert_allclose(got, np.where(where, want, 0.0), rtol=1e-4, atol=1e-5)
    # bool labels are the same as ±1
    np.testing.assert_allclose(
        pair_loss(params, x, att, jnp.asarray(classes), jnp.asarray(labels > 0), lam=lam),
        pair_loss(params, x, att, jnp.asarray(classes), jnp.asarray(labels), lam=lam),
    )


def test_pair_loss_is_stable_for_large_scores():
    params, x, att = _problem()
    params = dict(params, b=jnp.float32(-1e4))  # f ≈ -1e4: positive pairs have loss ≈ 1e4
    classes, labels = jnp.zeros((B, 2), jnp.int32), jnp.array([[1, -1]] * B)
    loss = pair_loss(params, x, att, classes, labels)
    grads = jax.grad(lambda p: pair_loss(p, x, att, classes, labels).sum())(params)
    assert np.all(np.isfinite(loss)) and float(loss[0, 0]) > 1e3 and float(loss[0, 1]) < 1e-6
    assert all(np.all(np.isfinite(g)) for g in jax.tree.leaves(grads))


@pytest.mark.parametrize("hidden_dims", [(), (5,)])
def test_pair_loss_gradients(hidden_dims):
    with jax.enable_x64(True):
        params, x, att = _problem(hidden_dims, seed=2, dtype=jnp.float64)
        classes = jnp.array([[0, 1, 2]] * B)
        labels = jnp.array([[1, -1, -1]] * B)

        def loss(p, xx):
            return pair_loss(p, xx, att, classes, labels, lam=0.2).mean()

        # second order for the linear map only (each order re-traces; keep the suite fast)
        check_grads(
            jax.jit(loss),
            (params, x),
            order=1 if hidden_dims else 2,
            modes=("rev",),
            atol=1e-4,
            rtol=1e-4,
        )


def test_predict_argmax_and_candidates():
    params, x, att = _problem(seed=3)
    s = np.asarray(scores(params, x, att))
    np.testing.assert_array_equal(predict(params, x, att), s.argmax(-1))
    cand = np.array([6, 1, 3])
    np.testing.assert_array_equal(
        predict(params, x, att, classes=cand), cand[s[:, cand].argmax(-1)]
    )
    assert jax.jit(predict)(params, x, att).shape == (B,)


@pytest.mark.parametrize("hidden_dims", [(), (8,)])
def test_flax_module_matches_pure_functions(hidden_dims):
    _, x, att = _problem()
    module = MetricEmbedding(attribute_dim=P_ATT, rank=R, hidden_dims=hidden_dims, init_bias=0.7)
    variables = module.init(jax.random.key(0), x, att)
    params = variables["params"]
    ref = init_metric_params(
        jax.random.key(0), feature_dim=D_FEAT, attribute_dim=P_ATT, rank=R, hidden_dims=hidden_dims
    )
    assert jax.tree.map(jnp.shape, params) == jax.tree.map(jnp.shape, ref)
    np.testing.assert_allclose(module.apply(variables, x, att), scores(params, x, att), rtol=1e-6)
    assert pair_loss(params, x, att, jnp.zeros((B, 1), jnp.int32), jnp.ones((B, 1))).shape == (B, 1)


def test_init_shapes_and_orthonormal_metric():
    params = init_metric_params(jax.random.key(0), feature_dim=10, attribute_dim=6, rank=4)
    assert params["W"].shape == (10, 6) and params["L"].shape == (4, 6) and params["b"].shape == ()
    np.testing.assert_allclose(params["L"] @ params["L"].T, np.eye(4), atol=1e-5)
    with pytest.raises(ValueError, match="rank"):
        init_metric_params(jax.random.key(0), feature_dim=10, attribute_dim=6, rank=7)


def test_errors():
    params, x, att = _problem()
    with pytest.raises(ValueError, match="attribute"):
        distances(params, x, jnp.ones((C, P_ATT + 1)))
    with pytest.raises(ValueError, match="NaN"):
        distances(params, x.at[0, 0].set(jnp.nan), att)
    with pytest.raises(ValueError, match="features"):
        distances(params, jnp.ones((B, D_FEAT + 1)), att)
    with pytest.raises(ValueError, match="pair_classes"):
        pair_loss(params, x, att, jnp.full((B, 1), C), jnp.ones((B, 1), jnp.int32))
    with pytest.raises(ValueError, match="pair_labels"):
        pair_loss(params, x, att, jnp.zeros((B, 1), jnp.int32), jnp.zeros((B, 1), jnp.int32))
    with pytest.raises(ValueError, match="classes"):
        predict(params, x, att, classes=jnp.array([0, C]))


def test_shape_errors_are_raised_at_trace_time():
    params, x, att = _problem()
    with pytest.raises(ValueError, match=r"`x` must be \(B, 6\) image features"):
        jax.jit(distances)(params, jnp.ones((B, D_FEAT + 1)), att)
    with pytest.raises(ValueError, match="`pair_classes` and `pair_labels` must both be"):
        jax.jit(lambda c: pair_loss(params, x, att, c, c))(jnp.zeros((B,), jnp.int32))


def test_sharded_batch_loss_grads_and_predict():
    if jax.device_count() < 8:
        pytest.skip("needs 8 (virtual CPU) devices; set by the root conftest's XLA_FLAGS")
    from jax.sharding import AxisType, NamedSharding
    from jax.sharding import PartitionSpec as P

    params = init_metric_params(jax.random.key(0), feature_dim=D_FEAT, attribute_dim=P_ATT)
    rng = np.random.default_rng(0)
    x = jnp.asarray(rng.normal(size=(16, D_FEAT)), jnp.float32)
    att = jnp.asarray(rng.normal(size=(C, P_ATT)), jnp.float32)
    classes = jnp.asarray(rng.integers(0, C, (16, 3)), jnp.int32)
    labels = jnp.asarray(np.where(rng.random((16, 3)) < 0.5, 1, -1), jnp.int32)

    def loss(p, xx, cc, yy):
        return pair_loss(p, xx, att, cc, yy, lam=0.1).mean()

    want, want_grad = jax.value_and_grad(loss)(params, x, classes, labels)
    want_pred = predict(params, x, att, classes=[1, 4, 6])
    # Forward on the default (explicit-axes) mesh; gradients on an auto-axes mesh, since in
    # explicit mode the batch contraction in dW is ambiguous without an `out_sharding`.
    for axis_type in (AxisType.Explicit, AxisType.Auto):
        mesh = jax.make_mesh((8,), ("data",), axis_types=(axis_type,))
        rows = NamedSharding(mesh, P("data"))
        args = [jax.device_put(a, rows) for a in (x, classes, labels)]
        np.testing.assert_allclose(jax.jit(loss)(params, *args), want, rtol=1e-5)
        np.testing.assert_array_equal(
            jax.jit(lambda p, xx: predict(p, xx, att, classes=[1, 4, 6]))(params, args[0]),
            want_pred,
        )
    got_grad = jax.jit(jax.grad(loss))(params, *args)
    jax.tree.map(
        lambda g, w: np.testing.assert_allclose(g, w, rtol=1e-4, atol=1e-6), got_grad, want_grad
    )
