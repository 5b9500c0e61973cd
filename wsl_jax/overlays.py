"""PNG overlays of heat maps and masks, for people to look at (SPEC §A5).

Figures are drawn with Matplotlib's object API on an Agg canvas (no ``pyplot``, no global backend
switch, safe in scripts and tests without a display).

Example (writes a small PNG with the image, one heat map and nothing else):
  >>> import os, tempfile
  >>> import numpy as np
  >>> heat = np.zeros((8, 8, 1)); heat[3, 4, 0] = 1.0
  >>> path = save_overlay(os.path.join(tempfile.mkdtemp(), "x.png"), np.zeros((8, 8)), heat,
  ...                     panel_size=1.0, dpi=40)
  >>> os.path.getsize(path) > 0, voc_palette(2).tolist()
  (True, [[0, 0, 0], [128, 0, 0]])
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np

__all__ = ["save_overlay", "voc_palette"]


def voc_palette(n: int = 256) -> np.ndarray:
    """The PASCAL VOC label colour map: ``(n, 3)`` uint8, label ``0`` black, ``1`` dark red, ...

    Example:
      >>> voc_palette(4)
      array([[  0,   0,   0],
             [128,   0,   0],
             [  0, 128,   0],
             [128, 128,   0]], dtype=uint8)
    """
    palette = np.zeros((n, 3), np.uint8)
    for label in range(n):
        value, r, g, b = label, 0, 0, 0
        for shift in range(7, -1, -1):  # spread the label's bits over the high bits of r, g, b
            r |= (value & 1) << shift
            g |= ((value >> 1) & 1) << shift
            b |= ((value >> 2) & 1) << shift
            value >>= 3
        palette[label] = (r, g, b)
    return palette


def _display_image(image) -> np.ndarray:
    """``(H, W)``, ``(H, W, 1|3|4)`` uint8 or float → ``(H, W, 3)`` float in ``[0, 1]``."""
    img = np.asarray(image)
    if img.ndim == 3 and img.shape[-1] in (1, 3, 4):
        img = img[..., :3] if img.shape[-1] != 1 else np.repeat(img, 3, axis=-1)
    elif img.ndim == 2:
        img = np.repeat(img[..., None], 3, axis=-1)
    else:
        raise ValueError(
            f"`image` must have shape (H, W), (H, W, 1), (H, W, 3) or (H, W, 4), got {img.shape}."
        )
    if img.shape[0] == 0 or img.shape[1] == 0:
        raise ValueError(f"`image` is empty (zero height or width): shape {img.shape}.")
    if img.dtype == np.uint8:
        return img.astype(np.float32) / 255.0
    img = img.astype(np.float32)
    lo, hi = float(np.nanmin(img)), float(np.nanmax(img))
    if lo < 0.0 or hi > 1.0:  # e.g. mean/std normalised network input: rescale for display
        img = (img - lo) / (hi - lo) if hi > lo else np.zeros_like(img)
    return np.nan_to_num(img)


def _display_heatmap(heat: np.ndarray) -> np.ndarray:
    heat = np.nan_to_num(heat.astype(np.float32))
    lo, hi = float(heat.min()), float(heat.max())
    if lo >= 0.0 and hi <= 1.0:
        return heat
    return (heat - lo) / (hi - lo) if hi > lo else np.zeros_like(heat)


def save_overlay(
    path,
    image,
    heatmaps,
    labels=None,
    mask=None,
    class_names: Sequence[str] | None = None,
    *,
    panel_size: float = 3.0,
    dpi: int = 100,
    alpha: float = 0.5,
):
    """Writes a PNG: the image, one heat map per present class over it, and the mask.

    Panels, left to right: the image; for each class ``c`` with ``labels[c]`` set, the heat map
    (``jet``, ``[0, 1]``; maps outside that range are min-max scaled) blended over the image, with a
    white ``+`` at its arg-max and the peak value in the title; then, if given, the mask in the VOC
    colours over the dimmed image (``0`` background, uncoloured; ``c + 1`` class ``c``; ``255``
    void, white) with a legend. The PNG is ``round(dpi · panel_size · n_panels)`` pixels wide and
    ``round(dpi · (panel_size + 0.4))`` high.

    Args:
      path: output file name (``.png``).
      image: ``(H, W, 3)`` (or ``(H, W)``, ``(H, W, 1)``, ``(H, W, 4)``) uint8, or float in
        ``[0, 1]`` (other float ranges are min-max scaled for display).
      heatmaps: ``(H, W, C)`` heat maps of this image at image resolution, e.g. one image of
        :func:`~wsl_jax.localization.class_maps_to_heatmaps`.
      labels: ``(C,)`` multi-hot classes to show (ground truth or predicted); ``None`` shows all
        ``C``.
      mask: optional ``(H, W)`` integer segmentation labels (see
        :func:`~wsl_jax.localization.segmentation_from_heatmaps`).
      class_names: optional ``C`` names; default ``"class c"``.
      panel_size: panel width in inches; dpi: resolution; alpha: heat-map opacity.

    Returns:
      ``path``.

    Example:
      >>> import tempfile, os
      >>> heat = np.zeros((8, 8, 2)); heat[2, 5, 1] = 1.0
      >>> out = save_overlay(os.path.join(tempfile.mkdtemp(), "o.png"), np.ones((8, 8, 3)), heat,
      ...                    labels=[0, 1], class_names=["cat", "dog"], panel_size=1.0, dpi=50)
      >>> open(out, "rb").read(8) == b"\\x89PNG\\r\\n\\x1a\\n"
      True
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.patches import Patch

    img = _display_image(image)
    height, width = img.shape[:2]
    heat = np.asarray(heatmaps)
    if heat.ndim != 3 or heat.shape[:2] != (height, width):
        raise ValueError(
            f"`heatmaps` must have shape (H, W, C) = ({height}, {width}, C) matching `image`, "
            f"got {heat.shape}."
        )
    num_classes = heat.shape[-1]
    if labels is None:
        present = np.arange(num_classes)
    else:
        labels = np.asarray(labels)
        if labels.shape != (num_classes,):
            raise ValueError(
                f"`labels` must have shape (C,) = ({num_classes},) (multi-hot), got {labels.shape}."
            )
        present = np.flatnonzero(labels)
    if class_names is None:
        class_names = [f"class {c}" for c in range(num_classes)]
    elif len(class_names) != num_classes:
        raise ValueError(
            f"`class_names` must have C = {num_classes} names, got {len(class_names)}."
        )
    if mask is not None:
        mask = np.asarray(mask)
        if mask.shape != (height, width):
            raise ValueError(
                f"`mask` must have shape (H, W) = {(height, width)} matching `image`, "
                f"got {mask.shape}."
            )
        if not np.issubdtype(mask.dtype, np.integer):
            raise ValueError(f"`mask` must hold integer labels, got dtype {mask.dtype}.")
        bad = (mask != 255) & ((mask < 0) | (mask > num_classes))
        if bad.any():
            raise ValueError(
                f"`mask` labels must be in [0, {num_classes}] (0 background, c + 1 class c) "
                f"or 255 (void), "
                f"got {np.unique(mask[bad])[:10]}."
            )

    n_panels = 1 + len(present) + (mask is not None)
    fig = Figure(figsize=(panel_size * n_panels, panel_size + 0.4), dpi=dpi)
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, n_panels, squeeze=False)[0]
    fig.subplots_adjust(left=0.01, right=0.99, bottom=0.02, top=0.88, wspace=0.04)
    for ax in axes:
        ax.set_axis_off()
    fontsize = max(6.0, 3.3 * panel_size)

    axes[0].imshow(img, interpolation="nearest")
    axes[0].set_title("image", fontsize=fontsize)
    for ax, c in zip(axes[1 : 1 + len(present)], present, strict=True):
        plane = heat[..., c]
        ax.imshow(img, interpolation="nearest")
        ax.imshow(
            _display_heatmap(plane),
            cmap="jet",
            vmin=0.0,
            vmax=1.0,
            alpha=alpha,
            interpolation="bilinear",
        )
        y, x = np.unravel_index(int(np.argmax(np.nan_to_num(plane, nan=-np.inf))), plane.shape)
        ax.plot([x], [y], marker="+", color="white", markersize=2.5 * fontsize, markeredgewidth=2)
        ax.set_xlim(-0.5, width - 0.5)
        ax.set_ylim(height - 0.5, -0.5)
        ax.set_title(f"{class_names[c]} (peak {float(plane[y, x]):.2f})", fontsize=fontsize)
    if mask is not None:
        ax = axes[-1]
        palette = voc_palette(256).astype(np.float32) / 255.0
        palette[255] = 1.0
        colours = palette[mask.astype(np.int64)]
        blend = np.where(mask[..., None] == 0, 0.5 * img, 0.35 * img + 0.65 * colours)
        ax.imshow(blend, interpolation="nearest")
        ax.set_title("mask", fontsize=fontsize)
        names = ["background", *class_names]
        handles = [
            Patch(
                facecolor=palette[v] if v else (0.0, 0.0, 0.0),
                edgecolor="gray",
                label="void" if v == 255 else names[v],
            )
            for v in np.unique(mask)
        ]
        ax.legend(
            handles=handles,
            loc="lower left",
            fontsize=0.8 * fontsize,
            framealpha=0.7,
            handlelength=1.0,
            borderpad=0.3,
            labelspacing=0.2,
        )
    fig.savefig(os.fspath(path), format="png", dpi=dpi)
    return path
