"""Where in an image the model works, from its mask alone: the crops around hole regions
(:func:`hole_boxes`), the tiles of a crop too large for one model call (:func:`tile_box`), and
how wide its widest hole is (:func:`widest_hole`). Geometry only: no pixels are read here."""

from __future__ import annotations

import numpy as np

Box = tuple[int, int, int, int]  # top, left, bottom, right (exclusive)
_GRID = 8  # hole regions are found on a grid of 8×8-pixel cells (cheap, and merges speckles)


def _hole_cells(valid: np.ndarray) -> np.ndarray:
    """The mask on the grid: a cell is hole if any pixel in it is."""
    height, width = valid.shape
    gh, gw = -(-height // _GRID), -(-width // _GRID)
    padded = np.zeros((gh * _GRID, gw * _GRID), dtype=bool)
    padded[:height, :width] = ~valid
    return padded.reshape(gh, _GRID, gw, _GRID).any(axis=(1, 3))


def hole_boxes(valid: np.ndarray, margin: int, multiple: int = 1) -> list[Box]:
    """Crops that together cover every hole pixel, each with ``margin`` pixels of context.

    Holes are grouped into connected regions (on an 8-pixel grid), each region's bounding box
    is grown by ``margin`` and towards a multiple of ``multiple`` (the model's native sizes,
    so that less of the crop is padding), and overlapping boxes are merged until none overlap.
    Every hole pixel then lies in exactly one box.
    """
    from skimage.measure import label, regionprops

    height, width = valid.shape
    cells = _hole_cells(valid)
    boxes = []
    for region in regionprops(label(cells, connectivity=2)):
        top, left, bottom, right = region.bbox
        boxes.append((top * _GRID, left * _GRID, min(bottom * _GRID, height),
                      min(right * _GRID, width)))
    boxes = [_grow(b, margin, multiple, height, width) for b in boxes]
    while True:
        merged = _merge_overlapping(boxes)
        if len(merged) == len(boxes):
            return sorted(merged)
        boxes = [_grow(b, 0, multiple, height, width) for b in merged]


def _grow(box: Box, margin: int, multiple: int, height: int, width: int) -> Box:
    top, left, bottom, right = box
    top, left = max(0, top - margin), max(0, left - margin)
    bottom, right = min(height, bottom + margin), min(width, right + margin)
    top, bottom = _grow_axis(top, bottom, multiple, height)
    left, right = _grow_axis(left, right, multiple, width)
    return top, left, bottom, right


def _grow_axis(start: int, stop: int, multiple: int, limit: int) -> tuple[int, int]:
    """Extend [start, stop) to a multiple of ``multiple`` where the image allows, centred."""
    size = stop - start
    want = min(limit, -(-size // multiple) * multiple)
    extra = want - size
    start = max(0, start - extra // 2)
    stop = min(limit, start + want)
    return max(0, stop - want), stop


def _merge_overlapping(boxes: list[Box]) -> list[Box]:
    merged: list[Box] = []
    for box in sorted(boxes):
        for i, other in enumerate(merged):
            if box[0] < other[2] and other[0] < box[2] and box[1] < other[3] and other[1] < box[3]:
                merged[i] = (min(box[0], other[0]), min(box[1], other[1]),
                             max(box[2], other[2]), max(box[3], other[3]))
                break
        else:
            merged.append(box)
    return merged


def tile_box(box: Box, tile: tuple[int, int], margin: int, multiple: int
             ) -> list[tuple[Box, Box]]:
    """Split ``box`` into (window, keep) pairs: the keeps partition the box, each window is
    its keep with up to ``margin`` pixels of the box around it, and no window is larger than
    ``tile`` (height, width). A box that fits is one pair."""
    top, left, bottom, right = box
    windows_h = _tile_axis(top, bottom, tile[0], margin, multiple)
    windows_w = _tile_axis(left, right, tile[1], margin, multiple)
    return [((wt, wl, wb, wr), (kt, kl, kb, kr))
             for (wt, wb), (kt, kb) in windows_h for (wl, wr), (kl, kr) in windows_w]


def _tile_axis(start: int, stop: int, tile: int, margin: int, multiple: int
               ) -> list[tuple[tuple[int, int], tuple[int, int]]]:
    if stop - start <= tile:
        return [((start, stop), (start, stop))]
    # The context must leave room for a kept part of at least one grid step.
    margin = max(0, min(margin, (tile - multiple) // 2))
    step = max(1, tile - 2 * margin)
    step = max(multiple, step // multiple * multiple) if step >= multiple else step
    out = []
    for keep_start in range(start, stop, step):
        keep_stop = min(stop, keep_start + step)
        window_start = max(start, keep_start - margin)
        window_stop = min(stop, keep_stop + margin)
        # At the box's edges the window slides inwards to use all of the tile as context.
        if window_stop - window_start < tile:
            window_start = max(start, min(window_start, window_stop - tile))
            window_stop = min(stop, max(window_stop, window_start + tile))
        out.append(((window_start, window_stop), (keep_start, keep_stop)))
    return out


def widest_hole(valid: np.ndarray) -> int:
    """About the width (px) of the widest hole: twice the largest distance from a hole pixel
    to a known one, on the 8-pixel grid (a cell is hole if any pixel in it is), so it is cheap
    on a 24 MP crop and errs towards wide."""
    from scipy import ndimage

    cells = _hole_cells(valid)
    if not cells.any():
        return 0
    return int(2 * ndimage.distance_transform_edt(np.pad(cells, 1)).max() * _GRID)
