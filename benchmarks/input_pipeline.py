"""Throughput (examples/s) of ``make_train_dataset`` over prepared array_record data sets.

Data sets: ``cluttered_digits`` (default config: 64x64 grayscale, 6000 train canvases, random flip off)
and ``cifar_mosaic/small`` (128x128 RGB, 2000 train canvases tiled from the real CIFAR-10 archive,
random flip on); both with pad-and-crop (4 px), batch 32 by default. Each is built once under
``--data-dir`` (default ``~/.cache/wsl_jax/tfds``; reused on later runs, build time reported when it
happens). The pipeline runs in this process (``worker_count=0``, ``read_threads`` reader threads):
``--warmup`` batches are discarded, then ``--batches`` are timed; the median of ``--repeats`` timed
runs is reported, along with the raw random-access read rate of the data source (decode only).

Usage:  python -m benchmarks.input_pipeline [--batch 32] [--batches 100] [--cifar-path PATH]
"""
from __future__ import annotations

import argparse
import os
import platform
import statistics
import time

import numpy as np

from wsl_jax.data import make_train_dataset, open_source, prepare_dataset
from wsl_jax.data.cifar_mosaic import resolve_cifar_path


def build(name, data_dir, **kwargs):
    start = time.perf_counter()
    builder = prepare_dataset(name, data_dir, **kwargs)
    return builder, time.perf_counter() - start


def pipeline_rate(source, args, **kwargs):
    rates = []
    for repeat in range(args.repeats):
        it = iter(make_train_dataset(source, batch_size=args.batch, seed=repeat, read_threads=args.read_threads,
                                     **kwargs))
        for _ in range(args.warmup):
            next(it)
        start = time.perf_counter()
        for _ in range(args.batches):
            batch = next(it)
        elapsed = time.perf_counter() - start
        assert np.isfinite(batch["image"]).all()
        rates.append(args.batches * args.batch / elapsed)
    return statistics.median(rates)


def source_rate(source, n):
    n = min(n, len(source))
    start = time.perf_counter()
    for i in range(n):
        source[i]
    return n / (time.perf_counter() - start)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", default=os.path.expanduser("~/.cache/wsl_jax/tfds"))
    parser.add_argument("--cifar-path", default=None, help="cifar10-jpg.tar.gz (default: $WSL_JAX_CIFAR10)")
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--batches", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--read-threads", type=int, default=2)
    args = parser.parse_args()

    rows = []
    _, secs = build("cluttered_digits", args.data_dir)
    digits = open_source("cluttered_digits", "train", args.data_dir)
    rows.append(("cluttered_digits (default)", "64x64x1", len(digits), secs, source_rate(digits, 2000),
                 pipeline_rate(digits, args, random_flip=False)))

    try:
        cifar = resolve_cifar_path(args.cifar_path)
    except ValueError:  # Neither --cifar-path nor $WSL_JAX_CIFAR10: the CIFAR row is skipped.
        cifar = None
    if cifar is not None and cifar.is_file():
        _, secs = build("cifar_mosaic/small", args.data_dir, cifar_path=str(cifar))
        mosaic = open_source("cifar_mosaic/small", "train", args.data_dir)
        rows.append(("cifar_mosaic/small", "128x128x3", len(mosaic), secs, source_rate(mosaic, 1000),
                     pipeline_rate(mosaic, args, mean=(0.5,) * 3, std=(0.5,) * 3)))
    else:
        print(f"(skipping cifar_mosaic: CIFAR-10 archive {cifar or '(--cifar-path or $WSL_JAX_CIFAR10)'} not found)")

    print(f"\n{platform.processor() or platform.machine()}, {os.cpu_count()} CPU cores; batch {args.batch}, "
          f"{args.warmup} warm-up + {args.batches} timed batches, median of {args.repeats}, "
          f"read_threads={args.read_threads}, worker_count=0\n")
    print("| data set | image | train examples | build (s) | source reads/s | pipeline examples/s |")
    print("|---|---|---:|---:|---:|---:|")
    for name, shape, n, secs, raw, rate in rows:
        built = f"{secs:.1f}" if secs > 1.0 else "cached"
        print(f"| {name} | {shape} | {n} | {built} | {raw:,.0f} | {rate:,.0f} |")


if __name__ == "__main__":
    main()
