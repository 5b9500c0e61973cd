"""Pretrained-backbone features of a CIFAR-10 archive: encoded once, cached, and picked per task
through ``load_task``'s ``cnn_features`` hook (a tiny archive; the network is replaced by per-channel
means, as ``pretrained_features`` itself is tested in tests/models/test_image_features.py)."""

import functools
import io
import tarfile

import numpy as np
import scipy.io
from PIL import Image

from configs import cifar10_zsl
from experiments import cifar10_pretrained_features
from experiments.cifar10_pretrained_features import archive_features, task_features
from wsl_jax.data.cifar_mosaic import CIFAR10_CLASSES
from wsl_jax.data.zsl_tasks import load_task


def _archive(path, per_class):
    rng = np.random.default_rng(0)
    with tarfile.open(path, "w:gz") as tar:
        for split, n in per_class.items():
            for cls in CIFAR10_CLASSES:
                for i in range(n):
                    buffer = io.BytesIO()
                    pixels = rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)
                    Image.fromarray(pixels).save(buffer, format="JPEG")
                    info = tarfile.TarInfo(f"{split}/{cls}/{i}.jpg")
                    info.size = buffer.tell()
                    buffer.seek(0)
                    tar.addfile(info, buffer)


def _channel_means(images, *, backbone, variables, image_size, batch_size):
    assert (backbone, variables, image_size, batch_size) == ("efficientnet_lite0", None, 32, 16)
    return np.asarray(images, np.float32).mean(axis=(1, 2))


def test_features_are_cached_once_and_picked_per_task(tmp_path, monkeypatch):
    monkeypatch.setattr(cifar10_pretrained_features, "pretrained_features", _channel_means)
    archive = tmp_path / "cifar.tar.gz"
    _archive(archive, {"train": 4, "test": 1})
    scipy.io.savemat(
        tmp_path / "socher_wordTable.mat",
        {
            "wordTable": np.random.default_rng(1).normal(size=(5, 10)),
            "label_names": np.array(CIFAR10_CLASSES, dtype=object),
        },
    )
    settings = {"backbone": "efficientnet_lite0", "image_size": 32}
    cache = tmp_path / "features"
    arrays = archive_features(archive, cache, batch_size=16, log=lambda *_: None, **settings)
    assert arrays["train"][0].shape == (40, 3) and arrays["test"][0].shape == (10, 3)
    files = sorted(p.name for p in (cache / "efficientnet_lite0_32").iterdir())
    assert files == [
        "test_features.npy",
        "test_labels.npy",
        "train_features.npy",
        "train_labels.npy",
    ]

    config = cifar10_zsl.get_config()
    config.data.dir, config.data.class_vectors_dir = str(archive), str(tmp_path)
    config.data.features_cache = str(tmp_path / "seed0.npz")
    config.progress_bar = False
    archive.unlink()  # From now on the cached features only: the archive is never read again.
    hook = functools.partial(task_features, cache_dir=cache, batch_size=16, **settings)
    task = load_task(config, tmp_path / "run", log=lambda *_: None, cnn_features=hook)
    seen = [c for c in range(10) if CIFAR10_CLASSES[c] not in ("cat", "truck")]
    assert set(
        np.concatenate([task.labels[s] for s in ("train", "val_seen", "val_unseen")])
    ) == set(seen)
    assert len(task.labels["test_unseen"]) == 2 and len(task.labels["test_seen"]) == 8
    cat = CIFAR10_CLASSES.index("cat")
    np.testing.assert_array_equal(
        task.features["test_unseen"][task.labels["test_unseen"] == cat],
        arrays["test"][0][arrays["test"][1] == cat],
    )
