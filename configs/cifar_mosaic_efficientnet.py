"""WILDCAT on an ImageNet-pretrained EfficientNet-Lite0, fine-tuned on real photographs, on a CPU.

Data: ``cifar_mosaic/large224``, 224×224 canvases holding 1–4 real CIFAR-10 photographs each resized
to 32–96 px (2,000 train / 300 validation / 500 test canvases, masks and boxes kept; built once, about
a minute, from the archive ``cifar10-jpg.tar.gz`` that ``$WSL_JAX_CIFAR10`` names; the build stops
with an error saying so when it is unset). Model: EfficientNet-Lite0 with the ImageNet weights of
the ``pretrained`` extra (``config.model.pretrained = "packaged"``; inputs scaled ``(x − 127) / 128``
as those weights expect), stride 32 → 7×7 regions, WILDCAT head with M = 4,
k⁺ = k⁻ = 0.2, α = 0.7. Adam lr 1e-3 with the backbone at 0.1× (the official recipe's ratio), batch 16,
400 steps (3.2 epochs), cosine schedule, random flips and 8-pixel pad-and-crop.

    pip install -e ".[pretrained]"
    export WSL_JAX_CIFAR10=/data/cifar10-jpg.tar.gz
    python train.py --config configs/cifar_mosaic_efficientnet.py --workdir /tmp/wsl_effnet \\
        && python evaluate.py --workdir /tmp/wsl_effnet

``--config.model.pretrained=''`` trains the same network from a random initialisation (the baseline).
"""

import ml_collections

from configs import digits_weldon
from wsl_jax.data.cifar_mosaic import CIFAR10_CLASSES
from wsl_jax.models.efficientnet import INPUT_MEAN, INPUT_STD


def get_config() -> ml_collections.ConfigDict:
    config = digits_weldon.get_config()
    config.data.name = "cifar_mosaic/large224"
    config.data.image_size = (224, 224)
    config.data.num_classes = 10
    config.data.random_flip = True
    config.data.crop_padding = 8
    config.data.mean = INPUT_MEAN
    config.data.std = INPUT_STD
    config.data.max_boxes = 4
    config.data.class_names = CIFAR10_CLASSES

    config.model.backbone = "efficientnet_lite0"
    config.model.backbone_kwargs = ml_collections.ConfigDict()
    config.model.num_maps = 4
    config.model.k_max = 0.2
    config.model.k_min = 0.2
    config.model.lam = 0.7
    config.model.convention = "paper"
    config.model.pretrained = "packaged"  # The ImageNet weights of the `pretrained` extra.

    config.optimizer.name = "adam"
    config.optimizer.learning_rate = 1e-3
    config.optimizer.weight_decay = 1e-5
    config.optimizer.schedule = "cosine"
    config.optimizer.warmup_steps = 20
    config.optimizer.backbone_lr_multiplier = 0.1

    config.train.steps = 400
    config.train.batch_size = 16
    config.train.log_every = 20
    config.train.eval_every = 200
    config.train.checkpoint_every = 100
    config.train.keep_checkpoints = 2

    config.eval.batch_size = 50
    config.eval.pointing_tolerance = 8  # Pixels at 224 px.
    return config
