"""Tests of wsl_jax.models backbones: shapes, strides, parameter counts, torchvision names, BN, dtypes."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax import lax

from wsl_jax.models import (
    BACKBONES,
    VGG16,
    Bottleneck,
    ResNet,
    ResNet18,
    ResNet50,
    ResNet101,
    SmallCNN,
    build_backbone,
    layers,
    torch_key_to_flax,
)


def randn(shape, seed=0):
    """Standard normal float32 inputs from NumPy (JAX's RNG compiles slowly on CPU)."""
    return jnp.asarray(np.random.default_rng(seed).normal(size=shape), jnp.float32)


def shapes(module, x_shape, **kwargs):
    """(output, variables) as ShapeDtypeStructs, without running anything."""
    x = jax.ShapeDtypeStruct(x_shape, jnp.float32)
    return jax.eval_shape(lambda x: module.init_with_output(jax.random.key(0), x, **kwargs), x)


def numpy_init(module, x_shape, seed=0, **kwargs):
    """Random variables of the right structure, made with NumPy (compiling JAX's RNG is slow on CPU)."""
    _, variables = shapes(module, x_shape, **kwargs)
    rng = np.random.default_rng(seed)

    def fill(path, leaf):
        name = path[-1].key
        if name == "kernel":
            return jnp.asarray(
                rng.normal(size=leaf.shape) * np.sqrt(2.0 / np.prod(leaf.shape[:-1])), leaf.dtype
            )
        if name in ("scale", "var"):
            return jnp.asarray(rng.uniform(0.5, 1.5, size=leaf.shape), leaf.dtype)
        return jnp.asarray(rng.normal(size=leaf.shape) * 0.1, leaf.dtype)

    return jax.tree_util.tree_map_with_path(fill, variables)


def count(tree):
    return sum(int(np.prod(p.shape)) for p in jax.tree.leaves(tree))


# --------------------------------------------------------------------------------------------------
# Shapes, strides and parameter counts
# --------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "model, params, channels",
    [
        (ResNet18(), 11_176_512, 512),  # torchvision 11,689,512 − fc 513,000
        (ResNet50(), 23_508_032, 2048),  # torchvision 25,557,032 − fc 2,049,000
        (ResNet101(), 42_500_160, 2048),  # torchvision 44,549,160 − fc 2,049,000
        (VGG16(), 14_714_688, 512),  # torchvision vgg16.features
        (VGG16(use_bn=True), 14_723_136, 512),  # torchvision vgg16_bn.features
    ],
)
def test_parameter_counts_and_output_shape(model, params, channels):
    y, variables = shapes(model, (2, 64, 96, 3))
    assert count(variables["params"]) == params
    assert model.num_features == channels
    assert y.shape == (2, 64 // model.output_stride, 96 // model.output_stride, channels)
    assert y.dtype == jnp.float32


@pytest.mark.parametrize(
    "size, expected", [(32, 1), (33, 2), (64, 2), (100, 4), (224, 7), (448, 14)]
)
def test_resnet_output_size_follows_torch_arithmetic(size, expected):
    y, _ = shapes(ResNet18(), (1, size, size, 3))
    assert y.shape == (1, expected, expected, 512)


def test_vgg16_last_pool_off_has_stride_16():
    y, _ = shapes(VGG16(last_pool=False), (1, 64, 48, 3))
    assert y.shape == (1, 4, 3, 512)


@pytest.mark.parametrize("channels", [1, 3])
def test_small_cnn_runs_on_grayscale_and_rgb(channels):
    model = SmallCNN()
    x = randn((2, 64, 64, channels), seed=0)
    y = jax.jit(model.apply)(numpy_init(model, x.shape), x)
    assert y.shape == (2, 8, 8, 64) and model.output_stride == 8
    assert bool(jnp.all(y >= 0)) and bool(jnp.all(jnp.isfinite(y)))  # ends with ReLU


def test_small_cnn_widths_set_stride_and_depth():
    model = SmallCNN(widths=(4, 8, 8, 16), convs_per_stage=1)
    y, variables = shapes(model, (1, 32, 32, 3))
    assert y.shape == (1, 2, 2, 16) and model.output_stride == 16
    assert sorted(variables["params"]) == sorted(
        [f"stage{s}_{kind}1" for s in range(1, 5) for kind in ("conv", "bn")]
    )


def test_resnet18_runs_train_and_eval():
    model = ResNet18()
    x = randn((2, 32, 32, 3), seed=0)
    variables = numpy_init(model, x.shape)

    @jax.jit
    def both(variables, x):
        return model.apply(variables, x), model.apply(
            variables, x, train=True, mutable=["batch_stats"]
        )

    y_eval, (y_train, updates) = both(variables, x)
    assert y_eval.shape == y_train.shape == (2, 1, 1, 512)
    assert bool(jnp.all(jnp.isfinite(y_train))) and bool(jnp.all(jnp.isfinite(y_eval)))
    assert jax.tree.structure(updates["batch_stats"]) == jax.tree.structure(
        variables["batch_stats"]
    )


def test_bottleneck_puts_the_stride_on_the_3x3_conv():
    """torchvision v1.5: conv1 (1×1) keeps the resolution, conv2 (3×3) halves it."""
    _, variables = jax.eval_shape(
        lambda x: Bottleneck(features=8, stride=2).init_with_output(
            jax.random.key(0), x, capture_intermediates=True
        ),
        jnp.zeros((1, 8, 8, 16)),
    )
    inter = variables["intermediates"]
    assert inter["conv1"]["__call__"][0].shape == (1, 8, 8, 8)
    assert inter["conv2"]["__call__"][0].shape == (1, 4, 4, 8)
    assert inter["conv3"]["__call__"][0].shape == (1, 4, 4, 32)
    assert inter["downsample_0"]["__call__"][0].shape == (1, 4, 4, 32)


def test_resnet_stride_two_in_first_block_of_layers_2_to_4_only():
    _, variables = jax.eval_shape(
        lambda x: ResNet50().init_with_output(jax.random.key(0), x, capture_intermediates=True),
        jnp.zeros((1, 64, 64, 3)),
    )
    inter = variables["intermediates"]
    sizes = {
        name: inter[name]["__call__"][0].shape[1] for name in inter if name.startswith("layer")
    }
    assert sizes == {
        "layer1_0": 16,
        "layer1_1": 16,
        "layer1_2": 16,
        "layer2_0": 8,
        "layer2_1": 8,
        "layer2_2": 8,
        "layer2_3": 8,
        **{f"layer3_{i}": 4 for i in range(6)},
        "layer4_0": 2,
        "layer4_1": 2,
        "layer4_2": 2,
    }


@pytest.mark.parametrize("kernel, stride", [(7, 2), (3, 2), (3, 1), (1, 2)])
def test_conv_pads_symmetrically_like_torch(kernel, stride):
    layer = layers.conv(5, kernel, stride=stride)
    x = randn((1, 10, 11, 3), seed=0)
    params = numpy_init(layer, x.shape)
    w = params["params"]["kernel"]
    pad = kernel // 2
    expected = lax.conv_general_dilated(
        x, w, (stride, stride), ((pad, pad), (pad, pad)), dimension_numbers=("NHWC", "HWIO", "NHWC")
    )
    np.testing.assert_allclose(layer.apply(params, x), expected, rtol=1e-5, atol=1e-5)


# --------------------------------------------------------------------------------------------------
# torchvision state-dict names
# --------------------------------------------------------------------------------------------------
def torchvision_resnet_keys(stage_sizes, bottleneck):
    """The torchvision ResNet state-dict keys and tensor shapes (written out from its layout)."""
    keys = {}

    def conv(name, o, i, k):
        keys[f"{name}.weight"] = (o, i, k, k)

    def bn(name, c):
        for leaf in ("weight", "bias", "running_mean", "running_var"):
            keys[f"{name}.{leaf}"] = (c,)
        keys[f"{name}.num_batches_tracked"] = ()

    conv("conv1", 64, 3, 7)
    bn("bn1", 64)
    inplanes = 64
    for stage, n in enumerate(stage_sizes):
        planes = 64 * 2**stage
        out = planes * (4 if bottleneck else 1)
        for b in range(n):
            p = f"layer{stage + 1}.{b}"
            if bottleneck:
                conv(f"{p}.conv1", planes, inplanes, 1), bn(f"{p}.bn1", planes)
                conv(f"{p}.conv2", planes, planes, 3), bn(f"{p}.bn2", planes)
                conv(f"{p}.conv3", out, planes, 1), bn(f"{p}.bn3", out)
            else:
                conv(f"{p}.conv1", planes, inplanes, 3), bn(f"{p}.bn1", planes)
                conv(f"{p}.conv2", planes, planes, 3), bn(f"{p}.bn2", planes)
            if b == 0 and (stage > 0 or inplanes != out):
                conv(f"{p}.downsample.0", out, inplanes, 1), bn(f"{p}.downsample.1", out)
            inplanes = out
    keys["fc.weight"] = (1000, inplanes)
    keys["fc.bias"] = (1000,)
    return keys


def torchvision_vgg16_keys(use_bn):
    keys, index, cin = {}, 0, 3
    for v in (
        64,
        64,
        "M",
        128,
        128,
        "M",
        256,
        256,
        256,
        "M",
        512,
        512,
        512,
        "M",
        512,
        512,
        512,
        "M",
    ):
        if v == "M":
            index += 1
            continue
        keys[f"features.{index}.weight"], keys[f"features.{index}.bias"] = (v, cin, 3, 3), (v,)
        if use_bn:
            for leaf in ("weight", "bias", "running_mean", "running_var"):
                keys[f"features.{index + 1}.{leaf}"] = (v,)
            keys[f"features.{index + 1}.num_batches_tracked"] = ()
        index, cin = index + (3 if use_bn else 2), v
    keys["classifier.0.weight"] = (4096, 512 * 7 * 7)
    return keys


@pytest.mark.parametrize(
    "model, keys, total",
    [
        (ResNet18(), torchvision_resnet_keys((2, 2, 2, 2), False), 11_689_512),
        (ResNet50(), torchvision_resnet_keys((3, 4, 6, 3), True), 25_557_032),
        (ResNet101(), torchvision_resnet_keys((3, 4, 23, 3), True), 44_549_160),
        (VGG16(), torchvision_vgg16_keys(False), None),
        (VGG16(use_bn=True), torchvision_vgg16_keys(True), None),
    ],
)
def test_torch_key_to_flax_covers_every_variable_once(model, keys, total):
    if total is not None:  # The written-out key list is torchvision's: its parameter count agrees.
        learnable = [
            k
            for k in keys
            if not k.endswith(("running_mean", "running_var", "num_batches_tracked"))
        ]
        assert sum(int(np.prod(keys[k])) for k in learnable) == total
    _, variables = shapes(model, (1, 32, 32, 3))
    flat = {
        (col, *path): leaf.shape
        for col in variables
        for path, leaf in (
            (tuple(p.key for p in kp), v)
            for kp, v in jax.tree_util.tree_leaves_with_path(variables[col])
        )
    }
    seen = set()
    for key, shape in keys.items():
        target = torch_key_to_flax(key, len(shape))
        if target is None:
            assert key.startswith(("fc.", "classifier.")) or key.endswith("num_batches_tracked")
            continue
        col, path = target
        flax_key = (col, *path)
        assert flax_key in flat, key
        expected = tuple(shape[i] for i in (2, 3, 1, 0)) if len(shape) == 4 else shape
        assert flat[flax_key] == expected, key
        seen.add(flax_key)
    assert seen == set(flat)


def test_torch_key_to_flax_rejects_an_unexpected_weight_rank():
    with pytest.raises(ValueError, match="ndim=2"):
        torch_key_to_flax("layer1.0.conv1.weight", 2)


# --------------------------------------------------------------------------------------------------
# BatchNorm: train vs eval
# --------------------------------------------------------------------------------------------------
def test_batch_norm_train_updates_stats_eval_freezes_them():
    model = SmallCNN(widths=(4, 8))
    x = randn((4, 16, 16, 3), seed=0) * 3 + 1
    variables = numpy_init(model, x.shape)
    stats0 = variables["batch_stats"]
    run = jax.jit(model.apply, static_argnames=("train", "mutable"))

    _, eval_state = run(variables, x, train=False, mutable=("batch_stats",))
    jax.tree.map(np.testing.assert_array_equal, eval_state["batch_stats"], stats0)

    y_train, train_state = run(variables, x, train=True, mutable=("batch_stats",))
    for new, old in zip(jax.tree.leaves(train_state["batch_stats"]), jax.tree.leaves(stats0)):
        assert not np.allclose(new, old)

    # Eval output of an example does not depend on the rest of the batch; train output does.
    y_eval, _ = run(variables, x, train=False, mutable=("batch_stats",))
    y_eval_alone, _ = run(
        variables, jnp.tile(x[:1], (4, 1, 1, 1)), train=False, mutable=("batch_stats",)
    )
    np.testing.assert_allclose(y_eval_alone[0], y_eval[0], rtol=1e-5, atol=1e-5)
    y_train_alone, _ = run(
        variables, jnp.tile(x[:1], (4, 1, 1, 1)), train=True, mutable=("batch_stats",)
    )
    assert not np.allclose(y_train_alone[0], y_train[0], atol=1e-3)


def test_eval_without_mutable_works_and_train_requires_it():
    model = SmallCNN(widths=(4,))
    x = jnp.ones((2, 8, 8, 1))
    variables = numpy_init(model, x.shape)
    jax.eval_shape(model.apply, variables, x)  # eval: batch_stats are only read
    with pytest.raises(Exception, match="batch_stats"):
        jax.eval_shape(lambda v, x: model.apply(v, x, train=True), variables, x)


def test_batch_norm_running_mean_uses_torch_momentum():
    bn = layers.batch_norm(train=True)
    x = randn((4, 3, 3, 5), seed=0) + 2.0
    variables = numpy_init(bn, x.shape)
    _, state = jax.jit(lambda v, x: bn.apply(v, x, mutable=["batch_stats"]))(variables, x)
    expected = 0.9 * variables["batch_stats"]["mean"] + 0.1 * x.mean(axis=(0, 1, 2))
    np.testing.assert_allclose(state["batch_stats"]["mean"], expected, rtol=1e-5)


# --------------------------------------------------------------------------------------------------
# Mixed precision
# --------------------------------------------------------------------------------------------------
def test_small_cnn_bfloat16_activations_float32_params():
    model16, model32 = SmallCNN(widths=(4, 8), dtype=jnp.bfloat16), SmallCNN(widths=(4, 8))
    x = randn((2, 16, 16, 3), seed=0)
    variables = numpy_init(model16, x.shape)
    assert all(p.dtype == jnp.float32 for p in jax.tree.leaves(variables))

    @jax.jit
    def both(variables, x):
        return (
            model16.apply(variables, x, train=True, mutable=["batch_stats"]),
            model32.apply(variables, x, train=True, mutable=["batch_stats"]),
        )

    (y, state), (y32, _) = both(variables, x)
    assert y.dtype == jnp.bfloat16 and y32.dtype == jnp.float32
    assert all(p.dtype == jnp.float32 for p in jax.tree.leaves(state))
    np.testing.assert_allclose(np.asarray(y, np.float32), y32, rtol=0.05, atol=0.05)


@pytest.mark.parametrize("name", ["resnet18", "resnet50", "vgg16"])
def test_bfloat16_backbones(name):
    y, variables = shapes(build_backbone(name, dtype=jnp.bfloat16), (1, 32, 32, 3))
    assert y.dtype == jnp.bfloat16
    assert {p.dtype for p in jax.tree.leaves(variables)} == {jnp.dtype(jnp.float32)}


# --------------------------------------------------------------------------------------------------
# Registry and errors
# --------------------------------------------------------------------------------------------------
def test_build_backbone_names():
    assert sorted(BACKBONES) == [
        "efficientnet_lite0",
        "resnet101",
        "resnet18",
        "resnet50",
        "small_cnn",
        "vgg16",
    ]
    for name, cls in BACKBONES.items():
        assert type(build_backbone(name)) is cls
    with pytest.raises(ValueError, match="valid names: 'small_cnn', 'resnet18'"):
        build_backbone("resnet34")


def test_efficientnet_lite0_without_weights_trains_and_checks_its_input():
    """No extra needed: shapes, train-mode BatchNorm, residual-free block 0, bfloat16, min size."""
    model = build_backbone("efficientnet_lite0")
    x = jax.random.normal(jax.random.key(1), (2, 64, 96, 3))
    variables = model.init(jax.random.key(0), x)
    assert "_expand_conv" not in variables["params"]["_blocks_0"]  # expansion 1
    assert variables["params"]["_blocks_15"]["_project_conv"]["kernel"].shape == (1, 1, 1152, 320)
    y, updates = model.apply(variables, x, train=True, mutable=["batch_stats"])
    assert y.shape == (2, 2, 3, 1280) and float(y.min()) >= 0.0 and float(y.max()) <= 6.0  # ReLU6
    moved = jax.tree.map(
        lambda a, b: bool(jnp.any(a != b)), updates["batch_stats"], variables["batch_stats"]
    )
    assert all(jax.tree.leaves(moved))
    y16 = build_backbone("efficientnet_lite0", dtype=jnp.bfloat16).apply(variables, x)
    assert y16.dtype == jnp.bfloat16
    with pytest.raises(ValueError, match="at least 32×32"):
        model.apply(variables, x[:, :31])


@pytest.mark.parametrize("model", [SmallCNN(widths=(4,)), ResNet18(), VGG16()])
@pytest.mark.parametrize("shape", [(8, 8, 3), (1, 2, 8, 8, 3), (64,)])
def test_non_nhwc_input_raises(model, shape):
    with pytest.raises(
        ValueError, match=r"images must be a 4-D NHWC array .*\(batch, height, width, channels\)"
    ):
        shapes(model, shape)


def test_integer_images_raise():
    with pytest.raises(TypeError, match="floating-point"):
        jax.eval_shape(
            SmallCNN(widths=(4,)).init, jax.random.key(0), jnp.zeros((1, 8, 8, 3), jnp.uint8)
        )


def test_too_small_input_raises():
    with pytest.raises(ValueError, match="at least 32×32"):
        shapes(VGG16(), (1, 16, 40, 3))
    with pytest.raises(ValueError, match="at least 8×8"):
        shapes(SmallCNN(), (1, 4, 4, 3))


def test_bad_resnet_configuration_raises():
    with pytest.raises(ValueError, match="block must be one of"):
        shapes(ResNet(block="dense"), (1, 32, 32, 3))
    with pytest.raises(ValueError, match="stage_sizes"):
        shapes(ResNet(stage_sizes=(2, 2, 2)), (1, 32, 32, 3))


def _numpy_depthwise_same(x, kernel, stride):
    """Depthwise convolution with TensorFlow "SAME" padding, written from the definition."""
    n, h, w, c = x.shape
    k = kernel.shape[0]
    out_h, out_w = -(-h // stride), -(-w // stride)
    pad_h = max((out_h - 1) * stride + k - h, 0)
    pad_w = max((out_w - 1) * stride + k - w, 0)
    padded = np.zeros((n, h + pad_h, w + pad_w, c))
    padded[:, pad_h // 2 : pad_h // 2 + h, pad_w // 2 : pad_w // 2 + w] = x
    out = np.zeros((n, out_h, out_w, c))
    for i in range(out_h):
        for j in range(out_w):
            window = padded[:, i * stride : i * stride + k, j * stride : j * stride + k]
            out[:, i, j] = np.einsum("nabc,abc->nc", window, kernel[:, :, 0])
    return out


@pytest.mark.parametrize(
    "kernel,stride,shape",
    [(3, 1, (2, 7, 6, 5)), (5, 2, (1, 9, 8, 3)), (3, 2, (1, 10, 11, 4)), (5, 1, (1, 4, 4, 2))],
)
@pytest.mark.parametrize("implementation", ["shifted", "grouped"])
def test_efficientnet_depthwise_conv_matches_numpy(kernel, stride, shape, implementation):
    from wsl_jax.models.efficientnet import DepthwiseConv

    x = np.random.default_rng(0).normal(size=shape).astype(np.float32)
    layer = DepthwiseConv(kernel, stride, implementation=implementation)
    variables = layer.init(jax.random.key(0), x)
    expected = _numpy_depthwise_same(x, np.asarray(variables["params"]["kernel"]), stride)
    np.testing.assert_allclose(layer.apply(variables, x), expected, atol=1e-5)
    grads = jax.grad(lambda v: jnp.sum(layer.apply(v, x) ** 2))(variables)  # differentiable
    assert np.isfinite(np.asarray(grads["params"]["kernel"])).all()
