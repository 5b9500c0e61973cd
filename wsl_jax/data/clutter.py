"""Cluttered-digit canvases: pure NumPy generation, independent of tfds.

A canvas is a square grayscale ``uint8`` image (background 0) holding ``min_digits..max_digits``
labelled digits at random, non-overlapping positions and sizes, plus *clutter fragments*: small crops
cut from other digits of the same source pool, pasted where no labelled digit lies. Each labelled digit
comes with a tight box around its ink and per-pixel labels in a mask.

Conventions (shared by the tfds builders and the grain pipeline):

* ``image``: ``(S, S, 1)`` uint8, ink bright on a black background, canvases composed with ``max``.
* ``boxes``: ``(k, 4)`` float32, ``[ymin, xmin, ymax, xmax]`` normalised by the canvas size, the
  ``max`` edges exclusive (pixel rows ``ymin*S .. ymax*S - 1``), as ``tfds.features.BBoxFeature``.
* ``mask``: ``(S, S, 1)`` uint8; ``0`` background (clutter fragments included), ``c + 1`` for pixels
  of a digit of class ``c`` with intensity ``>= 128``, ``255`` (void, ignore) for faint pixels of a
  digit (``32 <= v < 128``: anti-aliased edges).
* Digit sources are square ``uint8`` images in ``[0, 255]`` (``DigitPool``).

Example (one canvas from a pool of bar-shaped "digits"):
  >>> images = np.zeros((20, 8, 8), np.uint8); images[:, 1:7, 3:5] = 255
  >>> pool = DigitPool(images, np.arange(20) % 10)
  >>> spec = CanvasSpec(canvas_size=32, digit_size=(8, 12))
  >>> ex = compose_canvas(pool, spec, example_rng(0, "train", 0))
  >>> ex["image"].shape, ex["image"].dtype, ex["boxes"].shape[1]
  ((32, 32, 1), dtype('uint8'), 4)
  >>> bool(((ex["boxes"] >= 0) & (ex["boxes"] <= 1)).all())  # normalised [ymin, xmin, ymax, xmax]
  True
  >>> set(np.unique(ex["mask"])) <= {0, 255} | {c + 1 for c in ex["label_per_box"].tolist()}
  True
"""
from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np
from PIL import Image

NUM_CLASSES = 10
VOID = 255
INK_THRESHOLD = 128
FAINT_THRESHOLD = 32
SPLIT_CODES = {"train": 0, "validation": 1, "test": 2}


@dataclasses.dataclass(frozen=True)
class DigitPool:
    """Source digits: ``images`` ``(N, h, w)`` uint8 in [0, 255], ``labels`` ``(N,)`` ints in 0..9.

    ``ids`` (default ``arange(N)``) are the indices of the digits in their original data set; they
    are what the builders store in ``source_index``.

    >>> pool = DigitPool(np.zeros((2, 8, 8), np.uint8), np.array([3, 5]))
    >>> len(pool), pool.ids.tolist()
    (2, [0, 1])
    """

    images: np.ndarray
    labels: np.ndarray
    ids: np.ndarray | None = None

    def __post_init__(self):
        images = np.asarray(self.images)
        labels = np.asarray(self.labels).astype(np.int64)
        if images.ndim != 3 or images.dtype != np.uint8:
            raise ValueError(f"DigitPool.images must be (N, h, w) uint8, got {images.shape} {images.dtype}")
        if labels.shape != images.shape[:1]:
            raise ValueError(f"DigitPool.labels must be ({images.shape[0]},), got {labels.shape}")
        if labels.size and (labels.min() < 0 or labels.max() >= NUM_CLASSES):
            raise ValueError("DigitPool.labels must lie in 0..9")
        ids = np.arange(len(labels)) if self.ids is None else np.asarray(self.ids).astype(np.int64)
        if ids.shape != labels.shape:
            raise ValueError(f"DigitPool.ids must be ({len(labels)},), got {ids.shape}")
        object.__setattr__(self, "images", images)
        object.__setattr__(self, "labels", labels)
        object.__setattr__(self, "ids", ids)

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    def subset(self, indices) -> DigitPool:
        """The pool restricted to ``indices`` (positions in this pool), keeping original ids.

        >>> DigitPool(np.zeros((3, 8, 8), np.uint8), np.array([1, 2, 3])).subset([2]).ids.tolist()
        [2]
        """
        indices = np.asarray(indices, dtype=np.int64)
        return DigitPool(self.images[indices], self.labels[indices], self.ids[indices])


@dataclasses.dataclass(frozen=True)
class CanvasSpec:
    """Layout parameters of one canvas; sizes in canvas pixels, ranges inclusive.

    ``digit_size``: side of the square a source digit is resized into (bilinear);
    ``fragment_size``: side range of a clutter crop; ``gap``: minimum free pixels between digits.

    >>> CanvasSpec(canvas_size=32, digit_size=(8, 14)).canvas_size
    32
    """

    canvas_size: int = 64
    min_digits: int = 1
    max_digits: int = 3
    digit_size: tuple[int, int] = (16, 28)
    num_fragments: tuple[int, int] = (2, 6)
    fragment_size: tuple[int, int] = (5, 10)
    gap: int = 1

    def __post_init__(self):
        s, (lo, hi) = self.canvas_size, self.digit_size
        if not 1 <= self.min_digits <= self.max_digits:
            raise ValueError(f"need 1 <= min_digits <= max_digits, got {self.min_digits}, {self.max_digits}")
        if not 1 <= lo <= hi <= s:
            raise ValueError(f"digit_size {self.digit_size} must satisfy 1 <= lo <= hi <= canvas_size={s}")
        per_side = (s + self.gap) // (lo + self.gap)
        if per_side * per_side < self.max_digits:
            raise ValueError(
                f"max_digits={self.max_digits} digits of size {lo} cannot fit on a {s}x{s} canvas")
        flo, fhi = self.fragment_size
        if not 1 <= flo <= fhi <= s or not 0 <= self.num_fragments[0] <= self.num_fragments[1]:
            raise ValueError(f"bad fragment_size {self.fragment_size} or num_fragments {self.num_fragments}")


def example_rng(seed: int, split: str, index: int) -> np.random.Generator:
    """The generator of example ``index`` of ``split``: independent of generation order.

    >>> a = example_rng(0, "train", 5).integers(1 << 30); b = example_rng(0, "train", 5).integers(1 << 30)
    >>> bool(a == b), bool(a == example_rng(0, "test", 5).integers(1 << 30))
    (True, False)
    """
    if split not in SPLIT_CODES:
        raise ValueError(f"unknown split {split!r}; expected one of {sorted(SPLIT_CODES)}")
    return np.random.default_rng([int(seed), SPLIT_CODES[split], int(index)])


def split_pool_indices(labels: np.ndarray, fractions: dict[str, float], seed: int = 0
                       ) -> dict[str, np.ndarray]:
    """Partitions source indices into disjoint pools, stratified by class.

    Each class's indices are shuffled (``seed``) and cut in the given proportions (the last split
    takes the rounding remainder). Returned indices are sorted.

    >>> pools = split_pool_indices(np.arange(100) % 10, {"train": 0.6, "validation": 0.15, "test": 0.25})
    >>> [len(pools[k]) for k in ("train", "validation", "test")]
    [60, 10, 30]
    """
    labels = np.asarray(labels)
    names = list(fractions)
    total = float(sum(fractions.values()))
    if total <= 0 or any(f < 0 for f in fractions.values()):
        raise ValueError(f"fractions must be non-negative with a positive sum, got {fractions}")
    rng = np.random.default_rng(seed)
    out: dict[str, list[np.ndarray]] = {n: [] for n in names}
    for c in np.unique(labels):
        idx = rng.permutation(np.flatnonzero(labels == c))
        cuts = np.floor(np.cumsum([fractions[n] / total for n in names]) * len(idx)).astype(int)
        cuts[-1] = len(idx)
        for n, part in zip(names, np.split(idx, cuts[:-1])):
            out[n].append(part)
    return {n: np.sort(np.concatenate(v)).astype(np.int64) for n, v in out.items()}


def resize_digit(digit: np.ndarray, size: int) -> np.ndarray:
    """Bilinear resize of a square ``uint8`` digit to ``(size, size)``.

    >>> resize_digit(np.full((8, 8), 200, np.uint8), 20).shape
    (20, 20)
    """
    return np.asarray(Image.fromarray(digit).resize((size, size), Image.BILINEAR), dtype=np.uint8)


def _overlaps(box, boxes, gap: int) -> bool:
    y0, x0, y1, x1 = box
    for b0, c0, b1, c1 in boxes:
        if y0 < b1 + gap and b0 < y1 + gap and x0 < c1 + gap and c0 < x1 + gap:
            return True
    return False


def _layout(rng: np.random.Generator, spec: CanvasSpec, k: int) -> list[tuple[int, int, int]]:
    """Non-overlapping squares ``(y, x, size)``: rejection sampling with restarts, grid fallback."""
    s, (lo, hi) = spec.canvas_size, spec.digit_size
    for _ in range(20):
        squares: list[tuple[int, int, int]] = []
        for _ in range(k):
            size = int(rng.integers(lo, hi + 1))
            for _ in range(60):
                y, x = (int(v) for v in rng.integers(0, s - size + 1, size=2))
                if not _overlaps((y, x, y + size, x + size), [(a, b, a + c, b + c) for a, b, c in squares],
                                 spec.gap):
                    squares.append((y, x, size))
                    break
                size = max(lo, size - 1)  # shrink towards the smallest size while failing
            else:
                break
        if len(squares) == k:
            return squares
    per_side = (s + spec.gap) // (lo + spec.gap)  # fallback: smallest digits in random grid cells
    cells = rng.permutation(per_side * per_side)[:k]
    return [(int(c // per_side) * (lo + spec.gap), int(c % per_side) * (lo + spec.gap), lo) for c in cells]


def compose_canvas(pool: DigitPool, spec: CanvasSpec, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Draws one canvas from ``pool``; returns the example as NumPy arrays (see module docstring).

    Keys: ``image``, ``mask`` ``(S, S, 1)`` uint8; ``labels`` ``(10,)`` uint8 multi-hot;
    ``boxes`` ``(k, 4)`` float32; ``label_per_box``, ``source_index`` ``(k,)`` int64 (``pool.ids`` of
    the labelled digits); ``fragment_source_index`` ``(m,)`` int64 (never one of the labelled digits).

    >>> rng = np.random.default_rng(0)
    >>> pool = DigitPool(rng.integers(0, 256, (20, 8, 8), dtype=np.uint8), np.arange(20) % 10)
    >>> ex = compose_canvas(pool, CanvasSpec(canvas_size=32, digit_size=(8, 12)), rng)
    >>> ex["image"].shape, len(ex["boxes"]) == len(ex["label_per_box"])
    ((32, 32, 1), True)
    >>> set(ex["label_per_box"].tolist()) == set(np.flatnonzero(ex["labels"]).tolist())
    True
    """
    s = spec.canvas_size
    n = len(pool)
    k = int(rng.integers(spec.min_digits, spec.max_digits + 1))
    if n < k + (1 if spec.num_fragments[1] > 0 else 0):
        raise ValueError(f"digit pool of {n} images is too small for {k} digits plus clutter")
    chosen = rng.choice(n, size=k, replace=False)
    image = np.zeros((s, s), np.uint8)
    mask = np.zeros((s, s), np.uint8)
    boxes, squares = [], _layout(rng, spec, k)
    for i, (y, x, size) in zip(chosen, squares):
        digit = resize_digit(pool.images[i], size)
        region = (slice(y, y + size), slice(x, x + size))
        image[region] = np.maximum(image[region], digit)
        cls = np.uint8(pool.labels[i] + 1)
        mask[region] = np.where(digit >= INK_THRESHOLD, cls,
                                np.where(digit >= FAINT_THRESHOLD, np.uint8(VOID), mask[region]))
        rows, cols = np.flatnonzero(digit.max(1) > 0), np.flatnonzero(digit.max(0) > 0)
        if rows.size == 0:  # blank source digit: box the whole square
            rows = cols = np.array([0, size - 1])
        boxes.append([y + rows[0], x + cols[0], y + rows[-1] + 1, x + cols[-1] + 1])

    occupied = [(y, x, y + c, x + c) for y, x, c in squares]
    others = np.setdiff1d(np.arange(n), chosen)
    fragment_ids = []
    for _ in range(int(rng.integers(spec.num_fragments[0], spec.num_fragments[1] + 1))):
        j = int(rng.choice(others))
        source = resize_digit(pool.images[j], int(rng.integers(*spec.digit_size, endpoint=True)))
        f = min(int(rng.integers(*spec.fragment_size, endpoint=True)), source.shape[0])
        for _ in range(5):  # prefer a crop that holds some ink
            cy, cx = (int(v) for v in rng.integers(0, source.shape[0] - f + 1, size=2))
            crop = source[cy:cy + f, cx:cx + f]
            if (crop >= INK_THRESHOLD).mean() > 0.15:
                break
        for _ in range(20):
            y, x = (int(v) for v in rng.integers(0, s - f + 1, size=2))
            if not _overlaps((y, x, y + f, x + f), occupied, spec.gap):
                region = (slice(y, y + f), slice(x, x + f))
                image[region] = np.maximum(image[region], crop)
                fragment_ids.append(pool.ids[j])
                break

    labels = np.zeros(NUM_CLASSES, np.uint8)
    labels[pool.labels[chosen]] = 1
    return {
        "image": image[..., None],
        "mask": mask[..., None],
        "labels": labels,
        "boxes": np.asarray(boxes, np.float32).reshape(-1, 4) / np.float32(s),
        "label_per_box": pool.labels[chosen].astype(np.int64),
        "source_index": pool.ids[chosen].astype(np.int64),
        "fragment_source_index": np.asarray(fragment_ids, np.int64),
    }


def canvases(pool: DigitPool, spec: CanvasSpec, seed: int, split: str, num_examples: int,
             start: int = 0) -> Sequence[dict[str, np.ndarray]]:
    """Canvases ``start .. start + num_examples - 1`` of ``split``, each from ``example_rng``.

    >>> pool = DigitPool(np.full((12, 8, 8), 255, np.uint8), np.arange(12) % 10)
    >>> len(canvases(pool, CanvasSpec(canvas_size=32, digit_size=(8, 10)), 0, "test", 3))
    3
    """
    return [compose_canvas(pool, spec, example_rng(seed, split, i)) for i in range(start, start + num_examples)]
