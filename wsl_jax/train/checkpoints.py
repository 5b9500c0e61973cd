"""What a checkpoint records beside the state, and the checks a restored one must pass.

Each orbax checkpoint of the training loops holds a JSON ``record`` item written at save time: the
checksums of every array of the state (:func:`~wsl_jax.train.guard.tree_checksums`), the loss of the
run's first step (the divergence guard's reference) and, for the weakly supervised loop, the
position of the data iterator. :func:`verify_restored` refuses a restored checkpoint whose arrays
differ from those checksums or are not finite, or whose data position is not the one saved or does
not match its step (one batch per step); the loops then fall back to the next older checkpoint.

The validation-selected parameters (``workdir/best``) get the same treatment: their checksums go
into ``best.json`` and :func:`restore_best` verifies them.

Example (a record, and a state altered after saving):
  >>> import numpy as np
  >>> state = {"w": np.ones(3, np.float32)}
  >>> record = checkpoint_record(state, 0.69, data_position={"next_index": 5})
  >>> sorted(record)
  ['checksums', 'data_position', 'reference_loss']
  >>> verify_restored(state, record, 5, data_position={"next_index": 5})  # as saved: no error
  >>> verify_restored(state, record, 5, data_position={"next_index": 9})
  Traceback (most recent call last):
  ...
  wsl_jax.train.guard.CorruptCheckpointError: checkpoint step 5: data iterator position {'next_index': 9} is not the saved {'next_index': 5}.
"""

from __future__ import annotations

from pathlib import Path

import orbax.checkpoint as ocp

from wsl_jax.train.guard import CorruptCheckpointError, tree_checksums, verify_tree

__all__ = ["best_record", "checkpoint_record", "restore_best", "verify_restored"]


def checkpoint_record(state, reference_loss: float | None, *, data_position=None) -> dict:
    """The JSON ``record`` saved with ``state``: checksums, reference loss, data position.

    >>> import numpy as np
    >>> checkpoint_record({"w": np.zeros(2)}, None)["reference_loss"] is None
    True
    """
    record = {"checksums": tree_checksums(state), "reference_loss": reference_loss}
    if data_position is not None:
        record["data_position"] = data_position
    return record


def verify_restored(state, record: dict, step: int, *, data_position=None) -> None:
    """Raises :class:`~wsl_jax.train.guard.CorruptCheckpointError` unless the restored checkpoint
    at ``step`` is what was saved (see the module docstring).

    >>> import numpy as np
    >>> state = {"w": np.ones(2, np.float32)}
    >>> record = checkpoint_record(state, 1.0)
    >>> state["w"][0] = np.nan
    >>> verify_restored(state, record, 3)
    Traceback (most recent call last):
    ...
    wsl_jax.train.guard.CorruptCheckpointError: checkpoint step 3 does not hold what was saved: 1 of 1 arrays differ from the checksums written at save time (['w']).
    """
    what = f"checkpoint step {step}"
    verify_tree(state, record["checksums"], what=what)
    if data_position is None:
        return
    if data_position != record.get("data_position"):
        raise CorruptCheckpointError(
            f"{what}: data iterator position {data_position} is not the saved "
            f"{record.get('data_position')}."
        )
    if data_position.get("next_index", step) != step:
        raise CorruptCheckpointError(
            f"{what}: data iterator position {data_position} does not match the step (one batch "
            "per step)."
        )


def best_record(info: dict, selected) -> dict:
    """``info`` (what ``best.json`` says: metric and step) with the checksums of ``selected``.

    >>> import numpy as np
    >>> sorted(best_record({"mAP": 0.9, "step": 10}, {"w": np.zeros(2)}))
    ['checksums', 'mAP', 'step']
    """
    return {**info, "checksums": tree_checksums(selected)}


def restore_best(workdir, best: dict, abstract=None):
    """The validation-selected parameters in ``workdir/best``, verified against ``best.json``.

    ``best`` is the parsed ``best.json``; ``abstract`` gives the structure (arrays or shapes; ``None``:
    as saved).

    >>> import tempfile
    >>> restore_best(tempfile.mkdtemp(), {"step": 1, "checksums": {}})
    Traceback (most recent call last):
    ...
    FileNotFoundError: .../best not found: the run has not evaluated on validation yet.
    """
    path = (Path(workdir).expanduser() / "best").absolute()
    if not path.is_dir():
        raise FileNotFoundError(f"{path} not found: the run has not evaluated on validation yet.")
    selected = ocp.StandardCheckpointer().restore(path, abstract)
    if "checksums" in best:
        try:
            verify_tree(selected, best["checksums"], what=f"{path} (step {best.get('step')})")
        except CorruptCheckpointError as error:
            raise CorruptCheckpointError(
                f"{error} It was altered after training selected it; no copy of it is left: "
                "retrain in a new --workdir."
            ) from None
    return selected
