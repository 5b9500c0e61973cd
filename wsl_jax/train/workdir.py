"""A training workdir's bookkeeping, shared by the weakly supervised and the zero-shot loops.

``config.json`` ties a workdir to one config (a different one is refused, so resuming never mixes
runs); it is written only once a run has validly started (config, data and model checked), so a
refused command leaves nothing behind. Files other processes may read are written atomically, and
resuming takes the newest checkpoint that can be read and verified, deleting bad ones with a warning
that names them.

>>> import tempfile, pathlib, ml_collections
>>> workdir = pathlib.Path(tempfile.mkdtemp())
>>> record_config(ml_collections.ConfigDict({"seed": 0}), workdir)
>>> read_run_config(workdir)
Traceback (most recent call last):
...
FileNotFoundError: .../best not found: the run has not evaluated on validation yet.
>>> record_config(ml_collections.ConfigDict({"seed": 1}), workdir)
Traceback (most recent call last):
...
ValueError: workdir ... holds a run of a different config (.../config.json); use a new --workdir or the same config to resume.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import jax
import ml_collections

__all__ = [
    "check_config",
    "read_run_config",
    "record_config",
    "restore_newest_readable",
    "write_atomically",
]


def write_atomically(path: Path, text: str) -> None:
    """Writes ``text`` to ``path`` so that a concurrent reader never sees it half written.

    >>> import tempfile, pathlib
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "best.json"
    >>> write_atomically(path, '{"step": 3}'); path.read_text()
    '{"step": 3}'
    """
    partial = path.with_name(f".{path.name}.partial")
    partial.write_text(text)
    partial.replace(path)


def check_config(config, workdir: Path) -> None:
    """Refuses a ``workdir`` holding another config's run; writes nothing.

    >>> import tempfile, pathlib, ml_collections
    >>> workdir = pathlib.Path(tempfile.mkdtemp())
    >>> check_config(ml_collections.ConfigDict({"seed": 1}), workdir)  # an empty workdir: accepted
    >>> record_config(ml_collections.ConfigDict({"seed": 0}), workdir)
    >>> check_config(ml_collections.ConfigDict({"seed": 1}), workdir)
    Traceback (most recent call last):
    ...
    ValueError: workdir ... holds a run of a different config (.../config.json); use a new --workdir or the same config to resume.
    """
    path = Path(workdir) / "config.json"
    if path.exists() and json.loads(path.read_text()) != json.loads(config.to_json()):
        raise ValueError(
            f"workdir {workdir} holds a run of a different config ({path}); "
            "use a new --workdir or the same config to resume."
        )


def record_config(config, workdir: Path) -> None:
    """:func:`check_config`, then process 0 (re)writes ``config.json``: the run has started.

    >>> import tempfile, pathlib, ml_collections
    >>> workdir = pathlib.Path(tempfile.mkdtemp())
    >>> record_config(ml_collections.ConfigDict({"seed": 0}), workdir)  # new, or the same config
    >>> record_config(ml_collections.ConfigDict({"seed": 1}), workdir)
    Traceback (most recent call last):
    ...
    ValueError: workdir ... holds a run of a different config (.../config.json); use a new --workdir or the same config to resume.
    """
    check_config(config, workdir)
    if jax.process_index() == 0:
        write_atomically(Path(workdir) / "config.json", config.to_json(indent=2))


def read_run_config(workdir) -> ml_collections.ConfigDict:
    """The config of the run in ``workdir``, once it has a validation-selected model (``best/``).

    >>> import tempfile
    >>> read_run_config(tempfile.mkdtemp())
    Traceback (most recent call last):
    ...
    FileNotFoundError: .../config.json not found: is ... a training workdir?
    """
    workdir = Path(workdir).expanduser()
    config_file, best = workdir / "config.json", workdir / "best"
    if not config_file.is_file():
        raise FileNotFoundError(f"{config_file} not found: is {workdir} a training workdir?")
    if not best.is_dir():
        raise FileNotFoundError(f"{best} not found: the run has not evaluated on validation yet.")
    return ml_collections.ConfigDict(json.loads(config_file.read_text()))


def restore_newest_readable(manager, args, *, verify=None):
    """``(restored, step)`` of the newest readable, verified checkpoint of ``manager``, or ``(None, 0)``.

    ``args`` are the orbax restore arguments; ``verify(restored, step)``, if given, raises (e.g.
    :class:`~wsl_jax.train.guard.CorruptCheckpointError`) when what was read is not what was saved.
    A checkpoint that cannot be read (truncated, corrupt) or fails ``verify`` is deleted with a
    warning naming its step and the reason, so that the resumed run can save that step again, and
    the next older one is tried.

    >>> import tempfile, orbax.checkpoint as ocp
    >>> manager = ocp.CheckpointManager(tempfile.mkdtemp())
    >>> restore_newest_readable(manager, ocp.args.StandardRestore({}))
    (None, 0)
    """
    for step in sorted(manager.all_steps(), reverse=True):
        try:
            restored = manager.restore(step, args=args)
            if verify is not None:
                verify(restored, step)
            return restored, step
        except Exception as error:  # noqa: BLE001 — any unreadable or altered checkpoint: fall back.
            path = Path(str(manager.directory)) / str(step)
            warnings.warn(
                f"checkpoint {path} (step {step}) is unreadable or corrupt "
                f"({type(error).__name__}: {error}); removing it and trying an older one",
                stacklevel=2,
            )
            manager.delete(step)
    return None, 0
