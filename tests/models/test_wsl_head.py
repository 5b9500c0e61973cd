"""Tests of WSLHead, WSLNet and build_model against manual computations (SPEC §A1–A2, A8)."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from jax.test_util import check_grads

from wsl_jax.models import SmallCNN, WSLHead, WSLNet, build_model
from wsl_jax.pooling import class_wise_mean, max_min_pool


def randn(shape, seed=0):
    """Standard normal float32 inputs from NumPy (JAX's RNG compiles slowly on CPU)."""
    return jnp.asarray(np.random.default_rng(seed).normal(size=shape), jnp.float32)


def numpy_init(module, x_shape, seed=0, **kwargs):
    """Random variables of the right structure, made with NumPy (compiling JAX's RNG is slow on CPU)."""
    x = jax.ShapeDtypeStruct(x_shape, jnp.float32)
    variables = jax.eval_shape(lambda x: module.init(jax.random.key(0), x, **kwargs), x)
    rng = np.random.default_rng(seed)

    def fill(path, leaf):
        name = path[-1].key
        if name == "kernel":
            return jnp.asarray(
                rng.normal(size=leaf.shape) / np.sqrt(np.prod(leaf.shape[:-1])), leaf.dtype
            )
        if name in ("scale", "var"):
            return jnp.asarray(rng.uniform(0.5, 1.5, size=leaf.shape), leaf.dtype)
        return jnp.asarray(rng.normal(size=leaf.shape) * 0.1, leaf.dtype)

    return jax.tree_util.tree_map_with_path(fill, variables)


def oracle_scores(features, kernel, bias, num_maps, k_top, k_bot, lam):
    """NumPy: 1×1 conv, channel c·M + m averaged per class, sort-based top/bottom means."""
    z = np.einsum("bhwd,dk->bhwk", features, kernel) + bias
    b, h, w, cm = z.shape
    c = cm // num_maps
    maps = np.stack(
        [z[..., [ci * num_maps + m for m in range(num_maps)]].mean(-1) for ci in range(c)], -1
    )
    regions = np.sort(maps.reshape(b, h * w, c), axis=1)
    scores = regions[:, -k_top:].mean(1)
    if k_bot:
        scores = scores + lam * regions[:, :k_bot].mean(1)
    return scores, maps


@pytest.mark.parametrize(
    "num_maps, k_max, k_min, lam, k_top, k_bot",
    [
        (1, 1, 0, 1.0, 1, 0),  # global max pooling
        (1, 3, 3, 1.0, 3, 3),  # WELDON
        (4, 0.2, 0.2, 0.7, 4, 4),  # WILDCAT, fractions of 20 regions
        (3, 1.0, 1, 0.5, 20, 1),  # global average pooling + λ · min
    ],
)
def test_head_equals_manual_computation(num_maps, k_max, k_min, lam, k_top, k_bot):
    head = WSLHead(num_classes=5, num_maps=num_maps, k_max=k_max, k_min=k_min, lam=lam)
    features = randn((3, 4, 5, 6), seed=0)
    params = numpy_init(head, features.shape)
    kernel, bias = params["params"]["transfer"]["kernel"], params["params"]["transfer"]["bias"]
    assert kernel.shape == (1, 1, 6, 5 * num_maps) and bias.shape == (5 * num_maps,)

    @jax.jit
    def both(params, features):
        scores, maps = head.apply(params, features, return_maps=True)
        # The manual recipe: 1×1 conv as an einsum, class_wise_mean, max_min_pool.
        z = jnp.einsum("bhwd,dk->bhwk", features, kernel[0, 0]) + bias
        manual_maps = class_wise_mean(z, num_maps)
        manual = max_min_pool(manual_maps, k_max=k_max, k_min=k_min, lam=lam, axis=(1, 2))
        pooled_maps = max_min_pool(maps, k_max=k_max, k_min=k_min, lam=lam, axis=(1, 2))
        return scores, maps, manual, manual_maps, pooled_maps, head.apply(params, features)

    scores, maps, manual, manual_maps, pooled_maps, scores_only = both(params, features)
    assert scores.shape == (3, 5) and maps.shape == (3, 4, 5, 5)
    np.testing.assert_allclose(maps, manual_maps, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(scores, manual, rtol=1e-5, atol=1e-5)
    # return_maps: the maps pooled give the scores; the scores do not depend on return_maps.
    np.testing.assert_array_equal(pooled_maps, scores)
    np.testing.assert_array_equal(scores_only, scores)

    # And an independent NumPy oracle with explicit class-major grouping and sorting.
    expected, expected_maps = oracle_scores(
        np.asarray(features, np.float64),
        np.asarray(kernel[0, 0], np.float64),
        np.asarray(bias, np.float64),
        num_maps,
        k_top,
        k_bot,
        lam,
    )
    np.testing.assert_allclose(maps, expected_maps, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(scores, expected, rtol=1e-4, atol=1e-5)


def test_wildcat_convention_halves_the_score():
    features = randn((2, 4, 4, 3), seed=2)
    kwargs = {"num_classes": 3, "num_maps": 2, "k_max": 1, "k_min": 1, "lam": 0.7}
    params = numpy_init(WSLHead(**kwargs), features.shape)
    paper, wildcat = jax.jit(
        lambda p, f: (
            WSLHead(**kwargs).apply(p, f),
            WSLHead(**kwargs, convention="wildcat").apply(p, f),
        )
    )(params, features)
    np.testing.assert_allclose(wildcat, 0.5 * paper, rtol=1e-6)


# --------------------------------------------------------------------------------------------------
# Gradients
# --------------------------------------------------------------------------------------------------
def tiny_case():
    head = WSLHead(num_classes=2, num_maps=3, k_max=2, k_min=1, lam=0.7)
    features = randn((2, 3, 3, 4), seed=3)
    params = numpy_init(head, features.shape, seed=3)
    weights = randn((2, 2), seed=4)
    return head, features, params, weights


def test_transfer_gradient_matches_finite_differences():
    head, features, params, weights = tiny_case()

    @jax.jit
    def objective(kernel, bias):
        p = {"params": {"transfer": {"kernel": kernel, "bias": bias}}}
        return jnp.sum(head.apply(p, features) * weights)

    t = params["params"]["transfer"]
    grads = jax.grad(objective, argnums=(0, 1))(t["kernel"], t["bias"])
    assert all(bool(jnp.all(jnp.isfinite(g))) for g in grads)
    check_grads(objective, (t["kernel"], t["bias"]), order=1, modes=["rev"], atol=1e-2, rtol=1e-2)


def test_transfer_gradient_has_the_1_over_M_factor():
    """d s_c / d W[d, c·M + m] = (1/M) Σ_regions w_r x_{r,d} (the official ClassWisePool omits 1/M)."""
    head, features, params, weights = tiny_case()
    kernel = params["params"]["transfer"]["kernel"]

    def objective(kernel):
        p = {
            "params": {"transfer": {"kernel": kernel, "bias": params["params"]["transfer"]["bias"]}}
        }
        return jnp.sum(head.apply(p, features) * weights)

    grad = np.asarray(jax.jit(jax.grad(objective))(kernel))[0, 0]  # (D, C·M)

    _, maps = oracle_scores(
        np.asarray(features, np.float64),
        np.asarray(kernel[0, 0], np.float64),
        np.asarray(params["params"]["transfer"]["bias"], np.float64),
        3,
        2,
        1,
        0.7,
    )
    x = np.asarray(features, np.float64).reshape(2, 9, 4)
    expected = np.zeros((4, 6))
    for b in range(2):
        for c in range(2):
            order = np.argsort(maps[b].reshape(9, 2)[:, c], kind="stable")
            w = np.zeros(9)
            w[order[-2:]] += 1 / 2
            w[order[:1]] += 0.7
            for m in range(3):
                expected[:, c * 3 + m] += weights[b, c] * (w @ x[b]) / 3
    np.testing.assert_allclose(grad, expected, rtol=1e-4, atol=1e-5)


def test_jitted_train_step_runs():
    net = WSLNet(
        SmallCNN(widths=(4, 8)), WSLHead(num_classes=3, num_maps=2, k_max=1, k_min=1, lam=0.7)
    )
    images = randn((4, 16, 16, 1), seed=5)
    labels = jnp.array([0, 1, 2, 1])
    variables = numpy_init(net, images.shape)
    tx = optax.sgd(0.1, momentum=0.9)
    opt_state = tx.init(variables["params"])

    @jax.jit
    def step(params, batch_stats, opt_state):
        def loss_fn(params):
            scores, updates = net.apply(
                {"params": params, "batch_stats": batch_stats},
                images,
                train=True,
                mutable=["batch_stats"],
            )
            return optax.softmax_cross_entropy_with_integer_labels(scores, labels).mean(), updates

        (loss, updates), grads = jax.value_and_grad(loss_fn, has_aux=True)(params)
        change, opt_state = tx.update(grads, opt_state, params)
        return optax.apply_updates(params, change), updates["batch_stats"], opt_state, loss, grads

    params, batch_stats = variables["params"], variables["batch_stats"]
    losses = []
    for _ in range(5):
        params, new_stats, opt_state, loss, grads = step(params, batch_stats, opt_state)
        assert all(bool(jnp.all(jnp.isfinite(g))) for g in jax.tree.leaves(grads))
        assert jax.tree.structure(new_stats) == jax.tree.structure(batch_stats)
        batch_stats = new_stats
        losses.append(float(loss))
    assert np.all(np.isfinite(losses)) and losses[-1] < losses[0]
    assert sorted(grads) == ["backbone", "head"]


def test_bfloat16_model_has_bf16_maps_f32_scores_and_params():
    net = build_model(
        "small_cnn", 3, num_maps=2, k_max=1, k_min=1, lam=0.7, dtype=jnp.bfloat16, widths=(4, 8)
    )
    images = randn((2, 16, 16, 3), seed=6)
    variables = numpy_init(net, images.shape)
    assert {p.dtype for p in jax.tree.leaves(variables)} == {jnp.dtype(jnp.float32)}
    scores, maps = jax.jit(lambda v, x: net.apply(v, x, return_maps=True))(variables, images)
    assert maps.dtype == jnp.bfloat16 and maps.shape == (2, 4, 4, 3)
    assert scores.dtype == jnp.float32 and scores.shape == (2, 3)
    np.testing.assert_array_equal(
        scores, max_min_pool(maps.astype(jnp.float32), k_max=1, k_min=1, lam=0.7, axis=(1, 2))
    )


@pytest.mark.parametrize(
    "name, stride, channels",
    [
        ("small_cnn", 8, 64),
        ("resnet18", 32, 512),
        ("resnet50", 32, 2048),
        ("resnet101", 32, 2048),
        ("vgg16", 32, 512),
    ],
)
def test_build_model_shapes(name, stride, channels):
    net = build_model(name, 20, num_maps=8, k_max=0.2, k_min=0.2, lam=0.7)
    assert net.output_stride == stride
    x = jax.ShapeDtypeStruct((2, 64, 64, 3), jnp.float32)
    variables = jax.eval_shape(lambda x: net.init(jax.random.key(0), x), x)
    assert variables["params"]["head"]["transfer"]["kernel"].shape == (1, 1, channels, 160)
    scores, maps = jax.eval_shape(lambda v, x: net.apply(v, x, return_maps=True), variables, x)
    assert scores.shape == (2, 20) and maps.shape == (2, 64 // stride, 64 // stride, 20)


# --------------------------------------------------------------------------------------------------
# Errors
# --------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "num_maps, error",
    [(0, ValueError), (-2, ValueError), (1.5, TypeError), (True, TypeError), ("8", TypeError)],
)
def test_bad_num_maps(num_maps, error):
    with pytest.raises(error, match="num_maps must be a positive int"):
        WSLHead(num_classes=3, num_maps=num_maps)


@pytest.mark.parametrize(
    "num_classes, error", [(0, ValueError), (-1, ValueError), (2.0, TypeError)]
)
def test_bad_num_classes(num_classes, error):
    with pytest.raises(error, match="num_classes must be a positive int"):
        WSLHead(num_classes=num_classes)
    with pytest.raises(error, match="num_classes must be a positive int"):
        build_model("small_cnn", num_classes)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"k_max": 0}, "k_max"),
        ({"k_max": 1.5}, "k_max"),
        ({"k_min": -1}, "k_min"),
        ({"lam": -0.5}, "lam"),
        ({"convention": "lua"}, "convention"),
    ],
)
def test_bad_pooling_settings(kwargs, match):
    with pytest.raises(ValueError, match=match):
        WSLHead(num_classes=3, **kwargs)


@pytest.mark.parametrize("shape", [(4, 4, 8), (2, 1, 4, 4, 8), (8,)])
def test_head_rejects_non_nhwc_features(shape):
    head = WSLHead(num_classes=3)
    with pytest.raises(
        ValueError, match=r"features must be a 4-D NHWC array .*\(batch, height, width, channels\)"
    ):
        jax.eval_shape(head.init, jax.random.key(0), jnp.zeros(shape))


def test_net_rejects_non_nhwc_images():
    net = build_model("small_cnn", 3)
    with pytest.raises(ValueError, match=r"images must be a 4-D NHWC array"):
        jax.eval_shape(net.init, jax.random.key(0), jnp.zeros((64, 64, 3)))


def test_build_model_unknown_name_lists_valid_names():
    with pytest.raises(
        ValueError,
        match=r"unknown backbone 'resnet152'; valid names: 'small_cnn', "
        r"'resnet18', 'resnet50', 'resnet101', 'vgg16'",
    ):
        build_model("resnet152", 10)
