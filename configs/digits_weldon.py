"""The embedded default: WELDON-style max+min pooling on cluttered_digits (64×64, 1–3 digits).

Small CNN (stride 8 → 8×8 regions), 4 maps per class, k⁺ = k⁻ = 0.2, λ = 0.7, multi-label soft
margin loss, Adam. Runs on 2 CPU cores in a few minutes.

    python train.py --config configs/digits_weldon.py --workdir /tmp/wsl_digits
"""

import ml_collections


def get_config() -> ml_collections.ConfigDict:
    config = ml_collections.ConfigDict()
    config.task = "wsl"  # Weakly supervised classification (wsl_jax.train.loop).
    config.seed = 0
    config.progress_bar = True

    config.data = ml_collections.ConfigDict()
    config.data.name = "cluttered_digits"
    config.data.dir = "~/.cache/wsl_jax/tfds"
    config.data.image_size = (64, 64)
    config.data.num_classes = 10
    config.data.train_split = "train"
    config.data.val_split = "validation"
    config.data.test_split = "test"
    config.data.random_flip = False  # Mirrored digits are other shapes.
    config.data.crop_padding = 4

    config.model = ml_collections.ConfigDict()
    config.model.backbone = "small_cnn"
    config.model.backbone_kwargs = ml_collections.ConfigDict(
        {"widths": (16, 32, 64), "convs_per_stage": 1}
    )
    config.model.num_maps = 4
    config.model.k_max = 0.2
    config.model.k_min = 0.2
    config.model.lam = 0.7
    config.model.convention = "paper"

    config.loss = "multilabel_soft_margin"

    config.optimizer = ml_collections.ConfigDict()
    config.optimizer.name = "adam"
    config.optimizer.learning_rate = 3e-3
    config.optimizer.weight_decay = 1e-5
    config.optimizer.momentum = 0.9
    config.optimizer.schedule = "cosine"
    config.optimizer.warmup_steps = 100
    config.optimizer.backbone_lr_multiplier = 1.0

    config.train = ml_collections.ConfigDict()
    config.train.steps = 2000
    config.train.batch_size = 32
    config.train.log_every = 50
    config.train.eval_every = 500
    config.train.checkpoint_every = 250
    config.train.keep_checkpoints = 2
    # Stop when a loss exceeds this factor × max(1, the first step's loss); README "Faults".
    config.train.divergence_factor = 1e3

    config.eval = ml_collections.ConfigDict()
    config.eval.batch_size = 200
    config.eval.pointing_tolerance = 4  # Pixels, on 64×64 canvases.
    return config
