"""Seconds per training step of WILDCAT-ResNet-50 in JAX (three settings) and PyTorch, in one run.

The step: forward (BatchNorm in training mode) + backward + SGD with momentum 0.9 (lr 0.01) on the
multi-label soft-margin loss, float32 parameters, CPU. The model is SPEC §A2's WILDCAT head on a
ResNet-50: ``build_model("resnet50", 20, num_maps=8, k_max=0.2, k_min=0.2, lam=0.7)`` — 1×1 transfer conv to
160 maps, class-wise mean, max+min pooling over the 7×7 regions (k⁺ = k⁻ = 10, α = 0.7).

Rows of the table (each measured in its own subprocess, one after the other, on the same data):

* **PyTorch** — the same architecture written here from ``torch.nn`` (torchvision's ResNet-50 layout as
  ``wildcat.pytorch``'s ``features`` Sequential, 1×1 conv, class-wise mean, sort-based max+min pooling in
  the paper form), ``nn.MultiLabelSoftMarginLoss``, ``torch.optim.SGD(momentum=0.9)``; NCHW, eager.
  Its initial weights are converted with :func:`wsl_jax.models.convert.wildcat_checkpoint_to_flax` and used
  by the JAX rows, whose first-step loss must then agree with PyTorch's (checked, printed).
* **JAX float32, no flag** — ``jax.jit`` of the whole step with the state (params, batch_stats,
  optimizer) donated, with wsl_jax's recommended XLA flag turned off (``WSL_JAX_DEFAULT_XLA_FLAGS=0``).
* **JAX float32 + XLA flag** — the same with
  ``--xla_cpu_experimental_ynn_fusion_type=-individual_convolution``, which
  ``wsl_jax.use_recommended_xla_flags()`` adds to ``XLA_FLAGS`` (``train.py`` calls it;
  ``wsl_jax/_xla_flags.py``).
* **JAX bfloat16** — ``dtype=jnp.bfloat16`` computation, float32 parameters (default flag on).

Each row: warm-up steps (the first includes compilation, reported separately), then the median of
``--steps`` timed steps (fewer if a row runs past ``--row-budget`` seconds).

Usage:  python -m benchmarks.train_step [--steps 5] [--batch 8] [--size 224] [--row-budget 75]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from importlib import metadata

NUM_CLASSES, NUM_MAPS, K, ALPHA, LR, MOMENTUM = 20, 8, 0.2, 0.7, 0.01, 0.9
NO_DEFAULT_FLAGS = {"WSL_JAX_DEFAULT_XLA_FLAGS": "0"}
RESULT_TAG = "RESULT "


def make_data(batch, size):
    import numpy as np

    rng = np.random.default_rng(0)
    x = rng.normal(size=(batch, size, size, 3)).astype(np.float32)  # NHWC
    y = (rng.random((batch, NUM_CLASSES)) < 0.3).astype(np.float32)
    return x, y


def timed_steps(step, steps, budget):
    """Runs ``step()`` (which blocks until done) twice as warm-up, then up to ``steps`` timed times."""
    start = time.perf_counter()
    first_loss = step()
    first = time.perf_counter() - start
    step()  # Second warm-up.
    times = []
    loop_start = time.perf_counter()
    for i in range(steps):
        t0 = time.perf_counter()
        loss = step()
        times.append(time.perf_counter() - t0)
        if i >= 1 and time.perf_counter() - loop_start > budget:
            break
    return {"first_step_s": first, "times": times, "first_loss": first_loss, "last_loss": loss}


# --------------------------------------------------------------------------------------------------
# PyTorch child
# --------------------------------------------------------------------------------------------------
def torch_child(args):
    import numpy as np
    import torch
    from torch import nn

    class Bottleneck(nn.Module):
        def __init__(self, inplanes, planes, stride):
            super().__init__()
            self.conv1 = nn.Conv2d(inplanes, planes, 1, bias=False)
            self.bn1 = nn.BatchNorm2d(planes)
            self.conv2 = nn.Conv2d(planes, planes, 3, stride=stride, padding=1, bias=False)
            self.bn2 = nn.BatchNorm2d(planes)
            self.conv3 = nn.Conv2d(planes, planes * 4, 1, bias=False)
            self.bn3 = nn.BatchNorm2d(planes * 4)
            self.relu = nn.ReLU(inplace=True)
            self.downsample = None
            if stride != 1 or inplanes != planes * 4:
                self.downsample = nn.Sequential(
                    nn.Conv2d(inplanes, planes * 4, 1, stride=stride, bias=False),
                    nn.BatchNorm2d(planes * 4),
                )

        def forward(self, x):
            out = self.relu(self.bn1(self.conv1(x)))
            out = self.relu(self.bn2(self.conv2(out)))
            out = self.bn3(self.conv3(out))
            identity = x if self.downsample is None else self.downsample(x)
            return self.relu(out + identity)

    def layer(inplanes, planes, blocks, stride):
        mods = [Bottleneck(inplanes, planes, stride)]
        mods += [Bottleneck(planes * 4, planes, 1) for _ in range(blocks - 1)]
        return nn.Sequential(*mods)

    class WildcatResNet50(nn.Module):
        """wildcat.pytorch's ResNetWSL layout: features Sequential + classifier.0 (1×1 conv)."""

        def __init__(self):
            super().__init__()
            self.features = nn.Sequential(
                nn.Conv2d(3, 64, 7, stride=2, padding=3, bias=False),
                nn.BatchNorm2d(64),
                nn.ReLU(inplace=True),
                nn.MaxPool2d(3, stride=2, padding=1),
                layer(64, 64, 3, 1),
                layer(256, 128, 4, 2),
                layer(512, 256, 6, 2),
                layer(1024, 512, 3, 2),
            )
            self.classifier = nn.Sequential(nn.Conv2d(2048, NUM_CLASSES * NUM_MAPS, 1))

        def forward(self, x):
            maps = self.classifier(self.features(x))
            b, _, h, w = maps.shape
            n = h * w
            class_maps = maps.view(b, NUM_CLASSES, NUM_MAPS, n).mean(2)  # Class-major grouping.
            k = min(n, max(1, int(K * n + 0.5)))
            ordered, _ = torch.sort(class_maps, dim=2, descending=True)
            return ordered[:, :, :k].mean(2) + ALPHA * ordered[:, :, n - k :].mean(2)

    torch.manual_seed(0)
    model = WildcatResNet50().train()
    if args.weights_out:
        np.savez(args.weights_out, **{k: v.numpy() for k, v in model.state_dict().items()})
    x_np, y_np = make_data(args.batch, args.size)
    x = torch.from_numpy(x_np).permute(0, 3, 1, 2).contiguous()
    y = torch.from_numpy(y_np)
    optimizer = torch.optim.SGD(model.parameters(), lr=LR, momentum=MOMENTUM)
    criterion = nn.MultiLabelSoftMarginLoss()

    def step():
        optimizer.zero_grad(set_to_none=True)
        loss = criterion(model(x), y)
        loss.backward()
        optimizer.step()
        return float(loss)

    result = timed_steps(step, args.steps, args.row_budget)
    result["threads"] = torch.get_num_threads()
    print(RESULT_TAG + json.dumps(result), flush=True)


# --------------------------------------------------------------------------------------------------
# JAX child
# --------------------------------------------------------------------------------------------------
def jax_child(args):
    import wsl_jax

    wsl_jax.use_recommended_xla_flags()  # As train.py; a no-op with WSL_JAX_DEFAULT_XLA_FLAGS=0.
    import jax
    import jax.numpy as jnp
    import numpy as np
    import optax

    from wsl_jax.losses import multilabel_soft_margin
    from wsl_jax.models import build_model
    from wsl_jax.models.convert import wildcat_checkpoint_to_flax

    dtype = {"float32": jnp.float32, "bfloat16": jnp.bfloat16}[args.dtype]
    net = build_model(
        "resnet50", NUM_CLASSES, num_maps=NUM_MAPS, k_max=K, k_min=K, lam=ALPHA, dtype=dtype
    )
    x_np, y_np = make_data(args.batch, args.size)
    template = jax.eval_shape(net.init, jax.random.key(0), jnp.zeros((1, args.size, args.size, 3)))
    if args.weights_in and os.path.exists(args.weights_in):
        with np.load(args.weights_in) as data:
            state_dict = {k: data[k] for k in data.files}
        variables = wildcat_checkpoint_to_flax(
            state_dict, template, num_classes=NUM_CLASSES, num_maps=NUM_MAPS
        )
        source = "converted from the PyTorch row"
    else:  # No torch: He-normal kernels from NumPy (JAX's RNG compiles slowly on CPU).
        rng = np.random.default_rng(0)

        def init(path, leaf):
            name = str(path[-1].key)
            if name == "kernel":
                fan_out = leaf.shape[0] * leaf.shape[1] * leaf.shape[3]
                return jnp.asarray(rng.normal(0, (2 / fan_out) ** 0.5, leaf.shape), jnp.float32)
            return jnp.ones(leaf.shape) if name in ("scale", "var") else jnp.zeros(leaf.shape)

        variables = jax.tree_util.tree_map_with_path(init, template)
        source = "random (NumPy)"
    tx = optax.sgd(LR, momentum=MOMENTUM)
    state = (variables["params"], variables["batch_stats"], tx.init(variables["params"]))

    def train_step(state, x, y):
        params, batch_stats, opt_state = state

        def loss_fn(params):
            scores, updates = net.apply(
                {"params": params, "batch_stats": batch_stats}, x, train=True,
                mutable=["batch_stats"],
            )  # fmt: skip
            return multilabel_soft_margin(scores, y).mean(), updates["batch_stats"]

        (loss, batch_stats), grads = jax.value_and_grad(loss_fn, has_aux=True)(params)
        updates, opt_state = tx.update(grads, opt_state, params)
        return (optax.apply_updates(params, updates), batch_stats, opt_state), loss

    jitted = jax.jit(train_step, donate_argnums=0)
    x, y = jnp.asarray(x_np), jnp.asarray(y_np)
    t0 = time.perf_counter()
    compiled = jitted.lower(state, x, y).compile()
    compile_s = time.perf_counter() - t0
    holder = [state]

    def step():
        holder[0], loss = compiled(holder[0], x, y)
        jax.block_until_ready(holder[0])
        return float(loss)

    result = timed_steps(step, args.steps, args.row_budget)
    result.update(compile_s=compile_s, weights=source, backend=jax.default_backend())
    print(RESULT_TAG + json.dumps(result), flush=True)


# --------------------------------------------------------------------------------------------------
# Parent
# --------------------------------------------------------------------------------------------------
def run_child(kind, args, extra_env=None, extra_args=()):
    env = dict(os.environ)
    env.setdefault("JAX_PLATFORMS", "cpu")
    for key, value in (extra_env or {}).items():
        env[key] = (env.get(key, "") + " " + value).strip()
    cmd = [
        sys.executable, "-m", "benchmarks.train_step", "--child", kind,
        "--steps", str(args.steps), "--batch", str(args.batch), "--size", str(args.size),
        "--row-budget", str(args.row_budget), *extra_args,
    ]  # fmt: skip
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # Where -m finds benchmarks.
    proc = subprocess.run(cmd, check=False, env=env, capture_output=True, text=True, cwd=root)
    for line in proc.stdout.splitlines():
        if line.startswith(RESULT_TAG):
            return json.loads(line[len(RESULT_TAG) :])
    tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
    return {"error": f"exit {proc.returncode}: " + " | ".join(tail)}


def version(name):
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "not installed"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument(
        "--row-budget",
        type=float,
        default=75.0,
        help="stop timing a row after this many seconds (at least 2 timed steps)",
    )
    parser.add_argument("--child", choices=["jax", "torch"], help=argparse.SUPPRESS)
    parser.add_argument("--dtype", default="float32", choices=["float32", "bfloat16"])
    parser.add_argument("--weights-out", help=argparse.SUPPRESS)
    parser.add_argument("--weights-in", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child == "jax":
        return jax_child(args)
    if args.child == "torch":
        return torch_child(args)

    start = time.perf_counter()
    load_before = os.getloadavg()
    print(f"machine: {platform.platform()}, {platform.processor() or platform.machine()}, "
          f"{os.cpu_count()} logical cores; python {platform.python_version()}, "
          f"jax {version('jax')}, jaxlib {version('jaxlib')}, flax {version('flax')}, "
          f"torch {version('torch')}")  # fmt: skip
    print(f"setting: WILDCAT ResNet-50, batch {args.batch}, {args.size}×{args.size}, "
          f"C={NUM_CLASSES}, M={NUM_MAPS}, k={K}, α={ALPHA}, SGD momentum {MOMENTUM}, float32 params; "
          f"median of {args.steps} steps after 2 warm-up steps")  # fmt: skip
    print(f"load average before: {load_before[0]:.2f} {load_before[1]:.2f} {load_before[2]:.2f}",
          flush=True)  # fmt: skip

    with tempfile.TemporaryDirectory() as tmp:
        weights = os.path.join(tmp, "wildcat_resnet50.npz")
        rows = [("PyTorch float32 (eager, NCHW)", "torch", {}, ["--weights-out", weights])]
        jax_args = ["--weights-in", weights]
        rows += [
            ("JAX float32 (jit, donated), no flag", "jax", NO_DEFAULT_FLAGS, jax_args),
            ("JAX float32 + ynn -individual_convolution (wsl_jax default)", "jax", {}, jax_args),
            ("JAX bfloat16 compute (+ default flag)", "jax", {}, [*jax_args, "--dtype", "bfloat16"]),
        ]
        results = []
        for label, kind, env, extra in rows:
            if kind == "torch" and version("torch") == "not installed":
                results.append((label, {"error": "torch not installed"}))
                continue
            result = run_child(kind, args, env, extra)
            results.append((label, result))
            status = (
                result.get("error") or f"median {statistics.median(result['times']):.3f} s/step"
            )
            print(f"  done: {label}: {status}", flush=True)

    torch_median = None
    if "times" in results[0][1]:
        torch_median = statistics.median(results[0][1]["times"])
    print()
    print("| setting | s/step (median) | min | steps timed | first step | compile | "
          "vs PyTorch | loss step 1 |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|")
    for label, r in results:
        if "error" in r:
            print(f"| {label} | failed: {r['error']} | | | | | | |")
            continue
        med = statistics.median(r["times"])
        ratio = f"{med / torch_median:.2f}×" if torch_median else "n/a"
        compile_s = f"{r['compile_s']:.1f} s" if "compile_s" in r else "—"
        print(f"| {label} | {med:.3f} | {min(r['times']):.3f} | {len(r['times'])} | "
              f"{r['first_step_s']:.2f} s | {compile_s} | {ratio} | {r['first_loss']:.6f} |")  # fmt: skip
    load_after = os.getloadavg()
    print()
    print(f"JAX weights: {next((r['weights'] for _, r in results if 'weights' in r), 'n/a')}; "
          f"torch threads: {results[0][1].get('threads', 'n/a')}")  # fmt: skip
    print(f"load average after: {load_after[0]:.2f} {load_after[1]:.2f} {load_after[2]:.2f}; "
          f"total {time.perf_counter() - start:.0f} s")  # fmt: skip


if __name__ == "__main__":
    main()
