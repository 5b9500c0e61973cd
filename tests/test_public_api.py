"""The public API is explicit: every exported name exists and is documented, and the API does not grow
(or shrink) by accident.

``EXPECTED_API`` is the reviewed list of names each package exports. Adding or removing a public
name is a deliberate change: update the list here in the same commit (the failure message says which
names to add or remove).
"""

import __future__

import importlib
import inspect
import types

import pytest

import wsl_jax

EXPECTED_API = {
    "wsl_jax": (
        "AP_MODES",
        "BACKBONES",
        "CONVENTIONS",
        "RESIZE_METHODS",
        "ResNet",
        "ResNet101",
        "ResNet18",
        "ResNet50",
        "SmallCNN",
        "VGG16",
        "WSLHead",
        "WSLNet",
        "ap_loss_augmented_ranking",
        "ap_ranking_loss",
        "average_precision",
        "boxes_to_pixels",
        "build_backbone",
        "build_model",
        "class_maps_to_heatmaps",
        "class_wise_mean",
        "confusion_matrix",
        "lse_pool",
        "max_min_pool",
        "maxboxacc",
        "maxboxacc_hits",
        "mean_average_precision",
        "mean_iou",
        "multiclass_hinge",
        "multilabel_hinge",
        "multilabel_soft_margin",
        "normalize_heatmaps",
        "per_class_mean_accuracy",
        "pointing_game",
        "pointing_game_accuracy",
        "pointwise_localization",
        "pointwise_localization_hits",
        "pxap",
        "pxap_histograms",
        "resolve_k",
        "segmentation_from_heatmaps",
        "softmax_cross_entropy",
        "top1_accuracy",
        "use_recommended_xla_flags",
    ),
    "wsl_jax.zsl": (
        "MetricEmbedding",
        "SCHEMES",
        "ausuc",
        "bootstrap_negatives",
        "bootstrap_schedule",
        "check_attributes",
        "check_finite",
        "check_splits",
        "choose_calibration",
        "correlated_negatives",
        "distances",
        "embed_images",
        "embedded_distances",
        "eszsl_fit",
        "eszsl_scores",
        "gzsl_metrics",
        "hard_negatives",
        "init_metric_params",
        "label_matrix",
        "make_pairs",
        "mine_negatives",
        "mixture_negatives",
        "negative_mask",
        "pair_loss",
        "predict",
        "resolve_counts",
        "scores",
        "seen_unseen_curve",
        "semi_hard_negatives",
        "uncertain_negatives",
        "uniform_negatives",
        "zsl_accuracy",
    ),
    "wsl_jax.models": (
        "BACKBONES",
        "BasicBlock",
        "Bottleneck",
        "EfficientNetLite0",
        "FeatureCNN",
        "ResNet",
        "ResNet101",
        "ResNet18",
        "ResNet50",
        "SmallCNN",
        "VGG16",
        "WSLHead",
        "WSLNet",
        "build_backbone",
        "build_model",
        "efficientnet_lite_to_flax",
        "load_torch_state_dict",
        "pretrained_variables",
        "torch_key_to_flax",
        "torchvision_resnet_to_flax",
        "wildcat_checkpoint_to_flax",
    ),
    "wsl_jax.data": (
        "CIFAR10_CLASSES",
        "CanvasSpec",
        "CifarMosaic",
        "ClutteredConfig",
        "ClutteredDigits",
        "ClutteredMnist",
        "DigitPool",
        "LabeledImageFolder",
        "MappedSource",
        "MosaicConfig",
        "VOC_CLASSES",
        "Xlsa17Data",
        "augment",
        "compose_canvas",
        "example_rng",
        "load_att_splits",
        "load_mnist",
        "load_res101",
        "load_sklearn_digits",
        "load_xlsa17",
        "make_eval_dataset",
        "make_global_batch",
        "make_train_dataset",
        "normalize",
        "num_eval_batches",
        "open_source",
        "pad_ragged",
        "prepare_dataset",
        "read_cifar_archive",
        "read_idx",
        "scan_image_folder",
        "shard_bounds",
        "split_pool_indices",
        "voc_example",
        "voc_source",
    ),
    "wsl_jax.train": (
        "OBJECTIVES",
        "TrainState",
        "create_train_state",
        "make_objective",
        "make_optimizer",
        "train_and_evaluate",
    ),
}


def _diff_message(package: str, what: str, actual, expected) -> str:
    added = sorted(set(actual) - set(expected))
    removed = sorted(set(expected) - set(actual))
    lines = [f"the public API of {package} ({what}) differs from EXPECTED_API[{package!r}]:"]
    if added:
        lines.append("  added (not in the list): " + ", ".join(added))
    if removed:
        lines.append("  removed (listed, not exported): " + ", ".join(removed))
    lines.append("If this is intended, update EXPECTED_API in tests/test_public_api.py.")
    return "\n".join(lines)


def _public_attributes(module: types.ModuleType) -> list:
    """Public names of ``dir(module)``, without its own subpackages and submodules.

    Submodules become attributes when imported (by anyone), and ``from __future__ import
    annotations`` leaves an ``annotations`` attribute: neither is part of the check. Any other public
    name is (e.g. a stray ``import numpy as np`` would show up as ``np``).

    >>> m = types.ModuleType("m")
    >>> m.np, m.annotations, m.f = inspect, __future__.annotations, len
    >>> _public_attributes(m)
    ['f', 'np']
    """

    def ignored(value) -> bool:
        if isinstance(value, __future__._Feature):
            return True
        return inspect.ismodule(value) and value.__name__.startswith(module.__name__ + ".")

    return sorted(
        n for n in dir(module) if not n.startswith("_") and not ignored(getattr(module, n))
    )


@pytest.mark.parametrize("package", sorted(EXPECTED_API))
def test_all_matches_the_expected_api(package):
    module = importlib.import_module(package)
    names = list(module.__all__)
    assert len(set(names)) == len(names), f"duplicates in {package}.__all__"
    expected = EXPECTED_API[package]
    assert sorted(names) == sorted(expected), _diff_message(package, "__all__", names, expected)


@pytest.mark.parametrize("package", sorted(EXPECTED_API))
def test_dir_matches_the_expected_api(package):
    module = importlib.import_module(package)
    names = _public_attributes(module)
    expected = EXPECTED_API[package]
    assert names == sorted(expected), _diff_message(
        package, "public names of dir()", names, expected
    )


def test_expected_lists_are_sorted_and_unique():
    for package, names in EXPECTED_API.items():
        assert list(names) == sorted(set(names)), f"keep EXPECTED_API[{package!r}] sorted, unique"


@pytest.mark.parametrize("package", sorted(EXPECTED_API))
def test_exported_names_exist(package):
    module = importlib.import_module(package)
    missing = [name for name in module.__all__ if not hasattr(module, name)]
    assert not missing, f"{package}.__all__ lists missing names: {missing}"


def test_top_level_callables_have_examples():
    """Every module and public function or class has one: see ``tests/test_docstrings.py``."""
    for name in wsl_jax.__all__:
        obj = getattr(wsl_jax, name)
        if callable(obj):
            doc = inspect.getdoc(obj) or ""
            assert ">>>" in doc, f"wsl_jax.{name} has no runnable example (>>>) in its docstring"


def test_no_unexported_public_functions_at_top_level():
    public = {
        n
        for n, v in vars(wsl_jax).items()
        if not n.startswith("_") and (inspect.isfunction(v) or inspect.isclass(v))
    }
    assert public <= set(wsl_jax.__all__), public - set(wsl_jax.__all__)


def test_top_level_version():
    assert wsl_jax.__version__.count(".") == 2
