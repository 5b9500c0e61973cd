"""Forward+backward time of max_min_pool against three baselines measured in the same run.

Setting (WILDCAT on VOC): batch 16, 14×14 regions, 160 maps (20 classes × 8 modalities),
k⁺ = k⁻ = 0.2 (39 regions), α = 0.7. Baselines:
  (a) the same formula in JAX with a full sort of each row (`jnp.sort`),
  (b) `jnp.max` over the same array, the one-pass floor,
  (c) if torch is installed, the official algorithm written in PyTorch from SPEC §A1: full
      descending sort, gather top and bottom, scatter the gradients.

Usage:  python -m benchmarks.pooling [--repeats 50] [--batch 16] [--size 14] [--maps 160]
"""

import argparse
import os
import platform
import statistics
import time

import jax
import jax.numpy as jnp
import numpy as np

from wsl_jax import max_min_pool, resolve_k


def median_ms(fn, repeats):
    fn()  # Warm-up (compilation).
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return 1e3 * statistics.median(times)


def jax_candidates(x, k, alpha):
    def ours(z):
        return max_min_pool(z, k_max=k, k_min=k, lam=alpha, axis=(1, 2)).sum()

    def sort_based(z):
        b, h, w, c = z.shape
        rows = jnp.sort(jnp.transpose(z, (0, 3, 1, 2)).reshape(b, c, h * w), axis=-1)
        return (rows[..., -k:].mean(-1) + alpha * rows[..., :k].mean(-1)).sum()

    def global_max(z):
        return jnp.max(z, axis=(1, 2)).sum()

    out = {}
    for name, fn in [
        ("max_min_pool", ours),
        ("(a) jnp.sort formula", sort_based),
        ("(b) jnp.max", global_max),
    ]:
        step = jax.jit(jax.value_and_grad(fn))
        out[name] = (step, lambda step=step: jax.block_until_ready(step(x)))
    return out


def torch_official(x_np, k, alpha):
    """The official algorithm (sort, gather, scatter) as a torch.autograd.Function, from SPEC §A1."""
    import torch

    class MaxMinPool(torch.autograd.Function):
        @staticmethod
        def forward(ctx, maps):
            b, c, h, w = maps.shape
            n = h * w
            _, order = torch.sort(maps.view(b, c, n), dim=2, descending=True)
            top, bottom = order[:, :, :k], order[:, :, n - k :]
            flat = maps.view(b, c, n)
            out = flat.gather(2, top).mean(2) + alpha * flat.gather(2, bottom).mean(2)
            ctx.save_for_backward(top, bottom)
            ctx.shape = maps.shape
            return out

        @staticmethod
        def backward(ctx, grad):
            top, bottom = ctx.saved_tensors
            b, c, h, w = ctx.shape
            g = grad.new_zeros(b, c, h * w)
            g.scatter_add_(2, top, (grad / k).unsqueeze(2).expand_as(top).contiguous())
            g.scatter_add_(
                2, bottom, (alpha * grad / k).unsqueeze(2).expand_as(bottom).contiguous()
            )
            return g.view(b, c, h, w)

    maps = torch.from_numpy(np.ascontiguousarray(x_np.transpose(0, 3, 1, 2))).requires_grad_(True)

    def step():
        maps.grad = None
        value = MaxMinPool.apply(maps).sum()
        value.backward()
        return value.detach(), maps.grad

    return step, torch


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=50)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--size", type=int, default=14)
    parser.add_argument("--maps", type=int, default=160)
    parser.add_argument("--k", type=float, default=0.2)
    parser.add_argument("--alpha", type=float, default=0.7)
    args = parser.parse_args()

    shape = (args.batch, args.size, args.size, args.maps)
    n = args.size * args.size
    k = resolve_k(args.k, n)
    x = jax.random.normal(jax.random.key(0), shape, jnp.float32)
    print(
        f"machine: {platform.machine()} {platform.processor() or ''}, {os.cpu_count()} cores; "
        f"jax {jax.__version__} on {jax.devices()[0].platform}"
    )
    print(f"input {shape} NHWC, pooled over {n} regions, k+ = k- = {k}, alpha = {args.alpha}")

    candidates = jax_candidates(x, k, args.alpha)
    times = {name: median_ms(run, args.repeats) for name, (_, run) in candidates.items()}
    value, grad = candidates["max_min_pool"][0](x)
    ref_value, ref_grad = candidates["(a) jnp.sort formula"][0](x)
    agree = {
        "(a) jnp.sort formula": bool(
            np.allclose(value, ref_value, rtol=1e-5) and np.allclose(grad, ref_grad, atol=1e-7)
        )
    }
    try:
        step, torch = torch_official(np.asarray(x), k, args.alpha)
        times["(c) PyTorch official (sort+gather+scatter)"] = median_ms(step, args.repeats)
        t_value, t_grad = step()
        agree["(c) PyTorch official (sort+gather+scatter)"] = bool(
            np.allclose(value, t_value.numpy(), rtol=1e-5)
            and np.allclose(grad, t_grad.numpy().transpose(0, 2, 3, 1), atol=1e-7)
        )
        print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    except ImportError:
        print("torch is not installed: baseline (c) skipped")

    ours = times["max_min_pool"]
    print("\n| implementation | fwd+bwd (ms) | max_min_pool speed-up | same values+grads |")
    print("|---|---|---|---|")
    for name, ms in times.items():
        same = "—" if name not in agree else ("yes" if agree[name] else "NO")
        print(f"| {name} | {ms:.3f} | {ms / ours:.2f}× | {same} |")


if __name__ == "__main__":
    main()
