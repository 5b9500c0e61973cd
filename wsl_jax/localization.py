"""Class maps → heat maps → segmentation masks (SPEC §A5).

All functions are pure and jittable (``image_size``, ``normalize``, ``method`` are static). Shape
checks raise a :class:`ValueError` naming the argument; value checks run only on concrete inputs.

Conventions:

* Layout is channels-last: class maps ``(B, h, w, C)``, heat maps ``(B, H, W, C)``, masks
  ``(B, H, W)``.
* Resizing uses :func:`jax.image.resize` with **half-pixel centres**: output pixel ``i`` samples the
  input at ``(i + 0.5) · h / H - 0.5``, and samples outside ``[0, h - 1]`` take the edge value. This
  is PyTorch's ``F.interpolate(..., mode="bilinear", align_corners=False)`` and TF2's
  ``tf.image.resize``. No anti-aliasing is applied (it would only matter when shrinking).
* Pixel coordinates are continuous: pixel ``(i, j)`` covers ``[i, i + 1) × [j, j + 1)`` and its
  centre is ``(i + 0.5, j + 0.5)``. Boxes are absolute ``[ymin, xmin, ymax, xmax]`` in these
  coordinates; :func:`boxes_to_pixels` converts boxes normalised to ``[0, 1]``. A VOC box (1-based,
  inclusive pixel indices) ``(xmin, ymin, xmax, ymax)`` is ``[ymin - 1, xmin - 1, ymax, xmax]``
  here.
* Segmentation labels: ``0`` is background and ``c + 1`` is class ``c`` (so ``num_classes = C + 1``
  when computing a :func:`~wsl_jax.localization_metrics.confusion_matrix`), as in VOC.

Example (class maps of one image, upsampled to heat maps, then a segmentation mask):
  >>> import jax.numpy as jnp
  >>> maps = jnp.array([[0.0, 2.0], [1.0, 0.0]])[None, :, :, None]  # (B=1, h=2, w=2, C=1)
  >>> heat = class_maps_to_heatmaps(maps, (4, 4))  # (1, 4, 4, 1), normalised to [0, 1]
  >>> print(segmentation_from_heatmaps(heat, background_threshold=0.5)[0])  # 0: background
  [[0 0 1 1]
   [0 0 1 1]
   [0 0 0 0]
   [1 0 0 0]]
"""

from __future__ import annotations

import numbers

import jax
import jax.numpy as jnp

from wsl_jax._arrays import at_least_float32 as _float

__all__ = [
    "RESIZE_METHODS",
    "boxes_to_pixels",
    "class_maps_to_heatmaps",
    "normalize_heatmaps",
    "segmentation_from_heatmaps",
]

RESIZE_METHODS = {"bilinear": "linear", "nearest": "nearest", "bicubic": "cubic"}


def _check_4d(name: str, x, what: str) -> None:
    if x.ndim != 4:
        raise ValueError(f"`{name}` must be 4-D {what}, got shape {x.shape}.")
    if x.shape[1] == 0 or x.shape[2] == 0:
        raise ValueError(f"`{name}` has empty images (zero height or width): shape {x.shape}.")
    if x.shape[3] == 0:
        raise ValueError(f"`{name}` has no classes (C = 0): shape {x.shape}.")


def _image_size(image_size) -> tuple[int, int]:
    if isinstance(image_size, numbers.Integral) and not isinstance(image_size, bool):
        image_size = (image_size, image_size)
    try:
        size = tuple(image_size)
    except TypeError:
        size = ()
    if len(size) != 2 or not all(
        isinstance(s, numbers.Integral) and not isinstance(s, bool) for s in size
    ):
        raise ValueError(
            f"`image_size` must be an int or a pair of ints (H, W), got {image_size!r}."
        )
    if min(size) < 1:
        raise ValueError(
            f"`image_size` must be positive (empty images are not allowed), got {size}."
        )
    return int(size[0]), int(size[1])


def normalize_heatmaps(heatmaps) -> jax.Array:
    """Min-max normalises each heat map to ``[0, 1]``, per image and per class.

    Args:
      heatmaps: ``(B, H, W, C)`` scores.

    Returns:
      ``(B, H, W, C)`` float heat maps, ``(x - min) / (max - min)`` over each ``(H, W)`` plane; a
      constant plane becomes all zeros (never NaN).

    Example:
      >>> x = jnp.array([1., 3., 2., 5., 7., 7., 7., 7.]).reshape(2, 2, 2, 1)
      >>> normalize_heatmaps(x)[..., 0]
      Array([[[0.  , 0.5 ],
              [0.25, 1.  ]],
             [[0.  , 0.  ],
              [0.  , 0.  ]]], dtype=float32)
    """
    x = _float(heatmaps)
    _check_4d("heatmaps", x, "(B, H, W, C)")
    lo = jnp.min(x, axis=(1, 2), keepdims=True)
    hi = jnp.max(x, axis=(1, 2), keepdims=True)
    rng = hi - lo
    ok = rng > 0
    return jnp.where(ok, (x - lo) / jnp.where(ok, rng, 1), jnp.zeros_like(x))


def class_maps_to_heatmaps(maps, image_size, *, normalize: bool = True, method: str = "bilinear"):
    """Upsamples class maps ``(B, h, w, C)`` to per-class heat maps ``(B, H, W, C)``.

    Resizing uses half-pixel centres (PyTorch ``align_corners=False``; see the module docstring),
    then each ``(H, W)`` plane is optionally min-max normalised to ``[0, 1]`` (per image, per class;
    a constant map gives zeros). Normalisation is done after resizing, so ``"bicubic"`` overshoot is
    also mapped into ``[0, 1]``.

    Args:
      maps: ``(B, h, w, C)`` class maps (e.g. the WILDCAT class-wise pooled maps before spatial
        pooling).
      image_size: ``H`` (square) or ``(H, W)``, static.
      normalize: whether to min-max normalise each heat map to ``[0, 1]``.
      method: ``"bilinear"`` (default), ``"nearest"`` or ``"bicubic"``.

    Returns:
      ``(B, H, W, C)`` float heat maps.

    Example:
      >>> m = jnp.array([[0., 4.]]).reshape(1, 1, 2, 1)
      >>> class_maps_to_heatmaps(m, (1, 4), normalize=False)[0, 0, :, 0]
      Array([0., 1., 3., 4.], dtype=float32)
      >>> class_maps_to_heatmaps(m, (1, 4))[0, 0, :, 0]
      Array([0.  , 0.25, 0.75, 1.  ], dtype=float32)
    """
    if method not in RESIZE_METHODS:
        raise ValueError(f"`method` must be one of {tuple(RESIZE_METHODS)}, got {method!r}.")
    x = _float(maps)
    _check_4d("maps", x, "class maps (B, h, w, C)")
    height, width = _image_size(image_size)
    shape = (x.shape[0], height, width, x.shape[3])
    if shape != x.shape:
        x = jax.image.resize(x, shape, method=RESIZE_METHODS[method], antialias=False)
    return normalize_heatmaps(x) if normalize else x


def segmentation_from_heatmaps(heatmaps, *, class_mask=None, background_threshold=0.5) -> jax.Array:
    """Segmentation mask from heat maps: arg-max over classes, background below a threshold.

    Pixel ``p`` gets label ``c + 1`` where ``c`` is the arg-max over the allowed classes of
    ``heatmaps[b, p, c]`` (lowest class index on ties), and label ``0`` (background) where that best
    score is ``< background_threshold`` or no class is allowed. The threshold is meant for
    normalised heat maps (:func:`class_maps_to_heatmaps` with ``normalize=True``); ``None`` disables
    background.

    Args:
      heatmaps: ``(B, H, W, C)`` heat maps.
      class_mask: optional ``(B, C)`` boolean (or 0/1) mask of the classes allowed in each image,
        e.g. the ground-truth labels or the predicted ones; by default all classes are allowed.
      background_threshold: float (may be traced) or ``None``.

    Returns:
      ``(B, H, W)`` int32 labels: ``0`` background, ``c + 1`` class ``c``.

    Example:
      >>> h = jnp.array([[.9, .2], [.3, .6], [.1, .4]]).reshape(1, 1, 3, 2)
      >>> segmentation_from_heatmaps(h)
      Array([[[1, 2, 0]]], dtype=int32)
      >>> segmentation_from_heatmaps(h, class_mask=jnp.array([[False, True]]))
      Array([[[0, 2, 0]]], dtype=int32)
    """
    x = _float(heatmaps)
    _check_4d("heatmaps", x, "(B, H, W, C)")
    batch, _, _, num_classes = x.shape
    if class_mask is not None:
        class_mask = jnp.asarray(class_mask)
        if class_mask.shape != (batch, num_classes):
            raise ValueError(
                f"`class_mask` must have shape (B, C) = {(batch, num_classes)}, "
                f"got {class_mask.shape}."
            )
        allowed = jnp.broadcast_to(class_mask.astype(bool)[:, None, None, :], x.shape)
        x = jnp.where(allowed, x, -jnp.inf)
    best = jnp.max(x, axis=-1)
    labels = jnp.argmax(x, axis=-1).astype(jnp.int32) + 1
    background = best == -jnp.inf
    if background_threshold is not None:
        background = background | (best < background_threshold)
    return jnp.where(background, 0, labels)


def boxes_to_pixels(boxes, image_size) -> jax.Array:
    """Converts boxes normalised to ``[0, 1]`` into absolute pixel coordinates.

    Args:
      boxes: ``(..., 4)`` normalised ``[ymin, xmin, ymax, xmax]`` (the TFDS ``BBoxFeature`` layout).
      image_size: ``H`` or ``(H, W)``.

    Returns:
      ``(..., 4)`` float boxes ``[ymin·H, xmin·W, ymax·H, xmax·W]`` (continuous pixel coordinates;
      see the module docstring).

    Example:
      >>> boxes_to_pixels(jnp.array([[0.1, 0.25, 0.5, 1.0]]), (100, 200))
      Array([[ 10.,  50.,  50., 200.]], dtype=float32)
    """
    boxes = _float(boxes)
    if boxes.ndim < 1 or boxes.shape[-1] != 4:
        raise ValueError(
            f"`boxes` must have shape (..., 4) [ymin, xmin, ymax, xmax], got {boxes.shape}."
        )
    height, width = _image_size(image_size)
    return boxes * jnp.asarray([height, width, height, width], boxes.dtype)
