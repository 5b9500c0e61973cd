"""Trains and evaluates a model described by a config file.

    python train.py --config configs/digits_weldon.py --workdir /tmp/wsl_digits \
        [--config.train.steps=300 ...]

Running it again with the same --workdir resumes from the last checkpoint.

Multi-host (one process per host, all with the same flags but --process_id; see the README):

    python train.py --config configs/digits_weldon.py --workdir /shared/wsl_digits \
        --coordinator_address=10.0.0.1:1234 --num_processes=2 --process_id=0

or ``--distributed`` alone on Cloud TPU pods, SLURM and Open MPI (settings auto-detected), or the
environment variables JAX_COORDINATOR_ADDRESS, JAX_NUM_PROCESSES and JAX_PROCESS_ID.
"""

import json
import logging as std_logging

from absl import app, flags, logging
from ml_collections import config_flags

import wsl_jax
from wsl_jax.train import distributed
from wsl_jax.train.entry import train_and_evaluate, without_lists

_CONFIG = config_flags.DEFINE_config_file(
    "config", None, "Path to a config file in configs/.", lock_config=True
)
_WORKDIR = flags.DEFINE_string("workdir", None, "Directory for checkpoints and metrics.")
_DISTRIBUTED = flags.DEFINE_bool(
    "distributed",
    False,
    "Start JAX's multi-process runtime; settings not given below come from JAX_COORDINATOR_ADDRESS, "
    "JAX_NUM_PROCESSES, JAX_PROCESS_ID or the cluster (Cloud TPU, SLURM, Open MPI).",
)
_COORDINATOR = flags.DEFINE_string(
    "coordinator_address", None, "host:port of process 0 (implies --distributed)."
)
_NUM_PROCESSES = flags.DEFINE_integer(
    "num_processes", None, "Number of processes (implies --distributed).", lower_bound=1
)
_PROCESS_ID = flags.DEFINE_integer(
    "process_id", None, "This process's index in [0, num_processes).", lower_bound=0
)
_TIMEOUT = flags.DEFINE_integer(
    "distributed_timeout",
    300,
    "Seconds to wait for the coordinator and the other processes before failing.",
    lower_bound=1,
)
_STOP_AFTER = flags.DEFINE_integer(
    "stop_after_steps",
    None,
    "Stop after this many steps (with a checkpoint); run again to continue.",
    lower_bound=1,
)
flags.mark_flags_as_required(["config", "workdir"])


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    logging.set_verbosity(logging.WARNING)  # Other libraries' INFO chatter off; wsl_jax's on:
    std_logging.getLogger("wsl_jax").setLevel(std_logging.INFO)
    settings = (_DISTRIBUTED.value, _COORDINATOR.value, _NUM_PROCESSES.value, _PROCESS_ID.value)
    if _CONFIG.value.get("task") == "zsl" and distributed.is_requested(*settings):
        raise app.UsageError("multi-process runs are supported by the 'wsl' task only.")
    process, _ = distributed.initialize_if_requested(*settings, timeout_s=_TIMEOUT.value)
    summary = train_and_evaluate(_CONFIG.value, _WORKDIR.value, stop_after_steps=_STOP_AFTER.value)
    if process == 0:
        print(json.dumps(without_lists(summary), indent=2))


if __name__ == "__main__":
    wsl_jax.use_recommended_xla_flags()  # Before JAX starts a backend; see wsl_jax/_xla_flags.py.
    app.run(main)
