"""Evaluation of a trained workdir: classification mAP, pointing game, segmentation mIoU, overlays.

``evaluate_workdir(workdir)`` reloads the run's config and its validation-selected parameters
(``workdir/best``), scores every example of the validation and test splits exactly once, and:

* classification: per-class AP and mAP (non-interpolated, as sklearn);
* localization: pointing-game accuracy (mean over classes; tolerance in pixels) of the heat maps of
  the classes present, on data sets with boxes;
* segmentation: mIoU (background included) of the arg-max mask over the *predicted* classes
  (score > 0), background where the best normalised heat map is below a threshold chosen on the
  validation split; on data sets with masks;
* PNG overlays (image, heat map per present class, predicted mask) of the first test images.

From the command line: ``python evaluate.py --workdir /tmp/wsl_digits`` after ``train.py`` (see the
README).

Example (a directory that holds no run is refused):
  >>> import tempfile
  >>> evaluate_workdir(tempfile.mkdtemp())
  Traceback (most recent call last):
  ...
  FileNotFoundError: .../config.json not found: is ... a training workdir?
"""

from __future__ import annotations

import json
from pathlib import Path

import jax
import numpy as np
import orbax.checkpoint as ocp
from tqdm.auto import tqdm

from wsl_jax import metrics
from wsl_jax.data import make_eval_dataset, make_global_batch
from wsl_jax.data.catalog import open_splits, pipeline_options
from wsl_jax.localization import boxes_to_pixels, class_maps_to_heatmaps, segmentation_from_heatmaps
from wsl_jax.localization_metrics import (
    confusion_matrix,
    mean_iou,
    pointing_game,
    pointing_game_accuracy,
)
from wsl_jax.train.state import data_mesh
from wsl_jax.train.checkpoints import restore_best
from wsl_jax.train.workdir import read_run_config

THRESHOLDS = tuple(np.round(np.arange(0.05, 1.0, 0.05), 2))


def load_run(workdir):
    """The config, model and selected variables of a finished (or interrupted) run in ``workdir``.

    The run's ``config.json`` and its validation-selected variables in ``best/`` (an orbax
    checkpoint) are what is read.

    Example (a workdir made by hand, with zero variables of the digits recipe's model):
      >>> import pathlib, tempfile
      >>> import jax.numpy as jnp
      >>> from configs import digits_weldon
      >>> from wsl_jax.train.loop import build_from_config
      >>> workdir, config = pathlib.Path(tempfile.mkdtemp()), digits_weldon.get_config()
      >>> _ = (workdir / "config.json").write_text(config.to_json())
      >>> load_run(workdir)
      Traceback (most recent call last):
      ...
      FileNotFoundError: .../best not found: the run has not evaluated on validation yet.
      >>> model, _ = build_from_config(config)
      >>> shapes = jax.eval_shape(
      ...     lambda key: model.init(key, jnp.zeros((1, 64, 64, 1)), train=False), jax.random.key(0))
      >>> with ocp.StandardCheckpointer() as checkpointer:
      ...     checkpointer.save((workdir / "best").absolute(),
      ...                       jax.tree.map(lambda s: np.zeros(s.shape, s.dtype), shapes))
      >>> config, model, variables = load_run(workdir)
      >>> config.model.backbone, sorted(variables)
      ('small_cnn', ['batch_stats', 'params'])
    """
    from wsl_jax.train.loop import build_from_config  # Imported here: avoids an import cycle.

    workdir = Path(workdir).expanduser()
    config = read_run_config(workdir)
    model, _ = build_from_config(config)
    best_file = workdir / "best.json"  # Its checksums verify best/ (runs made by hand have none).
    variables = restore_best(workdir, json.loads(best_file.read_text()) if best_file.exists() else {})
    return config, model, variables


def classification_metrics(scores, labels, *, where=None) -> dict:
    """Per-class AP and mAP; on single-label data also top-1 and per-class mean accuracy.

    ``labels`` is the ``(N, C)`` multi-hot truth; ``where`` (``(N, C)`` bool) leaves pairs out of the
    AP (VOC's difficult objects). Single-label means every row has exactly one positive (MIT67, …).

    >>> import numpy as np
    >>> scores = np.array([[2.0, 0.1], [0.3, 1.0], [0.9, 0.2]])
    >>> labels = np.array([[1, 0], [0, 1], [0, 1]], bool)
    >>> out = classification_metrics(scores, labels)
    >>> out["AP"], out["top1"], out["mean_class_accuracy"]
    ([1.0, 1.0], 0.66..., 0.75)
    """
    labels = np.asarray(labels, bool)
    ap = np.asarray(metrics.average_precision(scores, labels, where=where))
    result = {"mAP": float(np.nanmean(ap)), "AP": [float(a) for a in ap]}
    if np.all(labels.sum(axis=1) == 1):
        classes = labels.argmax(axis=1)
        result["top1"] = float(metrics.top1_accuracy(scores, classes))
        result["mean_class_accuracy"] = float(
            metrics.per_class_mean_accuracy(scores, classes, num_classes=labels.shape[1])
        )
    return result


def _scan_split(model, variables, source, config, mesh):
    """Scores, pointing-game counts and confusion matrices of one split, every example once."""

    @jax.jit
    def predict(images):
        return model.apply(variables, images, train=False, return_maps=True)

    image_size = tuple(config.data.image_size)
    num_classes = config.data.num_classes
    scores, labels, difficult, has_masks = [], [], [], False
    hits = np.zeros(num_classes, np.int64)
    totals = np.zeros(num_classes, np.int64)
    confusions = {t: np.zeros((num_classes + 1,) * 2, np.int64) for t in THRESHOLDS}
    dataset = make_eval_dataset(
        source,
        batch_size=config.eval.batch_size,
        image_size=image_size,
        **pipeline_options(config.data),
    )
    for host in tqdm(
        dataset, desc="eval", leave=False, disable=not config.get("progress_bar", True)
    ):
        batch = make_global_batch({"image": host["image"]}, mesh)
        batch_scores, maps = predict(batch["image"])
        valid = host["valid"]
        batch_scores = np.asarray(batch_scores)[valid]
        heat = np.asarray(class_maps_to_heatmaps(maps, image_size, normalize=True))[valid]
        scores.append(batch_scores)
        labels.append(host["labels"][valid])
        if "difficult" in host:
            difficult.append(host["difficult"][valid])
        if "boxes" in host:
            h, t = pointing_game(
                heat,
                boxes_to_pixels(host["boxes"][valid], image_size),
                host["label_per_box"][valid],
                host["labels"][valid] > 0.5,
                box_valid=host["box_mask"][valid],
                tolerance=config.eval.get("pointing_tolerance", 4),
            )
            hits += np.asarray(h)
            totals += np.asarray(t)
        if "mask" in host:
            has_masks = True
            predicted = batch_scores > 0
            for threshold in THRESHOLDS:
                pred = segmentation_from_heatmaps(
                    heat, class_mask=predicted, background_threshold=threshold
                )
                confusions[threshold] += np.asarray(
                    confusion_matrix(pred, host["mask"][valid], num_classes=num_classes + 1)
                )
    return dict(  # noqa: C408
        scores=np.concatenate(scores),
        labels=np.concatenate(labels),
        # VOC: (image, class) pairs whose objects are all "difficult" are left out of the AP.
        where=~np.concatenate(difficult) if difficult else None,
        hits=hits,
        totals=totals,
        has_masks=has_masks,
        confusions=confusions,
    )


def evaluate_workdir(workdir, *, splits=("validation", "test"), num_overlays: int = 6) -> dict:
    """Evaluates the selected model of ``workdir``; writes ``eval.json`` and ``overlays/*.png``.

    Returns the metrics per split; the background threshold of the masks is chosen on
    ``"validation"`` (never on test) and reused for the other splits.

    Example (not run here: it scores every example of both splits; a run of
    ``configs/digits_weldon.py``)::

        results = evaluate_workdir("/tmp/wsl_digits")
        results["test"]["mAP"], results["test"]["pointing_game"], results["test"]["segmentation"]

    A workdir whose run has not evaluated on validation yet is refused:
      >>> import pathlib, tempfile
      >>> from configs import digits_weldon
      >>> workdir = pathlib.Path(tempfile.mkdtemp())
      >>> _ = (workdir / "config.json").write_text(digits_weldon.get_config().to_json())
      >>> evaluate_workdir(workdir)
      Traceback (most recent call last):
      ...
      FileNotFoundError: .../best not found: the run has not evaluated on validation yet.
    """
    from wsl_jax.overlays import save_overlay  # Imported here: matplotlib only when needed.

    workdir = Path(workdir).expanduser()
    config, model, variables = load_run(workdir)
    mesh = data_mesh()
    sources = open_splits(config.data)
    catalog_split = {"validation": "val", "test": "test", "train": "train"}
    results, threshold = {}, None
    for split in splits:
        if split not in catalog_split:
            raise ValueError(f"splits must be among {sorted(catalog_split)}, got {split!r}")
        scan = _scan_split(model, variables, sources[catalog_split[split]], config, mesh)
        out = classification_metrics(scan["scores"], scan["labels"] > 0.5, where=scan["where"])
        out["examples"] = len(scan["scores"])
        if scan["totals"].sum():
            _, mean, overall = pointing_game_accuracy(scan["hits"], scan["totals"])
            out["pointing_game"] = {"mean_over_classes": float(mean), "overall": float(overall)}
        if scan["has_masks"]:
            if threshold is None:  # The first split (validation) chooses the background threshold.
                by_t = {t: float(mean_iou(c)[1]) for t, c in scan["confusions"].items()}
                threshold = max(by_t, key=by_t.get)
            iou, miou = mean_iou(scan["confusions"][threshold])
            out["segmentation"] = {
                "mIoU": float(miou),
                "IoU": np.asarray(iou).tolist(),
                "background_threshold": float(threshold),
            }
        results[split] = out

    if num_overlays > 0:  # Heat-map overlays of the first test images.
        overlay_dir = workdir / "overlays"
        overlay_dir.mkdir(exist_ok=True)
        dataset = make_eval_dataset(
            sources["test"],
            batch_size=config.eval.batch_size,
            image_size=tuple(config.data.image_size),
            **pipeline_options(config.data),
        )
        host = next(iter(dataset))
        batch = make_global_batch({"image": host["image"]}, mesh)
        scores, maps = jax.jit(lambda x: model.apply(variables, x, train=False, return_maps=True))(
            batch["image"]
        )
        heat = np.asarray(class_maps_to_heatmaps(maps, tuple(config.data.image_size)))
        masks = None
        if threshold is not None:
            masks = np.asarray(
                segmentation_from_heatmaps(
                    heat, class_mask=np.asarray(scores) > 0, background_threshold=threshold
                )
            )
        names = list(config.data.get("class_names", None) or range(config.data.num_classes))
        for i in range(min(num_overlays, int(host["valid"].sum()))):
            image = host["image"][i]
            image = (image - image.min()) / max(float(image.max() - image.min()), 1e-6)
            save_overlay(
                overlay_dir / f"test_{i:02d}.png",
                image,
                heat[i],
                host["labels"][i] > 0.5,
                mask=None if masks is None else masks[i],
                class_names=[str(name) for name in names],
            )
    (workdir / "eval.json").write_text(json.dumps(results, indent=2))
    return results
