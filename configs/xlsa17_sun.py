"""Zero-shot SUN on the xlsa17 (GBU) proposed split, ResNet-101 features, attributes `att`.

Reads ``<data.dir>/SUN/{res101.mat,att_splits.mat}`` (the xlsa17 release; not bundled). The
classes of ``val_loc`` are validation classes (held out of training; model selection and GZSL
calibration); 10 % of the other trainval images are held out as seen-class validation images.

    python train.py --config configs/xlsa17_sun.py --workdir /tmp/zsl_sun \
        --config.data.dir=/path/to/xlsa17/data
"""

import ml_collections

from wsl_jax.zsl.config import base_config


def get_config() -> ml_collections.ConfigDict:
    config = base_config()
    config.data.name = "xlsa17"
    config.data.dir = "/path/to/xlsa17/data"
    config.data.dataset = "SUN"
    config.data.val_classes = "xlsa17"  # the classes of val_loc, or "none"
    config.data.val_fraction = 0.1
    config.zsl.class_vectors = "att"  # or "original_att", or a (C, p) .npy path
    config.zsl.scheme = "hard"
    config.zsl.n_neg = 5
    config.train.epochs = 30
    config.train.batch_size = 256
    return config
