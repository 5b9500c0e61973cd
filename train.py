"""Trains and evaluates a model described by a config file.

    python train.py --config configs/digits_weldon.py --workdir /tmp/wsl_digits \
        [--config.train.steps=300 ...]

Running it again with the same --workdir resumes from the last checkpoint.
"""

import json

from absl import app, flags, logging
from ml_collections import config_flags

from wsl_jax.train import train_and_evaluate

_CONFIG = config_flags.DEFINE_config_file(
    "config", None, "Path to a config file in configs/.", lock_config=True
)
_WORKDIR = flags.DEFINE_string("workdir", None, "Directory for checkpoints and metrics.")
flags.mark_flags_as_required(["config", "workdir"])


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    logging.set_verbosity(logging.WARNING)
    summary = train_and_evaluate(_CONFIG.value, _WORKDIR.value)
    print(json.dumps({k: v for k, v in summary.items() if k != "test_AP"}, indent=2))


if __name__ == "__main__":
    app.run(main)
