"""Metric writers of the training loop: JSON lines and TensorBoard event files, without TensorFlow.

:class:`MetricWriter` appends every record to ``workdir/metrics.jsonl`` and writes the scalar values
to a TensorBoard event file in ``workdir/tensorboard/`` (``tensorboard --logdir workdir``) through
tensorboardX's ``SummaryWriter``, which needs neither TensorFlow nor TensorBoard. Only process 0
writes (multi-host runs call it on every process).

Example:
  >>> import tempfile, pathlib
  >>> from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
  >>> workdir = pathlib.Path(tempfile.mkdtemp())
  >>> with MetricWriter(workdir) as writer:
  ...     writer.write(10, loss=0.5, note="text values go to the JSON lines only")
  >>> (workdir / "metrics.jsonl").read_text().strip()
  '{"step": 10, "loss": 0.5, "note": "text values go to the JSON lines only"}'
  >>> events = EventAccumulator(str(workdir / "tensorboard")).Reload()
  >>> [(e.step, e.value) for e in events.Scalars("loss")]
  [(10, 0.5)]
"""

from __future__ import annotations

import json
import math
import numbers
import time
from pathlib import Path

import jax
from tensorboardX import SummaryWriter

from wsl_jax.train.workdir import write_atomically

__all__ = ["MetricWriter"]


def _step(line: str) -> float:
    """The step of a ``metrics.jsonl`` line; ``inf`` (dropped on resume) for a torn or blank one."""
    try:
        return json.loads(line)["step"]
    except (ValueError, KeyError, TypeError):
        return math.inf


class MetricWriter:
    """``metrics.jsonl`` plus TensorBoard scalars in ``workdir/tensorboard``; process 0 only.

    ``resume_step`` is the step a run resumes from (``0`` for a fresh start): the lines of
    ``metrics.jsonl`` logged after it by an interrupted run (and a line torn by the kill) are
    dropped, and a ``SessionLog.START`` (tensorboardX's ``purge_step``) tells TensorBoard's event loader to drop its events after it
    too, so the steps a resumed run repeats are logged once. ``None`` appends to what is there.

    Numbers (Python or NumPy scalars, 0-d arrays) go to both; other values (strings, lists) to the
    JSON lines only. See also the module docstring.

    Example (``tensorboard=False``: the JSON lines only):
      >>> import pathlib, tempfile
      >>> import numpy as np
      >>> workdir = pathlib.Path(tempfile.mkdtemp())
      >>> with MetricWriter(workdir, tensorboard=False) as writer:
      ...     writer.write(1, loss=np.float32(0.5), AP=[0.25, 0.75])
      >>> print((workdir / "metrics.jsonl").read_text().strip())
      {"step": 1, "loss": 0.5, "AP": [0.25, 0.75]}
      >>> sorted(p.name for p in workdir.iterdir())
      ['metrics.jsonl']
    """

    def __init__(self, workdir, *, tensorboard: bool = True, resume_step: int | None = None):
        self.workdir = Path(workdir)
        self.path = self.workdir / "metrics.jsonl"
        self.enabled = jax.process_index() == 0
        self._events = None
        if self.enabled and resume_step is not None and self.path.exists():
            kept = [
                line for line in self.path.read_text().splitlines() if _step(line) <= resume_step
            ]
            write_atomically(self.path, "".join(line + "\n" for line in kept))
        if self.enabled and tensorboard:
            # A resumed run logs the steps after ``resume_step`` again: ``purge_step`` writes a
            # ``SessionLog.START`` there, and TensorBoard drops the earlier files' events from it on.
            self._events = SummaryWriter(
                str(self.workdir / "tensorboard"),
                purge_step=None if resume_step is None else resume_step + 1,
                # tensorboardX names files by the second; the suffix keeps a run resumed within
                # the same second from overwriting the first file, and sorts after it.
                filename_suffix=f".{time.time_ns():020d}",
            )

    def write(self, step: int, **values) -> None:
        if not self.enabled:
            return
        values = {k: v.item() if hasattr(v, "item") else v for k, v in values.items()}
        with open(self.path, "a") as f:
            f.write(json.dumps({"step": int(step), **values}) + "\n")
        if self._events is not None:
            scalars = {
                k: v
                for k, v in values.items()
                if isinstance(v, numbers.Real) and not isinstance(v, bool)
            }
            for name, value in scalars.items():
                self._events.add_scalar(name, float(value), global_step=int(step))
            if scalars:
                self._events.flush()  # On disk now, as the JSON line is: a kill loses nothing.

    def close(self) -> None:
        if self._events is not None:
            self._events.close()
            self._events = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
