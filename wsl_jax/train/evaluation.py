"""Evaluation of a trained workdir: classification mAP, localization, segmentation, overlays.

``evaluate_workdir(workdir)`` reloads the run's config and its validation-selected parameters
(``workdir/best``), scores every example of the validation and test splits exactly once, and:

* classification: per-class AP and mAP (non-interpolated, as sklearn);
* on data sets with boxes, each metric named for what it is
  (:mod:`wsl_jax.localization_metrics`):

  - ``pointing_game``: Zhang et al.'s accuracy (mean over classes; ``config.eval.pointing_tolerance``
    pixels) of the heat maps of the classes present;
  - ``pointwise_localization``: Oquab et al.'s ranking metric (the TPAMI paper's "pointwise
    localization"), mAP over classes of the class-score ranking with a hit when the peak lies
    within the tolerance of a box of the class: ``config.eval.pointwise_tolerance`` pixels, by
    default 18 pixels at a 224-pixel side scaled with the image (``18 · min(H, W) / 224``);
  - ``wsol``: Choe et al.'s MaxBoxAccV2 (and MaxBoxAcc at IoU 30/50/70, with the best
    threshold of the split, as the metric is defined), and GT-known localization accuracy at IoU
    50 at the score-map threshold chosen on validation (plus top-1 localization on single-label
    data), over the (image, present class) pairs with boxes;

* on data sets with masks: PxAP (``wsol.PxAP``) of the class maps of the present classes, and
  segmentation mIoU (background included) of the arg-max mask over the *predicted* classes
  (score > 0), background where the best normalised heat map is below a threshold chosen on
  validation;
* PNG overlays (image, heat map per present class, predicted mask) of the first test images.

No evaluation choice is made on test, ever: the thresholds (segmentation background, GT-known
score-map threshold) are chosen on the validation split whatever ``splits`` asks for (validation
is scanned for them if needed). Without a validation split, :data:`DEFAULT_THRESHOLDS` are used
and a warning says so.

Heat maps are the class maps upsampled bilinearly to the input size and min-max normalised (the
reference WSOL code resizes bicubically; the metrics themselves follow its definitions).

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
import warnings
from pathlib import Path

import jax
import numpy as np
from tqdm.auto import tqdm

from wsl_jax.data import make_eval_dataset, make_global_batch
from wsl_jax.data.catalog import open_splits, pipeline_options
from wsl_jax.localization import boxes_to_pixels, class_maps_to_heatmaps, segmentation_from_heatmaps
from wsl_jax.localization_metrics import (
    IOU_THRESHOLDS,
    cam_thresholds,
    confusion_matrix,
    maxboxacc,
    maxboxacc_hits,
    mean_iou,
    pointing_game,
    pointing_game_accuracy,
    pointwise_localization,
    pointwise_localization_hits,
    pxap,
    pxap_histograms,
)
from wsl_jax.metrics import classification_metrics
from wsl_jax.train.checkpoints import restore_best
from wsl_jax.train.loop import build_from_config
from wsl_jax.train.state import data_mesh
from wsl_jax.train.workdir import read_run_config

THRESHOLDS = tuple(np.round(np.arange(0.05, 1.0, 0.05), 2))  # Segmentation background sweep.
CAM_CURVE_INTERVAL = 0.01  # The WSOL score-map threshold sweep, as the reference's default.
# Used only when the data set has no validation split (with a warning): the background threshold
# of the masks, and the score-map threshold of GT-known localization (0.2 · max, as in CAM).
DEFAULT_THRESHOLDS = {"background_threshold": 0.5, "cam_threshold": 0.2}
POINTWISE_TOLERANCE = 18.0  # Oquab et al.'s tolerance in pixels, at ...
POINTWISE_REFERENCE_SIDE = 224  # ... this image side; scaled with min(H, W) of the inputs.


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
      >>> import orbax.checkpoint as ocp
      >>> with ocp.StandardCheckpointer() as checkpointer:
      ...     checkpointer.save((workdir / "best").absolute(),
      ...                       jax.tree.map(lambda s: np.zeros(s.shape, s.dtype), shapes))
      >>> config, model, variables = load_run(workdir)
      >>> config.model.backbone, sorted(variables)
      ('small_cnn', ['batch_stats', 'params'])
    """

    workdir = Path(workdir).expanduser()
    config = read_run_config(workdir)
    model, _ = build_from_config(config)
    best_file = workdir / "best.json"  # Its checksums verify best/ (runs made by hand have none).
    variables = restore_best(
        workdir, json.loads(best_file.read_text()) if best_file.exists() else {}
    )
    return config, model, variables


def pointwise_tolerance(config) -> float:
    """Pointwise-localization tolerance in pixels: ``config.eval.pointwise_tolerance`` if set, else
    Oquab et al.'s 18 pixels at a 224-pixel side scaled to the input size, ``18 · min(H, W) / 224``.

    >>> from configs import digits_weldon
    >>> round(pointwise_tolerance(digits_weldon.get_config()), 3)  # 64×64 inputs
    5.143
    """
    tolerance = config.eval.get("pointwise_tolerance", None)
    if tolerance is None:
        side = min(config.data.image_size)
        tolerance = POINTWISE_TOLERANCE * side / POINTWISE_REFERENCE_SIDE
    return float(tolerance)


def _scan_split(model, variables, source, config, mesh):
    """Scores and the per-batch sums of every localization metric of one split, each example once."""

    @jax.jit
    def predict(images):
        return model.apply(variables, images, train=False, return_maps=True)

    image_size = tuple(config.data.image_size)
    num_classes = config.data.num_classes
    interval = config.eval.get("cam_curve_interval", CAM_CURVE_INTERVAL)
    num_taus = len(cam_thresholds(interval))
    scores, labels, difficult, has_masks = [], [], [], False
    point_hits, objects = [], []
    hits = np.zeros(num_classes, np.int64)
    totals = np.zeros(num_classes, np.int64)
    box_correct = np.zeros((len(IOU_THRESHOLDS), num_taus), np.int64)
    box_correct_top1 = np.zeros_like(box_correct)
    box_total = 0
    pixels = [np.zeros(num_taus + 2, np.int64), np.zeros(num_taus + 2, np.int64)]
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
        present = host["labels"][valid] > 0.5
        scores.append(batch_scores)
        labels.append(host["labels"][valid])
        if "difficult" in host:
            difficult.append(host["difficult"][valid])
        if "boxes" in host:
            boxes = boxes_to_pixels(host["boxes"][valid], image_size)
            box_labels, box_valid = host["label_per_box"][valid], host["box_mask"][valid]
            h, t = pointing_game(
                heat,
                boxes,
                box_labels,
                present,
                box_valid=box_valid,
                tolerance=config.eval.get("pointing_tolerance", 4),
            )
            hits += np.asarray(h)
            totals += np.asarray(t)
            near, has_object = pointwise_localization_hits(
                heat, boxes, box_labels, box_valid=box_valid, tolerance=pointwise_tolerance(config)
            )
            point_hits.append(np.asarray(near))
            objects.append(np.asarray(has_object))
            box_hits, scored = maxboxacc_hits(
                heat, boxes, box_labels, present, box_valid=box_valid, cam_curve_interval=interval
            )
            top1 = batch_scores.argmax(axis=1)[:, None] == np.arange(num_classes)[None, :]
            box_correct += box_hits[scored].sum(axis=0)
            box_correct_top1 += box_hits[scored & top1].sum(axis=0)
            box_total += int(scored.sum())
        if "mask" in host:
            has_masks = True
            for total, part in zip(
                pixels,
                pxap_histograms(heat, host["mask"][valid], present, cam_curve_interval=interval),
            ):
                total += np.asarray(part)
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
        point_hits=np.concatenate(point_hits) if point_hits else None,
        objects=np.concatenate(objects) if objects else None,
        box_correct=box_correct,
        box_correct_top1=box_correct_top1,
        box_total=box_total,
        cam_curve_interval=interval,
        pixels=pixels,
        has_masks=has_masks,
        confusions=confusions,
    )


def choose_thresholds(validation_scan) -> dict:
    """The evaluation thresholds chosen on a validation scan (never on test).

    ``background_threshold``: the segmentation background threshold with the best validation
    mIoU (data sets with masks); ``cam_threshold``: the score-map threshold with the best
    validation GT-known localization accuracy at IoU 50 (data sets with boxes); the first best on
    ties. ``None`` entries when the data set has neither; :data:`DEFAULT_THRESHOLDS` (with a
    warning) when there is no validation scan.

    >>> with warnings.catch_warnings(record=True) as caught:
    ...     warnings.simplefilter("always")
    ...     choose_thresholds(None), len(caught)
    ({'background_threshold': 0.5, 'cam_threshold': 0.2}, 1)
    """
    if validation_scan is None:
        warnings.warn(
            "no validation split: the evaluation thresholds are the defaults "
            f"{DEFAULT_THRESHOLDS} (wsl_jax.train.evaluation.DEFAULT_THRESHOLDS), not chosen on "
            "data; test is never used to choose them.",
            stacklevel=2,
        )
        return dict(DEFAULT_THRESHOLDS)
    chosen = {"background_threshold": None, "cam_threshold": None}
    if validation_scan["has_masks"]:
        by_t = {t: float(mean_iou(c)[1]) for t, c in validation_scan["confusions"].items()}
        chosen["background_threshold"] = float(max(by_t, key=by_t.get))
    if validation_scan["box_total"]:
        out = maxboxacc(
            validation_scan["box_correct"],
            validation_scan["box_total"],
            cam_curve_interval=validation_scan["cam_curve_interval"],
        )
        chosen["cam_threshold"] = out["best_threshold"][50]
    return chosen


def _localization_metrics(scan, chosen) -> dict:
    """The box and mask metrics of one split, with the thresholds ``chosen`` on validation."""
    out = {}
    if scan["totals"].sum():
        _, mean, overall = pointing_game_accuracy(scan["hits"], scan["totals"])
        out["pointing_game"] = {"mean_over_classes": float(mean), "overall": float(overall)}
    if scan["objects"] is not None and scan["objects"].any():
        ap, mean = pointwise_localization(scan["scores"], scan["point_hits"], scan["objects"])
        out["pointwise_localization"] = {
            "mAP": float(mean),
            "AP": [float(a) for a in np.asarray(ap)],
        }
    wsol = {}
    interval = scan["cam_curve_interval"]
    if scan["box_total"]:
        boxes = maxboxacc(scan["box_correct"], scan["box_total"], cam_curve_interval=interval)
        wsol["MaxBoxAccV2"] = boxes["MaxBoxAccV2"]
        wsol["MaxBoxAcc"] = {str(d): v for d, v in boxes["MaxBoxAcc"].items()}
        wsol["best_threshold_of_this_split"] = {
            str(d): v for d, v in boxes["best_threshold"].items()
        }
        if chosen["cam_threshold"] is not None:  # At the threshold chosen on validation.

            def at(correct):
                return maxboxacc(
                    correct,
                    scan["box_total"],
                    cam_curve_interval=interval,
                    at_threshold=chosen["cam_threshold"],
                )["at_threshold"][50]

            wsol["cam_threshold"] = float(chosen["cam_threshold"])
            wsol["gt_known_loc"] = at(scan["box_correct"])
            if np.all(scan["labels"].sum(axis=1) == 1):  # Single-label: top-1 localization.
                wsol["top1_loc"] = at(scan["box_correct_top1"])
        wsol["pairs"] = int(scan["box_total"])
    if scan["has_masks"]:
        wsol["PxAP"] = pxap(*scan["pixels"])
    threshold = chosen["background_threshold"]
    if scan["has_masks"] and threshold is not None:
        iou, miou = mean_iou(scan["confusions"][threshold])
        out["segmentation"] = {
            "mIoU": float(miou),
            "IoU": np.asarray(iou).tolist(),
            "background_threshold": float(threshold),
        }
    if wsol:
        out["wsol"] = wsol
    return out


def evaluate_workdir(workdir, *, splits=("validation", "test"), num_overlays: int = 6) -> dict:
    """Evaluates the selected model of ``workdir``; writes ``eval.json`` and ``overlays/*.png``.

    Returns the metrics per split. The thresholds (mask background, GT-known score-map threshold)
    are chosen on ``"validation"`` whatever ``splits`` holds (it is scanned for them if it is not
    requested), never on test; without a validation split, :data:`DEFAULT_THRESHOLDS` with a
    warning (:func:`choose_thresholds`).

    Example (not run here: it scores every example of both splits; a run of
    ``configs/digits_weldon.py``)::

        results = evaluate_workdir("/tmp/wsl_digits")
        results["test"]["mAP"], results["test"]["wsol"]["MaxBoxAccV2"], results["test"]["wsol"]["PxAP"]

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

    catalog_split = {"validation": "val", "test": "test", "train": "train"}
    for split in splits:
        if split not in catalog_split:
            raise ValueError(f"splits must be among {sorted(catalog_split)}, got {split!r}")
    workdir = Path(workdir).expanduser()
    config, model, variables = load_run(workdir)
    mesh = data_mesh()
    sources = open_splits(config.data)
    scans = {}
    validation = sources.get("val")
    if validation is not None and len(validation):  # Calibration first, whatever is requested.
        scans["validation"] = _scan_split(model, variables, validation, config, mesh)
    chosen = choose_thresholds(scans.get("validation"))
    threshold = chosen["background_threshold"]
    results = {}
    for split in splits:
        if split not in scans:
            source = sources.get(catalog_split[split])
            if source is None:
                raise ValueError(f"the data set has no {split!r} split")
            scans[split] = _scan_split(model, variables, source, config, mesh)
        scan = scans[split]
        out = classification_metrics(scan["scores"], scan["labels"] > 0.5, where=scan["where"])
        out["examples"] = len(scan["scores"])
        out.update(_localization_metrics(scan, chosen))
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
        if threshold is not None and "mask" in host:
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
