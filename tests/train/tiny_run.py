"""The tiny training run shared by the loop and multi-host tests: 6 steps of 8 examples, 32×32."""

from configs import digits_weldon

# Command-line overrides of configs/digits_weldon.py (also applied in-process by tiny_config).
TINY = {
    "progress_bar": False,
    "data.name": "cluttered_digits/tiny",
    "data.image_size": (32, 32),
    "model.backbone_kwargs.widths": (8, 16),
    "model.backbone_kwargs.convs_per_stage": 1,
    "train.steps": 6,
    "train.batch_size": 8,
    "train.log_every": 1,
    "train.eval_every": 3,
    "train.checkpoint_every": 2,
    "eval.batch_size": 8,
}


def tiny_config(data_dir):
    """configs/digits_weldon.py with the TINY overrides, reading data from ``data_dir``."""
    config = digits_weldon.get_config()
    config.update_from_flattened_dict(TINY)
    config.data.dir = str(data_dir)
    return config
