"""configs/cifar10_zsl.py takes its data folders from the environment (or overrides), and a run
without them says which to set."""

import pytest

from configs import cifar10_zsl
from wsl_jax.data.cifar10 import load_cifar10
from wsl_jax.data.zsl_tasks import cifar10_class_vectors


def test_data_folders_come_from_the_environment(monkeypatch):
    monkeypatch.setenv("WSL_JAX_CIFAR10", "/data/cifar10-jpg.tar.gz")
    monkeypatch.setenv("WSL_JAX_ZSL_CLASS_VECTORS", "/data/zsl/cifar10")
    config = cifar10_zsl.get_config()
    assert config.data.dir == "/data/cifar10-jpg.tar.gz"
    assert config.data.class_vectors_dir == "/data/zsl/cifar10"


def test_missing_data_folders_name_what_to_set(monkeypatch):
    monkeypatch.delenv("WSL_JAX_CIFAR10", raising=False)
    monkeypatch.delenv("WSL_JAX_ZSL_CLASS_VECTORS", raising=False)
    config = cifar10_zsl.get_config()
    assert config.data.dir == "" and config.data.class_vectors_dir == ""
    with pytest.raises(ValueError, match="config.data.dir.*WSL_JAX_CIFAR10"):
        load_cifar10(config.data.dir)
    with pytest.raises(ValueError, match="class_vectors_dir.*WSL_JAX_ZSL_CLASS_VECTORS"):
        cifar10_class_vectors(config.zsl.class_vectors, config.data.class_vectors_dir)
