"""WILDCAT on PASCAL VOC 2007: the official recipe (SPEC A7), with model selection on validation.

ResNet-101, 448×448 warp + horizontal flip, k⁺ = k⁻ = 0.2, M = 8 maps per class, α = 0.7
(``convention="wildcat"``), SGD momentum 0.9, weight decay 1e-4, lr 0.01 with the backbone at 0.1×,
batch 16, 20 epochs, multi-label soft-margin loss. The official code trains on trainval and picks
the epoch by *test* mAP (SPEC A8); here training uses ``train`` (2,501 images), the model is selected on
``validation`` and ``test`` is evaluated once. Its constant learning rate matches what the official
code actually runs (its decay never takes effect).

ImageNet weights (strongly recommended: from scratch VOC does not train well) come from a local
torchvision-format file, e.g. ``resnet101-63fe2227.pth`` (needs ``pip install torch``), or a
``.safetensors`` export of it::

    python train.py --config configs/voc07_wildcat.py --workdir ~/runs/voc07 \
        --config.model.pretrained=~/weights/resnet101-63fe2227.pth

tfds downloads and prepares ``voc/2007`` into ``data.dir`` on the first run (network needed once).
A GPU or TPU is needed for this one: a step of batch 16 at 448 px is minutes on a CPU.
"""

import math

import ml_collections

from configs import digits_weldon
from wsl_jax.data.voc import VOC_CLASSES

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
VOC07_TRAIN_IMAGES = 2501


def get_config() -> ml_collections.ConfigDict:
    config = digits_weldon.get_config()
    config.data.name = "voc/2007"
    config.data.dir = "~/tensorflow_datasets"
    config.data.image_size = (448, 448)
    config.data.num_classes = 20
    config.data.train_split = "train"
    config.data.val_split = "validation"
    config.data.test_split = "test"
    config.data.random_flip = True
    config.data.crop_padding = 0  # The recipe warps to 448×448 and flips; no crops.
    config.data.mean = IMAGENET_MEAN
    config.data.std = IMAGENET_STD
    config.data.max_boxes = 64  # VOC 2007 images hold up to 42 objects.
    config.data.class_names = VOC_CLASSES  # For the overlays of evaluate.py.

    config.model.backbone = "resnet101"
    config.model.backbone_kwargs = ml_collections.ConfigDict()
    config.model.num_maps = 8
    config.model.k_max = 0.2
    config.model.k_min = 0.2
    config.model.lam = 0.7
    config.model.convention = "wildcat"
    config.model.pretrained = ""  # Path to torchvision ResNet-101 ImageNet weights ('' = none).

    config.loss = "multilabel_soft_margin"

    config.optimizer.name = "sgd"
    config.optimizer.learning_rate = 0.01
    config.optimizer.momentum = 0.9
    config.optimizer.weight_decay = 1e-4
    config.optimizer.schedule = "constant"
    config.optimizer.warmup_steps = 0
    config.optimizer.backbone_lr_multiplier = 0.1

    config.train.batch_size = 16
    config.train.steps = math.ceil(20 * VOC07_TRAIN_IMAGES / 16)  # 20 epochs: 3,127 steps.
    config.train.log_every = 20
    config.train.eval_every = VOC07_TRAIN_IMAGES // 16  # Once per epoch.
    config.train.checkpoint_every = 200
    config.train.keep_checkpoints = 2

    config.eval.batch_size = 32
    config.eval.pointing_tolerance = 18  # Pixels at 448 px, the usual pointing-game tolerance.
    return config
