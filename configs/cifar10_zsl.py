"""Zero-shot CIFAR-10 (Socher et al. 2013): unseen cat and truck, word vectors as class vectors.

A small CNN trained on the training classes gives 128-d image features (cached in
``<workdir>/features.npz``); the metric model (SPEC B1) is trained on them with hard negative
mining. Deer and ship are validation classes (held out of training, stand-ins for unseen classes
for model selection and the GZSL calibration); 10 % of the other seen images are held out too.

Data folders come from the environment or from overrides (``--config.data.dir=...``,
``--config.data.class_vectors_dir=...``); a run without them stops with an error naming both:

* ``$WSL_JAX_CIFAR10``: the archive ``cifar10-jpg.tar.gz`` (``config.data.dir``);
* ``$WSL_JAX_ZSL_CLASS_VECTORS``: the folder of ``socher_wordTable.mat`` and
  ``minilm_class_names.npy`` (``config.data.class_vectors_dir``).

    export WSL_JAX_CIFAR10=/data/cifar10-jpg.tar.gz WSL_JAX_ZSL_CLASS_VECTORS=/data/zsl/cifar10
    python train.py --config configs/cifar10_zsl.py --workdir /tmp/zsl_cifar
    python train.py --config configs/cifar10_zsl.py --workdir /tmp/zsl_cifar_minilm \
        --config.zsl.class_vectors=minilm --config.zsl.scheme=uniform
"""

import os

import ml_collections

from configs.zsl_base import base_config


def get_config() -> ml_collections.ConfigDict:
    config = base_config()
    config.data.name = "cifar10"
    config.data.dir = os.environ.get("WSL_JAX_CIFAR10", "")  # The cifar10-jpg.tar.gz archive.
    config.data.class_vectors_dir = os.environ.get("WSL_JAX_ZSL_CLASS_VECTORS", "")
    config.data.unseen_classes = ("cat", "truck")
    config.data.val_classes = ("deer", "ship")
    config.data.val_fraction = 0.1
    config.data.max_train_examples = 0  # 0: all 40,000 seen-class training images.
    config.data.max_test_examples = 0  # 0: all 10,000 test images.
    config.data.features_cache = ""  # "": <workdir>/features.npz.

    config.features = ml_collections.ConfigDict()
    config.features.widths = (16, 32, 64)
    config.features.feature_dim = 128
    config.features.epochs = 4
    config.features.batch_size = 128
    config.features.learning_rate = 2e-3

    config.zsl.class_vectors = "socher"  # or "minilm", or a (10, p) .npy path
    config.zsl.scheme = "hard"
    config.zsl.n_neg = 2
    config.zsl.warmup_epochs = 3
    config.zsl.anneal_epochs = 3
    config.optimizer.learning_rate = 1e-3
    config.train.epochs = 15
    config.train.batch_size = 128
    return config
