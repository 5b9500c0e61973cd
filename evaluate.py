"""Evaluates the validation-selected model of a training workdir.

    python evaluate.py --workdir /tmp/wsl_digits

For a weakly supervised run, prints and writes ``eval.json`` (per split: mAP; on data sets with
boxes the pointing game, pointwise localization and the WSOL metrics MaxBoxAccV2 / GT-known
localization; with masks PxAP and segmentation mIoU; thresholds chosen on validation) and PNG
overlays in ``workdir/overlays``. For a zero-shot run (``task == "zsl"``
in its ``config.json``), prints and writes ``zsl_eval.json``: ZSL accuracy on the unseen classes,
GZSL u/s/H (calibration chosen on validation) and per-class accuracies.
"""

import json
import logging as std_logging

from absl import app, flags, logging

import wsl_jax
from wsl_jax.train.entry import evaluate_workdir, without_lists

_WORKDIR = flags.DEFINE_string("workdir", None, "A workdir written by train.py.")
_OVERLAYS = flags.DEFINE_integer("overlays", 6, "Number of test images to draw.")
flags.mark_flags_as_required(["workdir"])


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    logging.set_verbosity(logging.WARNING)  # Other libraries' INFO chatter off; wsl_jax's on:
    std_logging.getLogger("wsl_jax").setLevel(std_logging.INFO)
    results = evaluate_workdir(_WORKDIR.value, num_overlays=_OVERLAYS.value)
    print(json.dumps(without_lists(results), indent=2))


if __name__ == "__main__":
    wsl_jax.use_recommended_xla_flags()  # Before JAX starts a backend; see wsl_jax/_xla_flags.py.
    app.run(main)
