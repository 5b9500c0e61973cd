"""The TF-free TensorBoard writer, read back by TensorBoard's own loader and by ours."""

import json

import numpy as np
import pytest
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from wsl_jax.train.metric_writers import EventFileWriter, MetricWriter, crc32c, read_events


def test_crc32c_matches_the_standard_check_values():
    assert crc32c(b"") == 0
    assert crc32c(b"123456789") == 0xE3069283  # The CRC-32C check value.
    assert crc32c(bytes(32)) == 0x8A9136AA  # RFC 3720, B.4: 32 bytes of zeros.


def test_tensorboard_reads_what_the_writer_wrote(tmp_path):
    with MetricWriter(tmp_path) as writer:
        for step in range(1, 6):
            writer.write(step, loss=1.0 / step, grad_norm=np.float32(2.5), note="not a scalar")
        writer.write(5, val_mAP=0.75)

    accumulator = EventAccumulator(str(tmp_path / "tensorboard"))
    accumulator.Reload()
    assert sorted(accumulator.Tags()["scalars"]) == ["grad_norm", "loss", "val_mAP"]
    loss = accumulator.Scalars("loss")
    assert [e.step for e in loss] == [1, 2, 3, 4, 5]
    np.testing.assert_allclose([e.value for e in loss], 1.0 / np.arange(1, 6), rtol=1e-6)
    assert accumulator.Scalars("val_mAP")[0].value == 0.75

    lines = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert lines[0] == {"step": 1, "loss": 1.0, "grad_norm": 2.5, "note": "not a scalar"}
    assert lines[-1] == {"step": 5, "val_mAP": 0.75}


def test_our_reader_checks_the_crcs(tmp_path):
    writer = EventFileWriter(tmp_path)
    writer.scalars(7, {"a": 1.5, "b": -2.0})
    writer.close()
    events = read_events(writer.path)
    assert events[0]["step"] == 0 and events[1] == {
        "step": 7,
        "wall_time": events[1]["wall_time"],
        "values": {"a": 1.5, "b": -2.0},
    }
    data = bytearray(writer.path.read_bytes())
    data[-6] ^= 0xFF  # Flip a byte of the last record's payload.
    writer.path.write_bytes(bytes(data))
    with pytest.raises(ValueError, match="corrupt record"):
        read_events(writer.path)


def test_a_resumed_writer_logs_every_step_once(tmp_path):
    with MetricWriter(tmp_path, resume_step=0) as writer:  # A run killed after logging step 5.
        for step in range(1, 6):
            writer.write(step, loss=float(step))
    with open(tmp_path / "metrics.jsonl", "a") as f:
        f.write('{"step": 6, "lo')  # The line the kill tore.
    with MetricWriter(tmp_path, resume_step=3) as writer:  # Resumed from its checkpoint at 3.
        for step in range(4, 7):
            writer.write(step, loss=10.0 * step)

    expected = [(1, 1.0), (2, 2.0), (3, 3.0), (4, 40.0), (5, 50.0), (6, 60.0)]
    lines = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [(line["step"], line["loss"]) for line in lines] == expected
    second = max((tmp_path / "tensorboard").iterdir())
    restart = read_events(second)[1]
    assert restart == {
        "step": 4,
        "wall_time": restart["wall_time"],
        "values": {},
        "session_start": True,
    }
    accumulator = EventAccumulator(str(tmp_path / "tensorboard"))
    accumulator.Reload()
    assert [(e.step, e.value) for e in accumulator.Scalars("loss")] == expected
