"""Distance fields and their contours, against shapely's own distances and buffers."""

from __future__ import annotations

import math
import warnings
from typing import Any

import numpy as np
import pytest
import shapely

from lifecircle import fields
from lifecircle.fields import (
    add_field,
    block_field,
    empty_field,
    field_polygon,
    segment_field,
    tiled_add,
    tiled_field,
    tiled_intersect,
    tiled_lower_segments,
    tiled_polygon,
)
from lifecircle.isochrones import overlap_ratio


def _lattice_points(f) -> np.ndarray:  # type: ignore[no-untyped-def]
    ny, nx = f.data.shape
    xs = (f.i0 + np.arange(nx)) * f.cell_m
    ys = (f.j0 + np.arange(ny)) * f.cell_m
    return shapely.points(*np.meshgrid(xs, ys))  # type: ignore[no-any-return]


def test_field_is_shapelys_distance_to_the_nearest_segment() -> None:
    rng = np.random.default_rng(3)
    start = rng.uniform(0, 300, (40, 2)) + 683_000.0  # UTM-sized coordinates
    segs = np.stack([start, start + rng.uniform(-40, 40, (40, 2))], axis=1)
    segs[5, 1] = segs[5, 0]  # a zero-length piece counts as its point
    f = segment_field(segs, cell_m=5.0, reach_m=35.0)
    truth = shapely.distance(
        _lattice_points(f), shapely.multilinestrings(shapely.linestrings(segs))
    )
    near = truth < 35.0
    assert near.sum() > 2_000
    np.testing.assert_allclose(f.data[near], truth[near], atol=1e-6)
    assert (f.data[~near] == 35.0).all()  # farther points keep the reach


def test_capsule_contour_has_the_buffer_area() -> None:
    f = segment_field(np.array([[[10.0, 3.0], [410.0, 303.0]]]), cell_m=5.0, reach_m=35.0)
    poly = field_polygon(f, 25.0)
    exact = shapely.LineString([(10, 3), (410, 303)]).buffer(25, quad_segs=64)
    assert poly.area == pytest.approx(500 * 50 + math.pi * 25**2, rel=3e-3)
    assert overlap_ratio(poly, exact) > 0.996


def test_a_block_of_streets_leaves_its_shrunken_interior_as_a_hole() -> None:
    # a 200 m square of streets, buffered by 25 m: a 250 m square with rounded corners
    # minus a 150 m square hole
    c = np.array([(0, 0), (200, 0), (200, 200), (0, 200), (0, 0)], dtype=float) + 7.3
    segs = np.stack([c[:-1], c[1:]], axis=1)
    poly = field_polygon(segment_field(segs, cell_m=5.0, reach_m=35.0), 25.0)
    assert poly.geom_type == "Polygon"
    assert len(poly.interiors) == 1
    area = 250**2 - (4 - math.pi) * 25**2 - 150**2
    assert poly.area == pytest.approx(area, rel=3e-3)
    assert shapely.Polygon(poly.interiors[0]).area == pytest.approx(150**2, rel=5e-3)
    assert poly.is_valid


def test_adding_fields_is_the_field_of_all_segments() -> None:
    rng = np.random.default_rng(8)
    a = rng.uniform(0, 500, (30, 2, 2))
    b = rng.uniform(300, 900, (30, 2, 2))
    whole = segment_field(np.concatenate([a, b]), cell_m=5.0, reach_m=35.0)
    canvas = empty_field((0.0, 0.0, 900.0, 900.0), cell_m=5.0, reach_m=35.0, dtype=np.float32)
    add_field(canvas, segment_field(a, cell_m=5.0, reach_m=35.0))
    add_field(canvas, segment_field(b, cell_m=5.0, reach_m=35.0))
    dj, di = whole.j0 - canvas.j0, whole.i0 - canvas.i0
    ny, nx = whole.data.shape
    np.testing.assert_allclose(canvas.data[dj : dj + ny, di : di + nx], whole.data, atol=1e-4)


def test_an_empty_field_has_no_polygon() -> None:
    f = empty_field((0.0, 0.0, 100.0, 100.0), cell_m=5.0, reach_m=35.0)
    assert field_polygon(f, 25.0).is_empty


def _dense(tiled, box: tuple[int, int, int, int]) -> np.ndarray:  # type: ignore[no-untyped-def]
    """The tiled field on lattice columns i0..i1 and rows j0..j1, in metres (far = reach)."""
    i0, j0, i1, j1 = box
    out = np.full((j1 - j0 + 1, i1 - i0 + 1), tiled.reach_m)
    for key in tiled.blocks:
        f = block_field(tiled, key)
        ny, nx = f.data.shape
        a, b = max(i0, f.i0), min(i1 + 1, f.i0 + nx)
        c, d = max(j0, f.j0), min(j1 + 1, f.j0 + ny)
        if a < b and c < d:
            out[c - j0 : d - j0, a - i0 : b - i0] = f.data[c - f.j0 : d - f.j0, a - f.i0 : b - f.i0]
    return out


def test_a_tiled_field_across_blocks_equals_the_dense_field() -> None:
    # segments straddling block lines (a block is 1,024 cells = 5,120 m at 5 m), both signs
    rng = np.random.default_rng(11)
    start = rng.uniform(-6_000, 6_000, (60, 2))
    segs = np.stack([start, start + rng.uniform(-300, 300, (60, 2))], axis=1)
    dense = segment_field(segs, cell_m=5.0, reach_m=35.0)
    tiled = tiled_field(cell_m=5.0, reach_m=35.0)
    for part in np.array_split(segs, 7):
        tiled_add(tiled, segment_field(part, cell_m=5.0, reach_m=35.0))
    ny, nx = dense.data.shape
    got = _dense(tiled, (dense.i0, dense.j0, dense.i0 + nx - 1, dense.j0 + ny - 1))
    np.testing.assert_allclose(got, dense.data, atol=1e-3)  # stored to half a millimetre
    # lowering by segments directly gives the same field
    direct = tiled_field(cell_m=5.0, reach_m=35.0)
    tiled_lower_segments(direct, segs)
    got2 = _dense(direct, (dense.i0, dense.j0, dense.i0 + nx - 1, dense.j0 + ny - 1))
    np.testing.assert_allclose(got2, dense.data, atol=1e-3)
    # the blocks' rings joined across the block lines are the dense contour
    assert len(tiled.blocks) > 4
    joined = tiled_polygon(tiled, 25.0)
    whole = field_polygon(dense, 25.0)
    assert joined.is_valid
    assert shapely.get_num_geometries(joined) == shapely.get_num_geometries(whole)
    assert joined.area == pytest.approx(whole.area, rel=1e-6)
    assert overlap_ratio(joined, whole) > 0.99999  # stored to half a millimetre


def test_intersecting_tiled_fields_keeps_where_both_reach() -> None:
    a = tiled_field(cell_m=5.0, reach_m=35.0)
    b = tiled_field(cell_m=5.0, reach_m=35.0)
    tiled_lower_segments(a, np.array([[[0.0, 0.0], [1000.0, 0.0]]]))
    tiled_lower_segments(b, np.array([[[600.0, 0.0], [9000.0, 0.0]]]))
    both = tiled_intersect(a, b)
    assert sorted(both.blocks) == [(0, -1), (0, 0)]  # y = 0 is a block line; b has no x < 0
    poly = tiled_polygon(both, 25.0)
    exact = shapely.LineString([(600, 0), (1000, 0)]).buffer(25, quad_segs=64)
    assert overlap_ratio(poly, exact) > 0.995


def test_straight_runs_keep_only_their_ends_and_round_caps_keep_their_shape() -> None:
    # a 1 km street at 25 m: the two long sides are straight, so their 200 lattice crossings
    # each go; the round caps (and a corner where two crossings nearly coincide) stay
    f = segment_field(np.array([[[3.0, 1.0], [1003.0, 1.0]]]), cell_m=5.0, reach_m=35.0)
    poly = field_polygon(f, 25.0)
    assert shapely.get_num_coordinates(poly) < 60
    assert poly.area == pytest.approx(1000 * 50 + math.pi * 25**2, rel=2e-3)
    exact = shapely.LineString([(3, 1), (1003, 1)]).buffer(25, quad_segs=64)
    assert overlap_ratio(poly, exact) > 0.998
    # the same for a diagonal street: crossings of the lattice lie on the offset line too
    g = segment_field(np.array([[[0.0, 0.0], [600.0, 800.0]]]), cell_m=5.0, reach_m=35.0)
    diag = field_polygon(g, 25.0)
    assert shapely.get_num_coordinates(diag) < 80
    exact = shapely.LineString([(0, 0), (600, 800)]).buffer(25, quad_segs=64)
    assert overlap_ratio(diag, exact) > 0.998


def test_without_a_numba_cache_folder_loops_are_compiled_in_memory_with_one_warning(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # numba refuses cache=True when no cache folder is writable (a read-only install with an
    # unwritable NUMBA_CACHE_DIR): reproduce its error, the rest is numba's own compiler
    import numba

    real = numba.njit

    def njit(*args: Any, **kwargs: Any) -> Any:
        if kwargs.get("cache"):
            msg = "cannot cache function 'f': no locator available for file '/ro/f.py'"
            raise RuntimeError(msg)
        return real(*args, **kwargs)

    monkeypatch.setattr(numba, "njit", njit)
    monkeypatch.setattr(fields, "_COMPILED", {})

    def twice(x: float) -> float:
        return 2.0 * x

    def thrice(x: float) -> float:
        return 3.0 * x

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert fields.compiled(twice)(4.0) == 8.0
        assert fields.compiled(thrice)(4.0) == 12.0
    said = [w for w in caught if "NUMBA_CACHE_DIR" in str(w.message)]
    assert len(said) == 1  # once per run, not once per loop
    assert said[0].category is RuntimeWarning
