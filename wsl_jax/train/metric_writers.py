"""Metric writers of the training loop: JSON lines and TensorBoard event files, without TensorFlow.

:class:`MetricWriter` appends every record to ``workdir/metrics.jsonl`` and writes the scalar values
to a TensorBoard event file in ``workdir/tensorboard/`` (``tensorboard --logdir workdir``). Only
process 0 writes (multi-host runs call it on every process).

The event file is TensorBoard's record format: each record is ``uint64 length``, its masked CRC-32C,
the serialized ``Event`` protocol buffer and that buffer's masked CRC-32C. The two messages needed
(``Event{wall_time, step, file_version | summary | session_log}``, ``Summary{value{tag,
simple_value}}``, ``SessionLog{status}``) are
encoded by hand here, so neither TensorFlow nor a protobuf runtime is needed.

Example:
  >>> import tempfile, pathlib
  >>> workdir = pathlib.Path(tempfile.mkdtemp())
  >>> with MetricWriter(workdir) as writer:
  ...     writer.write(10, loss=0.5, note="text values go to the JSON lines only")
  >>> (workdir / "metrics.jsonl").read_text().strip()
  '{"step": 10, "loss": 0.5, "note": "text values go to the JSON lines only"}'
  >>> [(e["step"], e["values"]) for e in read_events(next((workdir / "tensorboard").iterdir()))]
  [(0, {}), (10, {'loss': 0.5})]
"""

from __future__ import annotations

import json
import math
import numbers
import socket
import struct
import time
from collections.abc import Iterator
from pathlib import Path

import jax

from wsl_jax.train.workdir import write_atomically

__all__ = ["EventFileWriter", "MetricWriter", "crc32c", "read_events"]


def _crc32c_table() -> list[int]:
    table = []
    for byte in range(256):
        crc = byte
        for _ in range(8):
            crc = (crc >> 1) ^ (0x82F63B78 if crc & 1 else 0)
        table.append(crc)
    return table


_CRC_TABLE = _crc32c_table()


def crc32c(data: bytes) -> int:
    """CRC-32C (Castagnoli), the checksum of TFRecord files.

    >>> hex(crc32c(b"123456789"))
    '0xe3069283'
    """
    crc = 0xFFFFFFFF
    for byte in data:
        crc = _CRC_TABLE[(crc ^ byte) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


def _masked_crc(data: bytes) -> int:
    crc = crc32c(data)
    return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        bits, value = value & 0x7F, value >> 7
        out.append(bits | (0x80 if value else 0))
        if not value:
            return bytes(out)


def _field(number: int, wire_type: int) -> bytes:
    return _varint((number << 3) | wire_type)


def _length_delimited(number: int, payload: bytes) -> bytes:
    return _field(number, 2) + _varint(len(payload)) + payload


def _event(
    step: int,
    wall_time: float,
    *,
    file_version: str | None = None,
    scalars: dict[str, float] | None = None,
    session_start: bool = False,
) -> bytes:
    """An ``Event`` message: wall_time (1, double), step (2, int64), file_version (3), summary (5)
    or session_log (7) ``SessionLog{status (1) = START (1)}``."""
    message = _field(1, 1) + struct.pack("<d", wall_time)
    message += _field(2, 0) + _varint(step & 0xFFFFFFFFFFFFFFFF)
    if file_version is not None:
        message += _length_delimited(3, file_version.encode())
    if scalars:
        summary = b"".join(
            # Summary.value (1) = Value{tag (1), simple_value (2, float)}.
            _length_delimited(
                1, _length_delimited(1, tag.encode()) + _field(2, 5) + struct.pack("<f", value)
            )
            for tag, value in scalars.items()
        )
        message += _length_delimited(5, summary)
    if session_start:
        message += _length_delimited(7, _field(1, 0) + _varint(1))
    return message


class EventFileWriter:
    """Appends scalar summaries to one TensorBoard event file in ``logdir``.

    ``restart_step`` (a resumed run) writes a ``SessionLog.START`` at that step first, so that
    TensorBoard's event loader (``EventAccumulator``, checked in the tests) discards what earlier
    event files logged from that step on.

    >>> import tempfile
    >>> writer = EventFileWriter(tempfile.mkdtemp())
    >>> writer.scalars(3, {"val_mAP": 0.75})
    >>> writer.close()
    >>> read_events(writer.path)[-1]["values"]
    {'val_mAP': 0.75}
    """

    def __init__(self, logdir, *, restart_step: int | None = None):
        logdir = Path(logdir)
        logdir.mkdir(parents=True, exist_ok=True)
        self.path = logdir / f"events.out.tfevents.{time.time():.6f}.{socket.gethostname()}"
        self._file = open(self.path, "ab")  # noqa: SIM115 — kept open across writes; see close().
        self._record(_event(0, time.time(), file_version="brain.Event:2"))
        if restart_step is not None:
            # TensorBoard drops the earlier files' events at steps >= restart_step (a resumed run
            # logs them again).
            self._record(_event(int(restart_step), time.time(), session_start=True))

    def _record(self, data: bytes) -> None:
        header = struct.pack("<Q", len(data))
        self._file.write(
            header
            + struct.pack("<I", _masked_crc(header))
            + data
            + struct.pack("<I", _masked_crc(data))
        )
        self._file.flush()

    def scalars(self, step: int, values: dict[str, float]) -> None:
        """Writes ``values`` (name → number) at ``step``."""
        self._record(
            _event(int(step), time.time(), scalars={k: float(v) for k, v in values.items()})
        )

    def close(self) -> None:
        self._file.close()


def read_events(path) -> list[dict]:
    """Reads an event file back: one ``{"step", "wall_time", "values"}`` dict per record, plus
    ``"session_start": True`` on a ``SessionLog.START`` record (a resumed run's restart step).

    Checks both CRCs of every record (``ValueError`` on a corrupt file). See :class:`EventFileWriter`.

    Example (the first record is the file-version header; a damaged byte is caught):
      >>> import tempfile
      >>> writer = EventFileWriter(tempfile.mkdtemp())
      >>> writer.scalars(5, {"loss": 0.25})
      >>> writer.close()
      >>> [(e["step"], e["values"]) for e in read_events(writer.path)]
      [(0, {}), (5, {'loss': 0.25})]
      >>> data = bytearray(writer.path.read_bytes())
      >>> data[-5] ^= 1
      >>> _ = writer.path.write_bytes(bytes(data))
      >>> read_events(writer.path)
      Traceback (most recent call last):
      ...
      ValueError: corrupt record at byte ... of ...
    """
    data, events, offset = Path(path).read_bytes(), [], 0
    while offset < len(data):
        header = data[offset : offset + 8]
        (length,) = struct.unpack("<Q", header)
        (header_crc,) = struct.unpack("<I", data[offset + 8 : offset + 12])
        payload = data[offset + 12 : offset + 12 + length]
        (payload_crc,) = struct.unpack("<I", data[offset + 12 + length : offset + 16 + length])
        if header_crc != _masked_crc(header) or payload_crc != _masked_crc(payload):
            raise ValueError(f"corrupt record at byte {offset} of {path}")
        events.append(_parse_event(payload))
        offset += 16 + length
    return events


def _fields(message: bytes) -> Iterator[tuple[int, int | float | bytes]]:
    offset = 0

    def varint():
        nonlocal offset
        value, shift = 0, 0
        while True:
            byte = message[offset]
            offset += 1
            value |= (byte & 0x7F) << shift
            shift += 7
            if not byte & 0x80:
                return value

    while offset < len(message):
        key = varint()
        number, wire = key >> 3, key & 7
        if wire == 0:
            yield number, varint()
        elif wire == 1:
            yield number, struct.unpack("<d", message[offset : offset + 8])[0]
            offset += 8
        elif wire == 5:
            yield number, struct.unpack("<f", message[offset : offset + 4])[0]
            offset += 4
        elif wire == 2:
            length = varint()
            yield number, message[offset : offset + length]
            offset += length
        else:
            raise ValueError(f"unsupported protobuf wire type {wire}")


def _parse_event(message: bytes) -> dict:
    event = {"step": 0, "wall_time": 0.0, "values": {}}
    for number, value in _fields(message):
        if number == 1:
            event["wall_time"] = value
        elif number == 2:
            event["step"] = value
        elif number == 5:
            for _, raw in _fields(value):
                fields = dict(_fields(raw))
                event["values"][fields[1].decode()] = round(fields.get(2, math.nan), 7)
        elif number == 7 and dict(_fields(value)).get(1) == 1:
            event["session_start"] = True  # SessionLog.START: a resumed run's restart step.
    return event


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
    dropped, and a ``SessionLog.START`` tells TensorBoard's event loader to drop its events after it
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
            restart = None if resume_step is None else resume_step + 1
            self._events = EventFileWriter(self.workdir / "tensorboard", restart_step=restart)

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
            if scalars:
                self._events.scalars(step, scalars)

    def close(self) -> None:
        if self._events is not None:
            self._events.close()
            self._events = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
