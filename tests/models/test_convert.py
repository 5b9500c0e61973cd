"""Tests of wsl_jax.models.convert: torchvision ResNet and wildcat.pytorch checkpoints → Flax.

The PyTorch references are built here from ``torch.nn`` layers with torchvision's parameter names
(torchvision itself is not needed) and compared with the converted Flax models in eval mode.
"""

import os
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from wsl_jax.models import ResNet18, build_model
from wsl_jax.models.convert import (
    load_torch_state_dict,
    torchvision_resnet_to_flax,
    wildcat_checkpoint_to_flax,
)

torch = pytest.importorskip(
    "torch", reason="torch (optional dependency) is needed to build the PyTorch reference models"
)
nn = torch.nn

SIZE = 64  # ResNet input size: 2×2 feature map.
WILDCAT_SIZE = 96  # 3×3 = 9 regions for the pooling test.


# --------------------------------------------------------------------------------------------------
# A torchvision-named ResNet-18 from torch.nn (torchvision's layout and parameter names)
# --------------------------------------------------------------------------------------------------
class TorchBasicBlock(nn.Module):
    def __init__(self, inplanes, planes, stride=1):
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU()
        self.conv2 = nn.Conv2d(planes, planes, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = None
        if stride != 1 or inplanes != planes:
            self.downsample = nn.Sequential(
                nn.Conv2d(inplanes, planes, 1, stride=stride, bias=False), nn.BatchNorm2d(planes)
            )

    def forward(self, x):
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        identity = x if self.downsample is None else self.downsample(x)
        return self.relu(out + identity)


class TorchResNet18(nn.Module):
    """torchvision's resnet18 minus the global pooling in ``forward`` (returns the layer4 map)."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, 7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU()
        self.maxpool = nn.MaxPool2d(3, stride=2, padding=1)
        inplanes = 64
        for i, planes in enumerate((64, 128, 256, 512), start=1):
            stride = 1 if i == 1 else 2
            blocks = [TorchBasicBlock(inplanes, planes, stride), TorchBasicBlock(planes, planes)]
            setattr(self, f"layer{i}", nn.Sequential(*blocks))
            inplanes = planes
        self.fc = nn.Linear(512, 1000)  # In the state dict; ignored by the converter.

    def forward(self, x):
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        return self.layer4(self.layer3(self.layer2(self.layer1(x))))


def randomize_batch_norm(model, seed):
    """Non-trivial BN parameters and running statistics, so that a swapped mean/var would show."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, nn.BatchNorm2d):
                c = module.num_features
                module.weight.copy_(0.5 + torch.rand(c, generator=gen))
                module.bias.copy_(0.2 * torch.randn(c, generator=gen))
                module.running_mean.copy_(0.2 * torch.randn(c, generator=gen))
                module.running_var.copy_(0.5 + torch.rand(c, generator=gen))
                module.num_batches_tracked.fill_(7)
    return model


def torch_resnet18(seed=0):
    torch.manual_seed(seed)
    return randomize_batch_norm(TorchResNet18(), seed).eval()


# --------------------------------------------------------------------------------------------------
# wildcat.pytorch's ResNetWSL, from the spec (features Sequential, 1×1 classifier, official pooling)
# --------------------------------------------------------------------------------------------------
def official_wildcat_pool(maps, k_max, k_min, alpha):
    """½·(mean top k⁺ + α·mean bottom k⁻) of each (B, C, h, w) map, sort-based, k < 1 → round(k·n)."""
    b, c, h, w = maps.shape
    n = h * w

    def count(k):
        if k <= 0:
            return 0
        return round(k * n) if k < 1 else min(int(k), n)

    kmax, kmin = count(k_max), count(k_min)
    ordered, _ = torch.sort(maps.reshape(b, c, n), dim=2, descending=True)
    out = ordered[:, :, :kmax].sum(2) / kmax
    if kmin > 0 and alpha != 0:
        out = (out + alpha * ordered[:, :, n - kmin :].sum(2) / kmin) / 2
    return out


class TorchWildcat(nn.Module):
    def __init__(self, trunk, num_classes, num_maps, k_max, k_min, alpha):
        super().__init__()
        self.features = nn.Sequential(
            trunk.conv1, trunk.bn1, trunk.relu, trunk.maxpool,
            trunk.layer1, trunk.layer2, trunk.layer3, trunk.layer4,
        )  # fmt: skip
        self.classifier = nn.Sequential(nn.Conv2d(512, num_classes * num_maps, 1, bias=True))
        self.num_classes, self.num_maps = num_classes, num_maps
        self.k_max, self.k_min, self.alpha = k_max, k_min, alpha

    def forward(self, x):
        maps = self.classifier(self.features(x))
        b, _, h, w = maps.shape
        class_maps = maps.view(b, self.num_classes, self.num_maps, h, w).mean(2)  # Class-major.
        return official_wildcat_pool(class_maps, self.k_max, self.k_min, self.alpha)


# --------------------------------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------------------------------
def images(size, seed=0, batch=2):
    return np.random.default_rng(seed).normal(size=(batch, size, size, 3)).astype(np.float32)


def run_torch(model, x_nhwc):
    with torch.no_grad():
        return model(torch.from_numpy(x_nhwc).permute(0, 3, 1, 2).contiguous()).numpy()


def assert_close(ours, ref, tol=1e-4):
    """Relative to the reference's scale: |ours − ref| ≤ tol·(|ref| + max|ref|)."""
    ours, ref = np.asarray(ours), np.asarray(ref)
    assert ours.shape == ref.shape
    np.testing.assert_allclose(ours, ref, rtol=tol, atol=tol * float(np.abs(ref).max()))


def state_numpy(model):
    return {k: v.detach().numpy().copy() for k, v in model.state_dict().items()}


@pytest.fixture(scope="module")
def resnet18_pair():
    """(torch model, its state dict as NumPy, ResNet18 template)."""
    model = torch_resnet18()
    template = jax.eval_shape(ResNet18().init, jax.random.key(0), jnp.zeros((1, SIZE, SIZE, 3)))
    return model, state_numpy(model), template


# --------------------------------------------------------------------------------------------------
# Tests
# --------------------------------------------------------------------------------------------------
def test_resnet18_features_match_torch(resnet18_pair):
    model, state, template = resnet18_pair
    variables = torchvision_resnet_to_flax(state, template)
    assert jax.tree.structure(variables) == jax.tree.structure(template)
    x = images(SIZE)
    ours = jax.jit(ResNet18().apply)(variables, x)  # Eval mode: train=False.
    ref = run_torch(model, x).transpose(0, 2, 3, 1)
    assert ref.shape == (2, 2, 2, 512)
    assert_close(ours, ref)


def test_torch_tensors_and_module_prefix_accepted(resnet18_pair):
    model, state, template = resnet18_pair
    from_tensors = torchvision_resnet_to_flax(model.state_dict(), template)
    prefixed = torchvision_resnet_to_flax({f"module.{k}": v for k, v in state.items()}, template)
    for a, b in zip(jax.tree.leaves(from_tensors), jax.tree.leaves(prefixed)):
        np.testing.assert_array_equal(a, b)
    kernel = from_tensors["params"]["layer2_0"]["downsample_0"]["kernel"]
    np.testing.assert_array_equal(
        kernel, state["layer2.0.downsample.0.weight"].transpose(2, 3, 1, 0)
    )
    np.testing.assert_array_equal(
        from_tensors["batch_stats"]["bn1"]["var"], state["bn1.running_var"]
    )


def test_wildcat_checkpoint_scores_match_torch():
    num_classes, num_maps, k_max, k_min, alpha = 3, 4, 0.25, 0.4, 0.7  # 9 regions: k⁺=2, k⁻=4.
    torch.manual_seed(1)
    ref_model = TorchWildcat(torch_resnet18(seed=1), num_classes, num_maps, k_max, k_min, alpha)
    with torch.no_grad():
        ref_model.classifier[0].bias.copy_(torch.randn(num_classes * num_maps))
    ref_model.eval()
    net = build_model(
        "resnet18", num_classes, num_maps=num_maps, k_max=k_max, k_min=k_min, lam=alpha,
        convention="wildcat",
    )  # fmt: skip
    x = images(WILDCAT_SIZE, seed=3)
    template = jax.eval_shape(net.init, jax.random.key(0), x)
    variables = wildcat_checkpoint_to_flax(
        ref_model.state_dict(), template, num_classes=num_classes, num_maps=num_maps
    )
    assert sorted(variables["params"]) == ["backbone", "head"]
    assert sorted(variables["params"]["head"]["transfer"]) == ["bias", "kernel"]
    scores, maps = jax.jit(lambda v, x: net.apply(v, x, return_maps=True))(variables, x)
    ref = run_torch(ref_model, x)
    assert scores.shape == ref.shape == (2, num_classes)
    assert_close(scores, ref)
    with torch.no_grad():
        raw = ref_model.classifier(ref_model.features(torch.from_numpy(x).permute(0, 3, 1, 2)))
    ref_maps = raw.view(2, num_classes, num_maps, 3, 3).mean(2).permute(0, 2, 3, 1).numpy()
    assert_close(maps, ref_maps)


def test_wildcat_wrong_num_maps_is_a_clear_error(resnet18_pair):
    net = build_model("resnet18", 3, num_maps=4, convention="wildcat")
    template = jax.eval_shape(net.init, jax.random.key(0), jnp.zeros((1, SIZE, SIZE, 3)))
    state = {"classifier.0.weight": np.zeros((12, 512, 1, 1)), "classifier.0.bias": np.zeros(12)}
    with pytest.raises(ValueError, match=r"12 output channels but num_classes·num_maps = 3·2 = 6"):
        wildcat_checkpoint_to_flax(state, template, num_classes=3, num_maps=2)


def test_missing_unexpected_and_mismatched_keys_are_listed(resnet18_pair):
    _, state, template = resnet18_pair
    broken = dict(state)
    del broken["layer3.1.bn2.running_var"]
    broken["layer1.0.conv1.weight"] = np.zeros((64, 64, 5, 5), np.float32)
    broken["layer9.0.conv1.weight"] = np.zeros((8, 8, 3, 3), np.float32)
    with pytest.raises(ValueError) as info:
        torchvision_resnet_to_flax(broken, template)
    message = str(info.value)
    assert "1 missing keys" in message
    assert "layer3.1.bn2.running_var (→ batch_stats/layer3_1/bn2/var)" in message
    assert "1 unexpected keys" in message and "layer9.0.conv1.weight" in message
    assert "1 shape mismatches" in message
    assert "layer1.0.conv1.weight → params/layer1_0/conv1/kernel" in message
    assert "expected (64, 64, 3, 3) (OIHW; (3, 3, 64, 64) as HWIO), got (64, 64, 5, 5)" in message
    assert "layer9.0.conv1.weight (8, 8, 3, 3)" in message  # Shapes as stored in the state dict.


def test_fc_and_num_batches_tracked_are_ignored_but_nothing_else(resnet18_pair):
    _, state, template = resnet18_pair
    assert "fc.weight" in state and "bn1.num_batches_tracked" in state
    torchvision_resnet_to_flax(state, template)  # No error.
    only_backbone = {k: v for k, v in state.items() if not k.startswith("fc.")}
    torchvision_resnet_to_flax(only_backbone, template)
    with pytest.raises(ValueError, match="unexpected keys"):
        torchvision_resnet_to_flax({**state, "head.weight": np.zeros((3, 3, 1, 1))}, template)


def test_pth_round_trip(tmp_path, resnet18_pair):
    model, state, _ = resnet18_pair
    path = tmp_path / "resnet18.pth"
    torch.save(model.state_dict(), path)
    loaded = load_torch_state_dict(path)
    assert list(loaded) == list(state)
    for key in state:
        assert isinstance(loaded[key], np.ndarray)
        np.testing.assert_array_equal(loaded[key], state[key])


def test_training_checkpoint_is_unwrapped(tmp_path):
    weights = {"classifier.0.weight": torch.randn(4, 2, 1, 1)}
    path = tmp_path / "model_best.pth.tar"  # What wildcat.pytorch's engine writes.
    torch.save({"epoch": 3, "arch": "resnet101", "state_dict": weights, "best_score": 0.9}, path)
    loaded = load_torch_state_dict(str(path))
    np.testing.assert_array_equal(
        loaded["classifier.0.weight"], weights["classifier.0.weight"].numpy()
    )


def test_half_precision_tensors_become_float32(tmp_path):
    path = tmp_path / "half.pt"
    torch.save(
        {"w": torch.ones(3, dtype=torch.bfloat16), "h": torch.ones(2, dtype=torch.float16)}, path
    )
    loaded = load_torch_state_dict(path)
    assert loaded["w"].dtype == np.float32 and loaded["h"].dtype == np.float32


def test_pickled_objects_are_refused(tmp_path):
    path = tmp_path / "module.pth"
    torch.save(nn.Linear(2, 2), path)  # A whole pickled module, not a state dict.
    with pytest.raises(ValueError, match="weights_only=True"):
        load_torch_state_dict(path)


def test_safetensors_round_trip(tmp_path, resnet18_pair):
    safetensors_numpy = pytest.importorskip(
        "safetensors.numpy", reason="the optional package safetensors is not installed"
    )
    _, state, template = resnet18_pair
    path = tmp_path / "resnet18.safetensors"
    safetensors_numpy.save_file({k: np.ascontiguousarray(v) for k, v in state.items()}, str(path))
    loaded = load_torch_state_dict(path)
    for key in state:
        np.testing.assert_array_equal(loaded[key], state[key])
    torchvision_resnet_to_flax(loaded, template)


def test_missing_file_and_unknown_suffix(tmp_path):
    with pytest.raises(FileNotFoundError, match="no checkpoint file"):
        load_torch_state_dict(tmp_path / "absent.pth")
    path = tmp_path / "weights.npz"
    path.write_bytes(b"")
    with pytest.raises(ValueError, match=r"unsupported checkpoint file .*\.safetensors"):
        load_torch_state_dict(path)


def test_import_error_names_pip_install_torch(tmp_path, monkeypatch):
    path = tmp_path / "w.pth"
    torch.save({"w": torch.zeros(1)}, path)
    monkeypatch.setitem(sys.modules, "torch", None)  # `import torch` now raises ImportError.
    with pytest.raises(ImportError, match="pip install torch"):
        load_torch_state_dict(path)


def test_import_error_names_pip_install_safetensors(tmp_path, monkeypatch):
    path = tmp_path / "w.safetensors"
    path.write_bytes(b"")
    monkeypatch.setitem(sys.modules, "safetensors", None)
    monkeypatch.setitem(sys.modules, "safetensors.numpy", None)
    with pytest.raises(ImportError, match="pip install safetensors"):
        load_torch_state_dict(os.fspath(path))
