"""Seconds per epoch of the jitted ZSL training step at AWA2 scale, on the CPU.

23,527 random 2048-d features (the size of AWA2's trainval split), 85-d attributes of 40 seen
classes, hard negative mining inside the step (``n_neg`` negatives per image from the
``B × 40`` distances), AdamW, the buffer-donating step of :mod:`wsl_jax.train.zero_shot`
(``make_zsl_train_step``) on a mesh over the visible devices. One warm-up epoch (compilation
included, reported separately), then the median of ``--epochs`` timed epochs. Batches are
gathered from the feature array per step, as in the trainer. Target: < 10 s per epoch.

Usage:  python -m benchmarks.zsl_epoch [--epochs 3] [--batch 256] [--n-neg 5] [--scheme hard]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax

from wsl_jax.data import make_global_batch
from wsl_jax.train.state import TrainState
from wsl_jax.train.zero_shot import make_mesh, make_zsl_train_step
from wsl_jax.zsl import init_metric_params

N, D, P, C = 23_527, 2048, 85, 40


def run_epoch(step, state, x, y, attributes, mesh, batch, seed):
    order = np.random.default_rng(seed).permutation(len(x))
    for i in range(len(x) // batch):
        idx = order[i * batch : (i + 1) * batch]
        b = make_global_batch({"x": x[idx], "y": y[idx]}, mesh)
        state, metrics = step(state, b["x"], b["y"], attributes)
    jax.block_until_ready(metrics["loss"])
    return state, float(metrics["loss"])


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--n-neg", type=int, default=5)
    parser.add_argument("--scheme", default="hard")
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    x = rng.normal(size=(N, D)).astype(np.float32)
    y = rng.integers(0, C, N).astype(np.int32)
    attributes = rng.random((C, P)).astype(np.float32)
    attributes /= np.linalg.norm(attributes, axis=1, keepdims=True)
    mesh = make_mesh()
    tx = optax.adamw(1e-3, weight_decay=1e-4)
    params = init_metric_params(jax.random.key(0), feature_dim=D, attribute_dim=P)
    state = TrainState(jnp.zeros((), jnp.int32), params, {}, tx.init(params))
    step = make_zsl_train_step(
        tx, mesh, scheme=args.scheme, n_neg=args.n_neg, lam=0.1, options={}, seed=0
    )
    att = jnp.asarray(attributes)
    start = time.perf_counter()
    state, loss = run_epoch(step, state, x, y, att, mesh, args.batch, 0)
    first = time.perf_counter() - start
    times = []
    for epoch in range(1, args.epochs + 1):
        start = time.perf_counter()
        state, loss = run_epoch(step, state, x, y, att, mesh, args.batch, epoch)
        times.append(time.perf_counter() - start)
    result = {
        "seconds_per_epoch": statistics.median(times),
        "epochs": times,
        "first_epoch_with_compile": first,
        "steps_per_epoch": N // args.batch,
        "batch": args.batch,
        "n_neg": args.n_neg,
        "scheme": args.scheme,
        "loss": loss,
        "devices": jax.device_count(),
        "cpu_count": os.cpu_count(),
        "load_average": os.getloadavg(),
        "machine": platform.processor() or platform.machine(),
        "jax": jax.__version__,
    }
    print(json.dumps(result, indent=1))
    print(f"{result['seconds_per_epoch']:.2f} s per epoch (target < 10 s)")


if __name__ == "__main__":
    main()
