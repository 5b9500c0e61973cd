"""The TF-free metric writer, read back by TensorBoard's own loader (``EventAccumulator``)."""

import json

import numpy as np
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from tensorboard.backend.event_processing.event_file_loader import LegacyEventFileLoader
from tensorboard.compat.proto.event_pb2 import SessionLog

from wsl_jax.train.metric_writers import MetricWriter


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
    first, second = sorted((tmp_path / "tensorboard").iterdir())  # The resumed run's file last.
    restarts = [e.step for e in _events(second) if e.session_log.status == SessionLog.START]
    assert restarts == [4]  # Steps from 4 on are logged again: TensorBoard drops the first file's.
    assert [v.simple_value for e in _events(first) for v in e.summary.value] == [1, 2, 3, 4, 5]
    accumulator = EventAccumulator(str(tmp_path / "tensorboard"))
    accumulator.Reload()
    assert [(e.step, e.value) for e in accumulator.Scalars("loss")] == expected


def _events(path):
    return list(LegacyEventFileLoader(str(path)).Load())


def test_only_process_0_writes(tmp_path, monkeypatch):
    monkeypatch.setattr("jax.process_index", lambda: 1)
    with MetricWriter(tmp_path) as writer:
        writer.write(1, loss=0.5)
    assert list(tmp_path.iterdir()) == []


def test_text_only_records_and_no_tensorboard(tmp_path):
    with MetricWriter(tmp_path, tensorboard=False) as writer:
        writer.write(2, loss=0.5, flag=True)
    assert [p.name for p in tmp_path.iterdir()] == ["metrics.jsonl"]
    assert json.loads((tmp_path / "metrics.jsonl").read_text()) == {
        "step": 2,
        "loss": 0.5,
        "flag": True,
    }


def test_a_resume_within_the_same_second_keeps_both_files(tmp_path):
    for resume_step in (None, 1):
        with MetricWriter(tmp_path, resume_step=resume_step) as writer:
            writer.write(2, loss=float(resume_step or 0))
    assert len(list((tmp_path / "tensorboard").iterdir())) == 2
    accumulator = EventAccumulator(str(tmp_path / "tensorboard"))
    accumulator.Reload()
    assert [(e.step, e.value) for e in accumulator.Scalars("loss")] == [(2, 1.0)]
