"""WILDCAT on MIT Indoor 67 (scene classification): the official recipe of SPEC A7 for MIT67.

ResNet-101 at 448 px, k⁺ = k⁻ = 0.4, M = 8, α = 0.7 (``convention="wildcat"``), SGD momentum 0.9,
weight decay 1e-4, lr 0.001 (backbone 0.1×), batch 16, 20 epochs, softmax cross-entropy. Reports
top-1 and per-class mean accuracy besides mAP.

MIT67 is read from a local image folder laid out as ``<root>/<split>/<class>/*.jpg`` (the official
``TrainImages.txt`` / ``TestImages.txt`` lists, 80 / 20 images per class; carve a ``validation``
folder out of train for model selection, e.g. 10 images per class)::

    python train.py --config configs/mit67_wildcat.py --workdir ~/runs/mit67 \
        --config.data.root=~/data/MIT67_split --config.model.pretrained=~/weights/resnet101.pth
"""

import ml_collections

from configs import voc07_wildcat

MIT67_TRAIN_IMAGES = 67 * 70  # 80 per class, 10 of them held out for validation.


def get_config() -> ml_collections.ConfigDict:
    config = voc07_wildcat.get_config()
    config.data.name = "labeled_image_folder"
    config.data.root = ""  # <root>/{train,validation,test}/<class>/*.jpg
    config.data.skip_corrupt_images = False  # True: leave undecodable images out, listed.
    config.data.dir = "~/tensorflow_datasets/mit67"
    config.data.num_classes = 67
    config.data.max_boxes = 4
    config.data.class_names = ()  # Class folders are named by the data; overlays show indices.

    config.model.k_max = 0.4
    config.model.k_min = 0.4

    config.loss = "softmax_cross_entropy"
    config.optimizer.learning_rate = 0.001

    config.train.steps = 20 * MIT67_TRAIN_IMAGES // 16
    config.train.eval_every = MIT67_TRAIN_IMAGES // 16
    return config
