"""Guards of a training run: divergence detection without a host sync per step, bounded dispatch,
and checksums that tie a checkpoint to the state that was saved.

**Divergence.** Every training step also returns ``finite``, a device boolean: the loss and the
updated state (parameters, batch statistics, optimizer state) hold no NaN or infinity. The loop hands
each step's metrics to a :class:`StepGuard`, which keeps them on the device and reads them all at
once when the loop reads metrics anyway (logging, evaluation, checkpointing, the end). So every step
is checked, and no step waits for the host. A step is *bad* when it is not finite, or when its loss
exceeds ``divergence_factor × max(1, reference)`` where ``reference`` is the loss of the run's first
step (a huge but finite loss: Adam at a learning rate of 1e6 reaches 1e9). The check raises
``FloatingPointError`` naming the step; it runs before every checkpoint and evaluation, so a bad
state is never saved or selected, and the newest checkpoint is the last good one.

**Bounded dispatch.** JAX dispatches steps asynchronously; the guard keeps at most
``max_in_flight`` steps dispatched and unfinished (it waits for the step ``max_in_flight`` back, not
the current one, so the device stays busy). Without a bound, hundreds of small steps queue up; on
XLA's CPU backend with several (virtual) devices, the per-device parts of queued programs then wait
at their collectives (all-gather, all-reduce) for participants that cannot get a thread, and XLA
aborts with "Termination timeout for all gather RendezvousKey" (seen with 8 devices and 273 queued
zero-shot steps; 16 in flight never hung, 64 did).

**Checksums.** :func:`tree_checksums` hashes every leaf of a pytree (BLAKE2b of dtype, shape and
bytes); the loops write them into each checkpoint at save time, and :func:`verify_tree` checks a
restored state against them (and that its floating-point leaves are finite). A checkpoint whose
bytes were altered, even to the same length, is then refused like an unreadable one.

Example (a step whose loss exploded is found when the metrics are read):
  >>> import jax.numpy as jnp
  >>> guard = StepGuard(divergence_factor=100.0, max_in_flight=4)
  >>> for step, loss in enumerate([0.7, 0.6, 0.5], start=1):
  ...     guard.add(step, {"loss": jnp.float32(loss), "finite": jnp.bool_(True)})
  >>> guard.check().tolist(), guard.reference_loss
  ([0.699999988079071, 0.6000000238418579, 0.5], 0.699999988079071)
  >>> guard.add(4, {"loss": jnp.float32(3e9), "finite": jnp.bool_(True)})
  >>> guard.check()
  Traceback (most recent call last):
  ...
  FloatingPointError: loss 3e+09 at step 4 exceeds train.divergence_factor=100 × max(1, first loss 0.7): the run is diverging; stopping.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np

__all__ = [
    "CorruptCheckpointError",
    "StepGuard",
    "all_finite",
    "run_guard",
    "tree_checksums",
    "verify_tree",
]

DEFAULT_DIVERGENCE_FACTOR = 1e3
DEFAULT_MAX_IN_FLIGHT = 8


class CorruptCheckpointError(ValueError):
    """A checkpoint that was read but does not hold what was saved (altered bytes, NaN, …).

    >>> raise CorruptCheckpointError("step 4: params['w'] differs from its checksum")
    Traceback (most recent call last):
    ...
    wsl_jax.train.guard.CorruptCheckpointError: step 4: params['w'] differs from its checksum
    """


def all_finite(tree) -> jax.Array:
    """A device boolean: every floating-point leaf of ``tree`` is free of NaN and infinity (jittable).

    >>> import jax.numpy as jnp
    >>> bool(all_finite({"w": jnp.ones(3), "n": jnp.int32(2)})), bool(all_finite([jnp.array([1.0, jnp.nan])]))
    (True, False)
    """
    checks = [
        jnp.all(jnp.isfinite(leaf))
        for leaf in jax.tree.leaves(tree)
        if jnp.issubdtype(jnp.result_type(leaf), jnp.inexact)
    ]
    return jnp.all(jnp.stack(checks)) if checks else jnp.bool_(True)


def _host_array(leaf) -> np.ndarray:
    # A replicated jax.Array holds the whole value on each of its devices: read one copy, which
    # also works for arrays spread over several processes.
    if isinstance(leaf, jax.Array):
        leaf = leaf.addressable_data(0)
    return np.ascontiguousarray(np.asarray(leaf))


def tree_checksums(tree) -> dict[str, str]:
    """``{leaf path: hex digest}`` over dtype, shape and bytes of every leaf (replicated arrays).

    >>> import numpy as np
    >>> sums = tree_checksums({"w": np.zeros(3, np.float32), "b": np.float32(1.0)})
    >>> sorted(sums), len(sums["['w']"])
    (["['b']", "['w']"], 32)
    """
    out = {}
    for path, leaf in jax.tree_util.tree_leaves_with_path(tree):
        array = _host_array(leaf)
        digest = hashlib.blake2b(digest_size=16)
        digest.update(f"{array.dtype.str}{array.shape}".encode())
        digest.update(array.tobytes())
        out[jax.tree_util.keystr(path)] = digest.hexdigest()
    return out


def verify_tree(tree, checksums: dict[str, str], *, what: str) -> None:
    """Raises :class:`CorruptCheckpointError` unless ``tree`` matches ``checksums`` and is finite.

    ``what`` names the checkpoint in the message.

    >>> import numpy as np
    >>> tree = {"w": np.arange(3, dtype=np.float32)}
    >>> sums = tree_checksums(tree)
    >>> verify_tree(tree, sums, what="step 3")  # unchanged: no error
    >>> tree["w"][1] = 7.0
    >>> verify_tree(tree, sums, what="step 3")
    Traceback (most recent call last):
    ...
    wsl_jax.train.guard.CorruptCheckpointError: step 3 does not hold what was saved: 1 of 1 arrays differ from the checksums written at save time (['w']).
    """
    current = tree_checksums(tree)
    differ = sorted(set(current) ^ set(checksums)) + [
        k for k in current if k in checksums and current[k] != checksums[k]
    ]
    if differ:
        raise CorruptCheckpointError(
            f"{what} does not hold what was saved: {len(differ)} of {len(current)} arrays differ "
            f"from the checksums written at save time ({', '.join(differ[:3])})."
        )
    if not bool(all_finite(jax.tree.map(_host_array, tree))):
        raise CorruptCheckpointError(f"{what} holds NaN or infinite values.")


class StepGuard:
    """Collects the per-step ``loss`` and ``finite`` device scalars; :meth:`check` reads and judges them.

    Args:
      divergence_factor: a finite loss above ``divergence_factor × max(1, reference_loss)`` stops
        the run (``float("inf")`` turns this off).
      max_in_flight: at most this many dispatched steps are unfinished (see the module docstring).
      reference_loss: the loss of the run's first step; ``None`` takes it from the first step checked
        (a resumed run passes the value recorded in its checkpoint).
      last_good: returns a sentence naming the last good checkpoint, appended to the error.

    Example (a NaN loss in the middle of three steps):
      >>> import jax.numpy as jnp
      >>> guard = StepGuard(last_good=lambda: "The last good checkpoint (step 0) is kept.")
      >>> for step, loss in enumerate([0.7, float("nan"), 0.5], start=1):
      ...     guard.add(step, {"loss": jnp.float32(loss), "finite": jnp.isfinite(jnp.float32(loss))})
      >>> guard.check()
      Traceback (most recent call last):
      ...
      FloatingPointError: non-finite loss nan (or state) at step 2; stopping. The last good checkpoint (step 0) is kept.
    """

    def __init__(
        self,
        *,
        divergence_factor: float = DEFAULT_DIVERGENCE_FACTOR,
        max_in_flight: int = DEFAULT_MAX_IN_FLIGHT,
        reference_loss: float | None = None,
        last_good: Callable[[], str] = lambda: "",
    ):
        if not divergence_factor > 0:
            raise ValueError(f"train.divergence_factor must be > 0, got {divergence_factor}.")
        if max_in_flight < 1:
            raise ValueError(f"max_in_flight must be >= 1, got {max_in_flight}.")
        self.divergence_factor = float(divergence_factor)
        self.max_in_flight = max_in_flight
        self.reference_loss = None if reference_loss is None else float(reference_loss)
        self._last_good = last_good
        self._pending: list[tuple[int, dict]] = []

    def add(self, step: int, metrics: dict) -> None:
        """Records step ``step``'s ``metrics`` (``loss`` and ``finite``); may wait for an older step."""
        self._pending.append((step, {"loss": metrics["loss"], "finite": metrics["finite"]}))
        if len(self._pending) > self.max_in_flight:
            jax.block_until_ready(self._pending[-self.max_in_flight - 1][1]["loss"])

    def check(self) -> np.ndarray:
        """The losses of the steps added since the last check (float32); raises on a bad step."""
        pending, self._pending = self._pending, []
        if not pending:
            return np.zeros(0, np.float32)
        values = jax.device_get([(m["loss"], m["finite"]) for _, m in pending])
        losses = np.array([loss for loss, _ in values], np.float32)
        if self.reference_loss is None and np.isfinite(losses[0]):
            self.reference_loss = float(losses[0])
        limit = self.divergence_factor * max(1.0, self.reference_loss or 1.0)
        for (step, _), loss, (_, finite) in zip(pending, losses, values):
            kept = self._last_good()
            kept = f" {kept}" if kept else ""
            if not (finite and np.isfinite(loss)):
                raise FloatingPointError(
                    f"non-finite loss {loss} (or state) at step {step}; stopping.{kept}"
                )
            if loss > limit:
                raise FloatingPointError(
                    f"loss {loss:.4g} at step {step} exceeds train.divergence_factor="
                    f"{self.divergence_factor:g} × max(1, first loss {self.reference_loss:.4g}): "
                    f"the run is diverging; stopping.{kept}"
                )
        return losses


def run_guard(train_config, manager, *, reference_loss: float | None) -> StepGuard:
    """The :class:`StepGuard` of a training run: ``train_config.divergence_factor`` (default
    1000), and errors that name the last good checkpoint of the orbax ``manager``.

    >>> import tempfile, ml_collections, orbax.checkpoint as ocp
    >>> manager = ocp.CheckpointManager(tempfile.mkdtemp())
    >>> guard = run_guard(ml_collections.ConfigDict({"divergence_factor": 10.0}), manager,
    ...                   reference_loss=0.5)
    >>> guard.divergence_factor, guard.reference_loss
    (10.0, 0.5)
    """
    return StepGuard(
        divergence_factor=train_config.get("divergence_factor", DEFAULT_DIVERGENCE_FACTOR),
        reference_loss=reference_loss,
        last_good=lambda: (
            f"The last good checkpoint (step {manager.latest_step()}) is kept in "
            f"{manager.directory}; lower the learning rate (or fix the data) and train in a new "
            "--workdir."
        ),
    )
