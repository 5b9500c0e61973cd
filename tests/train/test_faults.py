"""Fault injection: runs killed, checkpoints truncated or altered, runs diverging, refused runs, bad
inputs. Each test breaks something on purpose and checks that nothing is lost and that the same
command recovers (or, for a diverging run, stops with the documented message and a good checkpoint).

Select them with ``-k fault``.
"""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import orbax.checkpoint as ocp
import pytest
import scipy.io
from PIL import Image

from configs.zsl_base import synthetic_config
from tests.train.tiny_run import TINY
from tests.train.tiny_run import tiny_config as make_tiny_config
from wsl_jax import losses, metrics, ranking
from wsl_jax.data import prepare_dataset
from wsl_jax.train import evaluation, loop
from wsl_jax.train.guard import CorruptCheckpointError
from wsl_jax.train.zero_shot import evaluate_zsl_workdir, train_and_evaluate_zsl
from wsl_jax.zsl import zsl_accuracy

ROOT = Path(__file__).resolve().parents[2]
# The tiny run with convolutions large enough that orbax stores their bytes outside its checksummed
# index (arrays of a few KiB are stored inside it, where any alteration is already caught).
FAULT = {**TINY, "model.backbone_kwargs.widths": (32, 64)}


@pytest.fixture(scope="module")
def tiny_config(tmp_path_factory):
    config = make_tiny_config(tmp_path_factory.mktemp("tfds"))
    config.update_from_flattened_dict(FAULT)
    return config


@pytest.fixture(scope="module")
def trained(tiny_config, tmp_path_factory):
    workdir = tmp_path_factory.mktemp("fault_run") / "full"
    return workdir, loop.train_and_evaluate(tiny_config, workdir)


def _state(workdir, step):
    path = (workdir / "checkpoints" / str(step) / "state").absolute()
    return ocp.StandardCheckpointer().restore(path)


def _array_files(checkpoint):
    """The data files of an orbax checkpoint, largest first."""
    files = [f for f in checkpoint.rglob("*") if f.is_file() and "/d/" in f.as_posix()]
    return sorted(files, key=lambda f: -f.stat().st_size)


def _alter_silently(checkpoint: Path) -> None:
    """Flips bytes of one array file of ``checkpoint``, keeping its length, such that orbax still
    reads it (the fault the checksums exist for); tries positions until one is read back changed."""
    before = ocp.StandardCheckpointer().restore(checkpoint.absolute())
    rng = np.random.default_rng(0)
    for attempt in range(50):
        target = _array_files(checkpoint)[attempt % 2]
        original = target.read_bytes()
        data = bytearray(original)
        position = int(rng.integers(len(data) // 4, len(data)))
        data[position] ^= 0x5A
        target.write_bytes(bytes(data))
        try:
            after = ocp.StandardCheckpointer().restore(checkpoint.absolute())
            same = all(
                np.array_equal(a, b, equal_nan=True)
                for a, b in zip(jax.tree.leaves(before), jax.tree.leaves(after))
            )
        except Exception:  # noqa: BLE001 — this alteration is caught by orbax itself; try another.
            same = True
        if not same:
            return
        target.write_bytes(original)
    raise AssertionError("no silent alteration found")


def _copy_run(trained, tmp_path):
    workdir, _ = trained
    run = tmp_path / "run"
    shutil.copytree(workdir, run)
    shutil.rmtree(run / "overlays", ignore_errors=True)
    (run / "summary.json").unlink()
    return run


def test_fault_truncated_checkpoint_falls_back_and_recovers(tiny_config, trained, tmp_path):
    run = _copy_run(trained, tmp_path)
    for f in _array_files(run / "checkpoints" / "6" / "state"):
        f.write_bytes(f.read_bytes()[: f.stat().st_size // 2])
    with pytest.warns(UserWarning, match=r"checkpoint .*6 \(step 6\) is unreadable or corrupt"):
        summary = loop.train_and_evaluate(tiny_config, run)
    assert summary == trained[1]
    jax.tree.map(np.testing.assert_array_equal, _state(trained[0], 6), _state(run, 6))


def test_fault_altered_checkpoint_bytes_are_detected(tiny_config, trained, tmp_path):
    """Same-length alterations that orbax reads without complaint are refused by the checksums."""
    run = _copy_run(trained, tmp_path)
    _alter_silently(run / "checkpoints" / "6" / "state")
    with pytest.warns(UserWarning, match=r"step 6\) is unreadable or corrupt.*does not hold what"):
        summary = loop.train_and_evaluate(tiny_config, run)
    assert summary == trained[1]  # Resumed from step 4, step 6 trained again: nothing lost.
    jax.tree.map(np.testing.assert_array_equal, _state(trained[0], 6), _state(run, 6))


def test_fault_tampered_data_position_is_refused(tiny_config, trained, tmp_path):
    run = _copy_run(trained, tmp_path)
    (position,) = (run / "checkpoints" / "6" / "data").glob("process_0*")
    text = position.read_text()
    assert '"next_index": 6' in text.replace("'", '"')
    position.write_text(text.replace("6", "2"))  # Well-formed, but not where the run was.
    with pytest.warns(UserWarning, match="data iterator position"):
        summary = loop.train_and_evaluate(tiny_config, run)
    assert summary == trained[1]


def test_fault_altered_best_checkpoint_is_named(tiny_config, trained, tmp_path):
    run = _copy_run(trained, tmp_path)
    _alter_silently(run / "best")
    with pytest.raises(
        CorruptCheckpointError, match=r"best \(step \d\) does not hold what was saved"
    ):
        evaluation.load_run(run)


KILLING_DRIVER = """
import os, runpy, signal, sys
from orbax.checkpoint import CheckpointManager

kill_at, real_save = int(os.environ["KILL_AT_SAVE"]), CheckpointManager.save
calls = [0]


def killing_save(self, *args, **kwargs):
    result = real_save(self, *args, **kwargs)
    calls[0] += 1
    if calls[0] == kill_at:  # Killed while the asynchronous checkpoint write is in flight.
        os.kill(os.getpid(), signal.SIGKILL)
    return result


CheckpointManager.save = killing_save
sys.argv = ["train.py", *sys.argv[1:]]
runpy.run_path("train.py", run_name="__main__")
"""


def _flags(tiny_config, workdir):
    return [
        "--config=configs/digits_weldon.py",
        f"--workdir={workdir}",
        f"--config.data.dir={tiny_config.data.dir}",
        *[f"--config.{key}={value}" for key, value in FAULT.items()],
    ]


@pytest.mark.parametrize("kill_at", [1, 2])
def test_fault_killed_during_checkpoint_save_recovers_with_the_same_command(
    tiny_config, trained, tmp_path, kill_at
):
    workdir = tmp_path / "run"
    killed = subprocess.run(
        [sys.executable, "-c", KILLING_DRIVER, *_flags(tiny_config, workdir)],
        cwd=ROOT,
        env=dict(os.environ, KILL_AT_SAVE=str(kill_at)),
        capture_output=True,
        text=True,
        check=False,
    )
    assert killed.returncode == -9, killed.stderr[-2000:]
    again = subprocess.run(
        [sys.executable, "train.py", *_flags(tiny_config, workdir)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert again.returncode == 0, again.stderr[-2000:]
    summary = json.loads((workdir / "summary.json").read_text())
    assert summary == json.loads(json.dumps(trained[1]))
    jax.tree.map(np.testing.assert_array_equal, _state(trained[0], 6), _state(workdir, 6))


@pytest.mark.parametrize(
    "optimizer, learning_rate, message",
    [
        ("sgd", 1e30, "non-finite loss"),
        ("sgd", 1e6, "the run is diverging"),
        ("adam", 1e6, "the run is diverging"),
    ],
)
def test_fault_diverging_run_stops_and_keeps_the_last_good_checkpoint(
    tiny_config, tmp_path, optimizer, learning_rate, message
):
    config = tiny_config.copy_and_resolve_references()
    config.optimizer.name = optimizer
    config.optimizer.learning_rate = learning_rate
    config.optimizer.warmup_steps = 0
    config.train.log_every = 3  # Bad steps between two reads of the metrics are caught too.
    with pytest.raises(FloatingPointError, match=rf"{message}.*last good checkpoint \(step"):
        loop.train_and_evaluate(config, tmp_path)
    assert not (tmp_path / "summary.json").exists()
    for step in ocp.CheckpointManager((tmp_path / "checkpoints").absolute()).all_steps():
        state = _state(tmp_path, step)
        assert all(np.all(np.isfinite(x)) for x in jax.tree.leaves(state) if x.dtype.kind == "f")
    with pytest.raises(FloatingPointError, match=message):  # The same command: the same stop.
        loop.train_and_evaluate(config, tmp_path)


def test_fault_diverging_zero_shot_run_stops(tmp_path):
    config = synthetic_config()
    config.optimizer.learning_rate = 1e8
    with pytest.raises(FloatingPointError, match="non-finite|diverging"):
        train_and_evaluate_zsl(config, tmp_path)
    assert not (tmp_path / "summary.json").exists()


def test_fault_altered_zero_shot_checkpoint_falls_back(tmp_path):
    config = synthetic_config()
    config.train.epochs = 2
    config.data.feature_dim = 4096  # A 128 KiB map, stored outside orbax's checksummed index.
    full = train_and_evaluate_zsl(config, tmp_path / "full")
    run = tmp_path / "run"
    shutil.copytree(tmp_path / "full", run)
    (run / "summary.json").unlink()
    last = max(int(p.name) for p in (run / "checkpoints").iterdir() if p.name.isdigit())
    _alter_silently(run / "checkpoints" / str(last) / "state")
    with pytest.warns(UserWarning, match="does not hold what was saved"):
        assert train_and_evaluate_zsl(config, run) == full
    assert evaluate_zsl_workdir(run)["zsl_unseen_acc"] == full["zsl_unseen_acc"]


def test_fault_refused_run_leaves_no_run_record(tiny_config, tmp_path):
    bad = tiny_config.copy_and_resolve_references()
    bad.model.k_max = -1
    with pytest.raises(ValueError, match="k"):
        loop.train_and_evaluate(bad, tmp_path)
    bad = tiny_config.copy_and_resolve_references()
    bad.data.name = "cluttered_digits/no_such_config"
    with pytest.raises(Exception, match="no_such_config"):
        loop.train_and_evaluate(bad, tmp_path)
    assert not (tmp_path / "config.json").exists()
    config = tiny_config.copy_and_resolve_references()
    config.train.steps = 2
    assert loop.train_and_evaluate(config, tmp_path)["steps"] == 2  # The corrected command runs.


def test_fault_refused_zero_shot_run_leaves_no_run_record(tmp_path):
    bad = synthetic_config()
    bad.train.batch_size = 10_000  # More than the training examples: refused after loading.
    with pytest.raises(ValueError, match="batch_size"):
        train_and_evaluate_zsl(bad, tmp_path)
    assert not (tmp_path / "config.json").exists()


def test_fault_one_nan_policy_losses_propagate_metrics_refuse():
    scores = jnp.array([[0.5, jnp.nan], [1.0, -1.0], [0.2, 0.3]])
    labels = jnp.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    assert np.isnan(ranking.ap_ranking_loss(scores, labels)).tolist() == [False, True]
    for loss in (losses.multilabel_soft_margin, losses.multilabel_hinge):
        assert (
            np.isnan(loss(scores, labels)).any() and np.isfinite(loss(scores[1:], labels[1:])).all()
        )
    assert np.isnan(losses.softmax_cross_entropy(scores, jnp.array([0, 1, 0]))).any()
    with pytest.raises(ValueError, match="NaN"):
        metrics.average_precision(scores, labels > 0)
    with pytest.raises(ValueError, match="NaN"):
        metrics.top1_accuracy(scores, jnp.array([0, 1, 0]))
    with pytest.raises(ValueError, match="finite|NaN"):
        zsl_accuracy(scores, jnp.array([0, 1, 0]), classes=[0, 1])


def test_fault_zsl_accuracy_shape_mismatch_is_named():
    with pytest.raises(ValueError, match=r"`labels` must have shape \(N,\) = \(3,\)"):
        zsl_accuracy(jnp.zeros((3, 4)), jnp.zeros(5, jnp.int32), classes=[0, 1])


def test_fault_corrupt_image_is_refused_or_skipped_and_reported(tmp_path):
    root = tmp_path / "images"
    for split, cls, i in [
        ("train", "a", 0),
        ("train", "a", 1),
        ("train", "b", 0),
        ("test", "b", 0),
    ]:
        (root / split / cls).mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (6, 6), (40 * i, 0, 0)).save(root / split / cls / f"{i}.png")
    (root / "train" / "b" / "broken.png").write_bytes(b"\x89PNG not really")
    with pytest.raises(ValueError, match=r"broken.png.*skip_corrupt_images=True"):
        prepare_dataset("labeled_image_folder", tmp_path / "strict", root=root, image_size=(4, 4))
    with pytest.warns(UserWarning, match=r"1 image\(s\) could not be decoded.*broken.png"):
        builder = prepare_dataset(
            "labeled_image_folder",
            tmp_path / "lenient",
            root=root,
            image_size=(4, 4),
            skip_corrupt=True,
        )
    assert builder.info.splits["train"].num_examples == 3
    (report,) = (tmp_path / "lenient").rglob("skipped_images.txt")
    assert report.read_text().split() == [str(root / "train" / "b" / "broken.png")]


BIG_ZSL_DRIVER = """
import json, sys
from configs.zsl_base import xlsa17_config
from wsl_jax.train.zero_shot import train_and_evaluate_zsl

out = {}
for devices in (8, 1):
    config = xlsa17_config("AWA2")
    config.data.dir = sys.argv[1]
    config.train.epochs = 1
    config.train.num_devices = devices
    config.progress_bar = False
    out[devices] = train_and_evaluate_zsl(config, f"{sys.argv[2]}/{devices}")
print(json.dumps(out))
"""


def _write_big_xlsa17(root: Path, n: int = 70_000, d: int = 256, classes: int = 50) -> None:
    """A user-made xlsa17-format folder at the issue's size (40 seen classes, 8 of them validation)."""
    folder = root / "AWA2"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    labels = rng.integers(0, classes, n)
    index = np.arange(n)
    seen = rng.permutation(index[labels < 40])
    test_seen, trainval = np.sort(seen[: len(seen) // 5]), np.sort(seen[len(seen) // 5 :])

    def loc(a):
        return (np.asarray(a) + 1).astype(np.int32).reshape(-1, 1)

    names = np.empty((classes, 1), dtype=object)
    for c in range(classes):
        names[c, 0] = np.array([f"class{c}"])
    att = rng.random((85, classes))
    scipy.io.savemat(
        folder / "att_splits.mat",
        {
            "att": att / np.linalg.norm(att, axis=0),
            "original_att": att,
            "allclasses_names": names,
            "trainval_loc": loc(trainval),
            "train_loc": loc(trainval[labels[trainval] < 32]),
            "val_loc": loc(trainval[labels[trainval] >= 32]),
            "test_seen_loc": loc(test_seen),
            "test_unseen_loc": loc(index[labels >= 40]),
        },
    )
    centres = rng.normal(size=(classes, d)).astype(np.float32)
    features = np.abs(centres[labels] + rng.normal(size=(n, d)).astype(np.float32))
    scipy.io.savemat(folder / "res101.mat", {"features": features.T, "labels": loc(labels)})


def test_fault_zero_shot_on_eight_devices_at_a_realistic_size(tmp_path):
    """70,000 × 256-d examples, 273 steps an epoch: hung in XLA's all-gather rendezvous on 8 CPU
    devices while every step of an epoch was queued; equal to one device once steps are bounded."""
    _write_big_xlsa17(tmp_path / "data")
    env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=8")
    done = subprocess.run(
        [sys.executable, "-c", BIG_ZSL_DRIVER, str(tmp_path / "data"), str(tmp_path / "runs")],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    out = json.loads(done.stdout.strip().splitlines()[-1])
    eight, one = out["8"], out["1"]
    assert (
        eight["num_devices"] == 8 and one["num_devices"] == 1 and eight["steps"] > 64
    )  # Hung from 64 queued steps.
    for key in ("zsl_unseen_acc", "best_val_metric"):
        np.testing.assert_allclose(eight[key], one[key], atol=2e-3)
    losses8 = [
        json.loads(l)["loss"] for l in (tmp_path / "runs/8/metrics.jsonl").open() if '"loss"' in l
    ]
    losses1 = [
        json.loads(l)["loss"] for l in (tmp_path / "runs/1/metrics.jsonl").open() if '"loss"' in l
    ]
    np.testing.assert_allclose(losses8, losses1, rtol=1e-4)
