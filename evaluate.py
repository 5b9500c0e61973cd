"""Evaluates the validation-selected model of a training workdir.

    python evaluate.py --workdir /tmp/wsl_digits

Prints and writes ``eval.json`` (mAP, pointing game, segmentation mIoU per split) and PNG overlays
in ``workdir/overlays``.
"""

import json

from absl import app, flags, logging

from wsl_jax.train.evaluation import evaluate_workdir

_WORKDIR = flags.DEFINE_string("workdir", None, "A workdir written by train.py.")
_OVERLAYS = flags.DEFINE_integer("overlays", 6, "Number of test images to draw.")
flags.mark_flags_as_required(["workdir"])


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    logging.set_verbosity(logging.WARNING)
    results = evaluate_workdir(_WORKDIR.value, num_overlays=_OVERLAYS.value)
    for split, r in results.items():
        line = {k: v for k, v in r.items() if k not in ("AP",)}
        line["segmentation"] = {k: v for k, v in r["segmentation"].items() if k != "IoU"}
        print(split, json.dumps(line))


if __name__ == "__main__":
    app.run(main)
