"""Distance fields of street pieces on a square lattice, and their contours.

A walking isochrone is the set of points within ``buffer_m`` of the street
pieces a facility reaches. Instead of buffering every piece and overlaying
the buffers (GEOS unions cost about 25 ms per facility at 1 km), the
distance from each point of a square lattice to the nearest piece is
computed exactly (point-to-segment distance, in a compiled loop over each
piece's neighbourhood), and the polygon is the lattice's contour at
``buffer_m`` (marching squares, linear interpolation along the cell sides).

The lattice is global: point ``(i, j)`` is at ``(i x cell_m, j x cell_m)``
in the network CRS, so fields of different facilities line up and a
category's layer is the pointwise minimum of its facilities' fields (a
union), and the maximum of its tiers' fields (an intersection), contoured
once. With ``cell_m = buffer_m / 5`` (5 m for the default 25 m) the overlap
with buffering every segment (``method="exact"``) was min 0.996, mean 0.998
on 100 random Porto Alegre facilities at 1 km (``make bench``); a hostile
fuzz of random points at 50 m found 0.990. Features narrower than a cell
can differ: a gap or hole under one cell may close or open, and a lattice
point exactly at the level counts as inside.

Only lattice points within ``reach_m`` of a piece get a distance; the rest
keep ``reach_m``. With ``reach_m >= level + cell_m x sqrt(2)`` the contour
at ``level`` is the same as with the full field, because the distance
changes by at most one cell side between neighbouring points.
"""

from __future__ import annotations

import math
import threading
import warnings
from collections import deque
from collections.abc import Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, cast

import numpy as np
import numpy.typing as npt
import shapely

FIELD_CELLS_PER_BUFFER = 5.0
FloatArray = npt.NDArray[np.float64]
_COMPILE_LOCK = threading.RLock()
_COMPILED: dict[Any, Any] = {}
_KERNELS: dict[str, Any] = {}


def compiled(py: Any) -> Any:
    """Return `py` compiled by numba (``nogil``, cached on disk), compiling it on first use.

    numba is imported here, not with the module: importing lifecircle (or a
    command that neither routes nor draws) does not pay for it (0.2-0.4 s, 100 MB).
    Without a writable cache folder (a read-only install and no writable
    ``NUMBA_CACHE_DIR``), the loops are compiled in memory for each run, with a
    warning, instead of failing.
    """
    with _COMPILE_LOCK:
        if py not in _COMPILED:
            import numba

            try:
                _COMPILED[py] = numba.njit(cache=True, nogil=True)(py)
            except RuntimeError as exc:  # numba: "cannot cache function ...: no locator"
                if "cannot cache" not in str(exc):
                    raise
                if not _COMPILED.get("warned"):
                    _COMPILED["warned"] = True
                    warnings.warn(
                        "numba has no writable folder to cache lifecircle's compiled loops, so "
                        "they are compiled again in each run (a few seconds); set "
                        "NUMBA_CACHE_DIR to a writable folder",
                        RuntimeWarning,
                        stacklevel=2,
                    )
                _COMPILED[py] = numba.njit(cache=False, nogil=True)(py)
        return _COMPILED[py]


def compiled_loops(
    kernels: dict[str, Any], module: dict[str, Any], helpers: dict[str, Any], loops: dict[str, Any]
) -> dict[str, Any]:
    """Fill `kernels` with the compiled `loops` on first use, and return it.

    The `helpers` are compiled first and set in the `module`'s globals under
    their names, where the loops find them when numba compiles them.
    """
    with _COMPILE_LOCK:
        if not kernels:
            for name, py in helpers.items():
                module[name] = compiled(py)
            kernels.update({name: compiled(py) for name, py in loops.items()})
    return kernels


def _kernel(name: str) -> Any:
    """Return one of this module's compiled loops, compiling all of them on first use."""
    helpers = {"_side": _side_py, "_case_nb": _case, "_neighbour": _neighbour_py}
    loops = {
        "min_distance": _min_distance_py,
        "march": _march_py,
        "follow": _follow_py,
        "collinear": _collinear_py,
    }
    return (_KERNELS or compiled_loops(_KERNELS, globals(), helpers, loops))[name]


def _min_distance_py(
    x0: float,
    y0: float,
    cell: float,
    reach: float,
    seg: FloatArray,
    out: npt.NDArray[np.floating],
) -> None:  # pragma: no cover - compiled by numba below
    """Lower `out` to the distance from each lattice point to the nearest of `seg`.

    `out[j, i]` is the point ``(x0 + i cell, y0 + j cell)``; only points
    closer than `reach` to a segment are touched. `seg` is ``(k, 2, 2)``.
    """
    ny, nx = out.shape
    r2 = reach * reach
    for k in range(seg.shape[0]):
        ax, ay = seg[k, 0, 0], seg[k, 0, 1]
        dx, dy = seg[k, 1, 0] - ax, seg[k, 1, 1] - ay
        l2 = dx * dx + dy * dy
        i_lo = max(math.ceil((min(ax, ax + dx) - reach - x0) / cell), 0)
        i_hi = min(math.floor((max(ax, ax + dx) + reach - x0) / cell), nx - 1)
        j_lo = max(math.ceil((min(ay, ay + dy) - reach - y0) / cell), 0)
        j_hi = min(math.floor((max(ay, ay + dy) + reach - y0) / cell), ny - 1)
        for j in range(j_lo, j_hi + 1):
            py = y0 + j * cell - ay
            for i in range(i_lo, i_hi + 1):
                px = x0 + i * cell - ax
                t = 0.0
                if l2 > 0.0:
                    t = min(max((px * dx + py * dy) / l2, 0.0), 1.0)
                ex = px - t * dx
                ey = py - t * dy
                d2 = ex * ex + ey * ey
                if d2 < r2:
                    d = math.sqrt(d2)
                    if d < out[j, i]:
                        out[j, i] = d


@dataclass
class Field:
    """Distances on a window of the global lattice.

    ``data[j, i]`` is the distance at ``((i0 + i) x cell_m, (j0 + j) x cell_m)``.
    """

    i0: int
    j0: int
    cell_m: float
    data: npt.NDArray[np.floating]


def empty_field(
    bounds: tuple[float, float, float, float],
    *,
    cell_m: float,
    reach_m: float,
    dtype: type[np.floating] = np.float64,
) -> Field:
    """Return a field covering `bounds` plus `reach_m`, every point at `reach_m` (far).

    Examples
    --------
    >>> f = empty_field((0.0, 0.0, 10.0, 4.0), cell_m=5.0, reach_m=5.0)
    >>> f.i0, f.j0, f.data.shape
    (-1, -1, (4, 5))
    """
    minx, miny, maxx, maxy = bounds
    i0 = math.floor((minx - reach_m) / cell_m)
    j0 = math.floor((miny - reach_m) / cell_m)
    nx = math.ceil((maxx + reach_m) / cell_m) - i0 + 1
    ny = math.ceil((maxy + reach_m) / cell_m) - j0 + 1
    return Field(i0, j0, cell_m, np.full((ny, nx), reach_m, dtype=dtype))


def lower_field(field: Field, segs: FloatArray, reach_m: float) -> None:
    """Lower `field` in place to the distance to the segments `segs` (``(k, 2, 2)``)."""
    if len(segs) == 0:
        return
    seg = np.ascontiguousarray(segs, dtype=np.float64)
    x0, y0 = field.i0 * field.cell_m, field.j0 * field.cell_m
    _kernel("min_distance")(x0, y0, field.cell_m, reach_m, seg, field.data)


def segment_field(segs: FloatArray, *, cell_m: float, reach_m: float) -> Field:
    """Return the distance to the nearest of `segs` on the lattice around them.

    Exact point-to-segment distances where below `reach_m`, `reach_m` elsewhere.

    Examples
    --------
    >>> f = segment_field(np.array([[[0.0, 0.0], [10.0, 0.0]]]), cell_m=5.0, reach_m=7.0)
    >>> f.data[f.data.shape[0] // 2].tolist()  # the row y = 0, x = -10, -5, ..., 20
    [7.0, 5.0, 0.0, 0.0, 0.0, 5.0, 7.0]
    >>> float(f.data[1, 2])  # (0, -5)
    5.0
    """
    xy = np.asarray(segs, dtype=np.float64).reshape(-1, 2)
    bounds = (xy[:, 0].min(), xy[:, 1].min(), xy[:, 0].max(), xy[:, 1].max())
    field = empty_field(bounds, cell_m=cell_m, reach_m=reach_m)
    lower_field(field, segs, reach_m)
    return field


def add_field(into: Field, part: Field) -> None:
    """Lower `into` to the minimum of itself and `part` where they overlap (a union)."""
    ny, nx = part.data.shape
    di, dj = part.i0 - into.i0, part.j0 - into.j0
    i_lo, j_lo = max(di, 0), max(dj, 0)
    i_hi = min(di + nx, into.data.shape[1])
    j_hi = min(dj + ny, into.data.shape[0])
    if i_lo >= i_hi or j_lo >= j_hi:
        return
    window = into.data[j_lo:j_hi, i_lo:i_hi]
    np.minimum(window, part.data[j_lo - dj : j_hi - dj, i_lo - di : i_hi - di], out=window)


def field_polygon(field: Field, level_m: float) -> shapely.Geometry:
    """Return the region where the field is at most `level_m`, as a (multi)polygon.

    Marching squares with linear interpolation along the cell sides
    (:func:`contour_polygon`); an empty field gives an empty polygon.

    Examples
    --------
    >>> f = segment_field(np.array([[[0.0, 0.0], [100.0, 0.0]]]), cell_m=2.0, reach_m=14.0)
    >>> round(field_polygon(f, 10.0).area / (200 * 10 + math.pi * 100), 3)  # the capsule
    0.999
    """
    return contour_polygon([field], level_m)


BLOCK_CELLS = 1024
FAR_UNITS = 65_000


@dataclass
class TiledField:
    """A field over a whole area, kept in square blocks allocated where something was added.

    Block ``(bi, bj)`` holds the lattice points ``bi x B .. bi x B + B`` by
    ``bj x B .. bj x B + B`` (``B`` = :data:`BLOCK_CELLS`; neighbouring blocks
    share their border line), as unsigned 16-bit distances in units of
    ``reach_m / FAR_UNITS`` (half a millimetre at the default 35 m): a city's
    layer fits in memory, and a missing block is far everywhere.
    """

    cell_m: float
    reach_m: float
    blocks: dict[tuple[int, int], npt.NDArray[np.uint16]]

    @property
    def units_per_m(self) -> float:
        """Stored units per metre."""
        return FAR_UNITS / self.reach_m


def tiled_field(*, cell_m: float, reach_m: float) -> TiledField:
    """Return an empty (everywhere far) tiled field."""
    return TiledField(cell_m, reach_m, {})


def _block_range(lo: int, hi: int) -> range:
    """Blocks whose lattice span ``[b B, b B + B]`` meets ``[lo, hi]``."""
    return range(-((BLOCK_CELLS - lo) // BLOCK_CELLS), hi // BLOCK_CELLS + 1)


def _block(tiled: TiledField, key: tuple[int, int]) -> npt.NDArray[np.uint16]:
    block = tiled.blocks.get(key)
    if block is None:
        block = np.full((BLOCK_CELLS + 1, BLOCK_CELLS + 1), FAR_UNITS, dtype=np.uint16)
        tiled.blocks[key] = block
    return block


def tiled_add(tiled: TiledField, part: Field) -> None:
    """Lower `tiled` to the minimum of itself and `part` (a union), creating blocks as needed."""
    ny, nx = part.data.shape
    units = np.minimum(np.rint(part.data * tiled.units_per_m), FAR_UNITS).astype(np.uint16)
    for bj in _block_range(part.j0, part.j0 + ny - 1):
        for bi in _block_range(part.i0, part.i0 + nx - 1):
            i_lo = max(part.i0, bi * BLOCK_CELLS)
            i_hi = min(part.i0 + nx, bi * BLOCK_CELLS + BLOCK_CELLS + 1)
            j_lo = max(part.j0, bj * BLOCK_CELLS)
            j_hi = min(part.j0 + ny, bj * BLOCK_CELLS + BLOCK_CELLS + 1)
            src = units[j_lo - part.j0 : j_hi - part.j0, i_lo - part.i0 : i_hi - part.i0]
            if int(src.min()) >= FAR_UNITS:
                continue
            block = _block(tiled, (bi, bj))
            dst = block[
                j_lo - bj * BLOCK_CELLS : j_hi - bj * BLOCK_CELLS,
                i_lo - bi * BLOCK_CELLS : i_hi - bi * BLOCK_CELLS,
            ]
            np.minimum(dst, src, out=dst)


def tiled_intersect(into: TiledField, other: TiledField) -> TiledField:
    """Raise `into` to the maximum of itself and `other` (an intersection); return `into`."""
    for key in list(into.blocks):
        if key in other.blocks:
            np.maximum(into.blocks[key], other.blocks[key], out=into.blocks[key])
        else:
            del into.blocks[key]
    return into


def block_field(tiled: TiledField, key: tuple[int, int]) -> Field:
    """Return one block as a :class:`Field` of metres."""
    bi, bj = key
    data = tiled.blocks[key].astype(np.float64) / tiled.units_per_m
    return Field(bi * BLOCK_CELLS, bj * BLOCK_CELLS, tiled.cell_m, data)


def tiled_lower_segments(tiled: TiledField, segs: FloatArray) -> None:
    """Lower `tiled` to the distance to `segs` (``(k, 2, 2)``), creating blocks as needed."""
    if len(segs) == 0:
        return
    seg = np.ascontiguousarray(segs, dtype=np.float64)
    lo = np.ceil((np.minimum(seg[:, 0], seg[:, 1]) - tiled.reach_m) / tiled.cell_m)
    hi = np.floor((np.maximum(seg[:, 0], seg[:, 1]) + tiled.reach_m) / tiled.cell_m)
    b_lo = -((BLOCK_CELLS - lo.astype(np.int64)) // BLOCK_CELLS)  # as _block_range
    b_hi = hi.astype(np.int64) // BLOCK_CELLS
    n_i, n_j = b_hi[:, 0] - b_lo[:, 0] + 1, b_hi[:, 1] - b_lo[:, 1] + 1
    which = np.repeat(np.arange(len(seg)), n_i * n_j)
    k = np.arange(len(which)) - np.repeat(np.cumsum(n_i * n_j) - n_i * n_j, n_i * n_j)
    bi = b_lo[which, 0] + k % n_i[which]
    bj = b_lo[which, 1] + k // n_i[which]
    order = np.lexsort((bj, bi))
    keys, starts = np.unique(np.column_stack([bi, bj])[order], axis=0, return_index=True)
    for key, members in zip(keys, np.split(which[order], starts[1:]), strict=True):
        block = _block(tiled, (int(key[0]), int(key[1])))
        f = block_field(tiled, (int(key[0]), int(key[1])))
        lower_field(f, seg[members], tiled.reach_m)
        np.minimum(block, np.rint(f.data * tiled.units_per_m).astype(np.uint16), out=block)


def tiled_polygon(tiled: TiledField, level_m: float) -> shapely.Geometry:
    """Return the region ``<= level_m`` of a whole tiled field as one (multi)polygon.

    The blocks are contoured one by one and their rings joined across the
    block lines (:func:`contour_polygon`); no polygon overlay runs.
    """
    keys = [k for k in sorted(tiled.blocks) if tiled.blocks[k].min() <= level_m * tiled.units_per_m]
    return contour_polygon((block_field(tiled, k) for k in keys), level_m)  # one at a time


# ----------------------------------------------------------------- contouring
# Marching squares on the lattice: every cell with corners on both sides of the
# level emits one segment (two for a saddle), directed with the region on its
# left, from the crossing on one cell side to the crossing on another. A
# crossing is identified by its cell side on the global lattice, so the
# segments of neighbouring blocks join exactly, and rings are followed by
# matching each segment's end to the next segment's start.

_EDGE_OFFSET = 1 << 29  # lattice indices within +-2^29 cells: 107,000 km at 0.2 m
_EDGE_WIDTH = 1 << 30
_T_MIN = 1e-7  # a crossing never sits exactly on a lattice point (rings never touch)
COLLINEAR_M = 1e-6  # ring vertices this close to their neighbours' line are dropped

# per case (bit 1: corner (i, j), 2: (i+1, j), 4: (i+1, j+1), 8: (i, j+1) inside), the
# sides (0 bottom, 1 right, 2 top, 3 left) each segment runs from and to; saddles
# (5, 10) list the centre-inside pair first and the centre-outside pair second
_SEGMENTS = np.array(
    [
        [-1, -1, -1, -1],
        [0, 3, -1, -1],
        [1, 0, -1, -1],
        [1, 3, -1, -1],
        [2, 1, -1, -1],
        [0, 1, 2, 3],  # centre inside; outside: (0, 3), (2, 1)
        [2, 0, -1, -1],
        [2, 3, -1, -1],
        [3, 2, -1, -1],
        [0, 2, -1, -1],
        [3, 0, 1, 2],  # centre inside; outside: (1, 0), (3, 2)
        [1, 2, -1, -1],
        [3, 1, -1, -1],
        [0, 1, -1, -1],
        [3, 0, -1, -1],
        [-1, -1, -1, -1],
    ],
    dtype=np.int64,
)
_SADDLE_OUT = np.array([[0, 3, 2, 1], [1, 0, 3, 2]], dtype=np.int64)


def _side_py(
    side: int, z4: tuple[float, float, float, float], level: float, gi: int, gj: int, cell: float
) -> tuple[int, float, float]:  # pragma: no cover - compiled by numba below
    """Global id and point of the crossing on one side of cell ``(gi, gj)``."""
    za, zb, zc, zd = z4
    if side == 0:
        t, hv, ei, ej, dx, dy = (level - za) / (zb - za), 0, gi, gj, 1.0, 0.0
    elif side == 1:
        t, hv, ei, ej, dx, dy = (level - zb) / (zc - zb), 1, gi + 1, gj, 0.0, 1.0
    elif side == 2:
        t, hv, ei, ej, dx, dy = (level - zd) / (zc - zd), 0, gi, gj + 1, 1.0, 0.0
    else:
        t, hv, ei, ej, dx, dy = (level - za) / (zd - za), 1, gi, gj, 0.0, 1.0
    t = min(max(t, _T_MIN), 1.0 - _T_MIN)
    eid = ((ej + _EDGE_OFFSET) * _EDGE_WIDTH + (ei + _EDGE_OFFSET)) * 2 + hv
    return eid, (ei + t * dx) * cell, (ej + t * dy) * cell


_side: Any = _side_py  # replaced by the compiled helper in _kernel


def _case(za: float, zb: float, zc: float, zd: float, level: float) -> int:  # pragma: no cover
    return int(za <= level) + 2 * int(zb <= level) + 4 * int(zc <= level) + 8 * int(zd <= level)


_case_nb: Any = _case  # replaced by the compiled helper in _kernel


def _march_py(
    z: FloatArray,
    level: float,
    i0: int,
    j0: int,
    cell: float,
    table: npt.NDArray[np.int64],
    saddle_out: npt.NDArray[np.int64],
) -> tuple[IntArray, IntArray, FloatArray, IntArray, npt.NDArray[np.bool_]]:  # pragma: no cover
    """Directed contour segments of `z` at `level`.

    Returns each segment's start and end side (global ids), start point, its
    successor in this window (-1 when it leaves through the border), and
    whether it starts on the border (where a neighbouring window's segment ends).
    """
    ny, nx = z.shape
    n = 0
    for j in range(ny - 1):
        for i in range(nx - 1):
            c = _case_nb(z[j, i], z[j, i + 1], z[j + 1, i + 1], z[j + 1, i], level)
            n += 2 if c in (5, 10) else int(c not in (0, 15))
    start = np.empty(n, dtype=np.int64)
    end = np.empty(n, dtype=np.int64)
    xy = np.empty((n, 2), dtype=np.float64)
    side_of = np.empty((n, 2), dtype=np.int64)  # start side, end side (0-3)
    cell_of = np.empty(n, dtype=np.int64)
    first = np.empty((ny - 1) * (nx - 1), dtype=np.int64)  # read only where written
    border = np.zeros(n, dtype=np.bool_)
    k = 0
    for j in range(ny - 1):
        for i in range(nx - 1):
            z4 = (z[j, i], z[j, i + 1], z[j + 1, i + 1], z[j + 1, i])
            c = _case_nb(z4[0], z4[1], z4[2], z4[3], level)
            if c == 0 or c == 15:
                continue
            sides = table[c]
            if c in (5, 10) and (z4[0] + z4[1] + z4[2] + z4[3]) / 4.0 > level:
                sides = saddle_out[0] if c == 5 else saddle_out[1]
            first[j * (nx - 1) + i] = k
            for s in range(0, 4, 2):
                if sides[s] < 0:
                    break
                start[k], xy[k, 0], xy[k, 1] = _side(sides[s], z4, level, i0 + i, j0 + j, cell)
                end[k] = _side(sides[s + 1], z4, level, i0 + i, j0 + j, cell)[0]
                side_of[k, 0] = sides[s]
                side_of[k, 1] = sides[s + 1]
                cell_of[k] = j * (nx - 1) + i
                border[k] = _neighbour(sides[s], i, j, nx, ny) < 0
                k += 1
    nxt = np.full(n, -1, dtype=np.int64)
    for k in range(n):
        nb = _neighbour(side_of[k, 1], cell_of[k] % (nx - 1), cell_of[k] // (nx - 1), nx, ny)
        if nb < 0:
            continue
        f = first[nb]  # the neighbour's segment that starts on this side
        nxt[k] = f if side_of[f, 0] == (side_of[k, 1] + 2) % 4 else f + 1
    return start, end, xy, nxt, border


def _neighbour_py(side: int, i: int, j: int, nx: int, ny: int) -> int:  # pragma: no cover
    """Return the cell across `side` of cell ``(i, j)`` (-1 outside the window)."""
    if side == 0:
        j -= 1
    elif side == 1:
        i += 1
    elif side == 2:
        j += 1
    else:
        i -= 1
    if i < 0 or j < 0 or i >= nx - 1 or j >= ny - 1:
        return -1
    return j * (nx - 1) + i


IntArray = npt.NDArray[np.int64]


_neighbour: Any = _neighbour_py  # replaced by the compiled helper in _kernel


def _follow_py(nxt: IntArray) -> tuple[IntArray, IntArray]:  # pragma: no cover
    """Segments in ring order, and the ring of each (each segment's successor is `nxt`)."""
    n = nxt.size
    seen = np.zeros(n, dtype=np.bool_)
    seq = np.empty(n, dtype=np.int64)
    ring = np.empty(n, dtype=np.int64)
    k = 0
    r = 0
    for s in range(n):
        if seen[s]:
            continue
        cur = s
        while not seen[cur]:
            seen[cur] = True
            seq[k] = cur
            ring[k] = r
            k += 1
            cur = nxt[cur]
        r += 1
    return seq, ring


Marched = tuple[IntArray, IntArray, FloatArray, IntArray, npt.NDArray[np.bool_]]


def _march_field(f: Field, level_m: float) -> Marched:
    z = np.ascontiguousarray(f.data, dtype=np.float64)
    out: Marched = _kernel("march")(z, level_m, f.i0, f.j0, f.cell_m, _SEGMENTS, _SADDLE_OUT)
    return out


def _segments(fields: Iterable[Field], level_m: float) -> tuple[IntArray, FloatArray]:
    """Contour segments of windows of the lattice: each one's successor and start point.

    Windows are marched on two threads (the compiled loop releases the GIL),
    taken in order; segments leaving a window are joined to the neighbour's.
    """
    nxts, points, loose = [], [], []
    offset = 0

    def _take(marched: Marched) -> None:
        nonlocal offset
        start, end, xy, nxt, on_border = marched
        out = nxt < 0  # leaves through the window's border: joined below
        loose.append((start[on_border], np.flatnonzero(on_border) + offset, end[out]))
        nxt[~out] += offset
        nxts.append(nxt)
        points.append(xy)
        offset += len(nxt)

    if isinstance(fields, list) and len(fields) == 1:  # one window (a facility): no pool
        if min(fields[0].data.shape) >= 2:
            _take(_march_field(fields[0], level_m))
        fields = []
    pending: deque[Future[Marched]] = deque()
    with ThreadPoolExecutor(max_workers=2) as pool:  # a few windows in flight, in order
        for f in fields:
            if min(f.data.shape) >= 2:
                pending.append(pool.submit(_march_field, f, level_m))
            while len(pending) > 2:
                _take(pending.popleft().result())
        while pending:
            _take(pending.popleft().result())
    if not nxts:
        return np.zeros(0, np.int64), np.zeros((0, 2))
    nxt_all = np.concatenate(nxts)
    starts = np.concatenate([s for s, _, _ in loose])
    owners = np.concatenate([o for _, o, _ in loose])
    ends = np.concatenate([e for _, _, e in loose])
    order = np.argsort(starts)
    pos = np.searchsorted(starts[order], ends)
    if (pos >= len(starts)).any() or (
        starts[order][np.minimum(pos, len(starts) - 1)] != ends
    ).any():
        msg = "a contour ring does not close: a field is below the level on its outer border"
        raise ValueError(msg)
    nxt_all[nxt_all < 0] = owners[order[pos]]
    return nxt_all, np.concatenate(points)


def contour_polygon(fields: Iterable[Field], level_m: float) -> shapely.Geometry:
    """Return the region where the fields are at most `level_m` as one (multi)polygon.

    The fields are windows of the global lattice that do not overlap in
    cells (e.g. the blocks of a :class:`TiledField`, which share only their
    border lines); the union of the windows must be above the level along
    its outer border. Rings are marching-squares contours (linear
    interpolation along the cell sides), directed with the region on their
    left: anticlockwise rings are shells, clockwise rings holes, each hole
    in the smallest shell around it. Rings never touch, so the result is
    valid by construction.
    """
    nxt, xy = _segments(fields, level_m)
    if len(nxt) == 0:
        return shapely.Polygon()
    seq, ring = _kernel("follow")(nxt)
    del nxt
    coords = xy[seq]
    del xy, seq
    # along a straight street the contour crosses every cell side on the same offset
    # line (60% of a facility polygon's vertices): those go (they are within a micrometre)
    first = np.flatnonzero(np.r_[True, ring[1:] != ring[:-1]])
    keep = ~_kernel("collinear")(coords, first, COLLINEAR_M)
    coords, ring = coords[keep], ring[keep]
    first = np.flatnonzero(np.r_[True, ring[1:] != ring[:-1]])
    rings = np.asarray(shapely.linearrings(coords, indices=ring), dtype=object)
    del ring
    return _assemble(rings, np.asarray(shapely.is_ccw(rings), dtype=bool), coords[first])


def _collinear_py(
    coords: FloatArray, first: IntArray, eps: float
) -> npt.NDArray[np.bool_]:  # pragma: no cover
    """Mark ring vertices within `eps` of the line from the last kept vertex to the next.

    Rings are consecutive runs of `coords` starting at `first`; each ring's
    first vertex is kept, and a ring keeps all its vertices if fewer than 3
    would remain.
    """
    n = coords.shape[0]
    drop = np.zeros(n, dtype=np.bool_)
    for r in range(first.size):
        lo = first[r]
        hi = first[r + 1] if r + 1 < first.size else n
        x0, y0 = coords[lo, 0], coords[lo, 1]
        kept = lo
        count = 1
        for v in range(lo + 1, hi):
            w = v + 1 if v + 1 < hi else lo
            ax, ay = coords[kept, 0] - x0, coords[kept, 1] - y0
            dx, dy = coords[w, 0] - x0 - ax, coords[w, 1] - y0 - ay
            length = math.sqrt(dx * dx + dy * dy)
            off = abs(dx * (coords[v, 1] - y0 - ay) - dy * (coords[v, 0] - x0 - ax))
            if length > 1e-9 and off < eps * length:
                drop[v] = True
            else:
                kept = v
                count += 1
        if count < 3:
            drop[lo:hi] = False
    return drop


def _hole_parents(
    shells: npt.NDArray[np.object_], area: FloatArray, points: FloatArray
) -> IntArray:
    """Return the smallest shell around each hole's point (-1 if none): boxes, then exact."""
    pts = np.asarray(shapely.points(points), dtype=object)
    tree = shapely.STRtree(shells)
    h, s = tree.query(pts)  # boxes
    many = np.bincount(h, minlength=len(pts)) > 1
    sure = ~many[h]
    h2, s2 = tree.query(pts[many], predicate="within")
    h = np.concatenate([h[sure], np.flatnonzero(many)[h2]])
    s = np.concatenate([s[sure], s2])
    best = np.lexsort((area[s], h))  # smallest shell first for each hole
    h, s = h[best], s[best]
    one = np.r_[True, h[1:] != h[:-1]] if len(h) else np.zeros(0, dtype=bool)
    parent = np.full(len(pts), -1, dtype=np.int64)
    parent[h[one]] = s[one]
    return parent


def _assemble(
    rings: npt.NDArray[np.object_], ccw: npt.NDArray[np.bool_], first_point: FloatArray
) -> shapely.Geometry:
    """Polygons from directed rings: shells (anticlockwise) with the holes they hold."""
    shell = np.flatnonzero(ccw)
    hole = np.flatnonzero(~ccw)
    if len(shell) == 0:
        return shapely.Polygon()
    shells = np.asarray(shapely.polygons(rings[shell]), dtype=object)
    parent = np.full(len(rings), -1, dtype=np.int64)
    parent[shell] = np.arange(len(shell))
    if len(hole) and len(shell) == 1:
        parent[hole] = 0
    elif len(hole):
        area = np.asarray(shapely.area(shells), dtype=np.float64)
        parent[hole] = _hole_parents(shells, area, first_point[hole])
    keep = np.flatnonzero(parent >= 0)
    order = keep[np.lexsort((~ccw[keep], parent[keep]))]
    polys = np.asarray(shapely.polygons(rings[order], indices=parent[order]), dtype=object)
    return cast(shapely.Geometry, polys[0] if len(polys) == 1 else shapely.multipolygons(polys))
