from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from matplotlib.lines import Line2D

from lifecircle import charts
from lifecircle.coverage import Target
from lifecircle.i18n import category_label
from lifecircle.pipeline import CoverageOptions, GapOptions, run_gaps, scenario_area
from lifecircle.plot import cjk_font, plot_coverage_small_multiples
from lifecircle.prepare import AreaRequest, prepare_area
from tests.conftest import DATA_DIR, _session_cache, care_home

CATS = ("school", "health", "elderly_care", "culture")


REQ = AreaRequest(district="pudong", offline=True)


@pytest.fixture(scope="module")
def prepared(tmp_path_factory: pytest.TempPathFactory, data_dir: Path):  # type: ignore[no-untyped-def]
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("LIFECIRCLE_DATA_DIR", str(DATA_DIR))
        mp.setenv("LIFECIRCLE_CACHE_DIR", str(_session_cache(tmp_path_factory)))
        return scenario_area(prepare_area(REQ), add=care_home())  # Lujiazui maps no care home


@pytest.fixture(scope="module")
def gap_run(tmp_path_factory: pytest.TempPathFactory, prepared):  # type: ignore[no-untyped-def]
    options = CoverageOptions(ring_edges_km=(0, 0.5, 1, 1.5, 2, 3))
    out = tmp_path_factory.mktemp("charts")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("LIFECIRCLE_DATA_DIR", str(DATA_DIR))
        mp.setenv("LIFECIRCLE_CACHE_DIR", str(_session_cache(tmp_path_factory)))
        return run_gaps(REQ, options, GapOptions(pdf=False), out_dir=out, prepared=prepared)


def _shares_within(res: pd.DataFrame, limit_m: float) -> dict[str, float]:
    """Weighted share of residents whose distance to each category is <= limit (by hand)."""
    w = res["weight"].to_numpy(dtype=float)
    ok = res["status"].to_numpy() == "ok"
    out, all_ok = {}, ok.copy()
    for cat in CATS:
        d = res[f"dist_{cat}_m"].to_numpy(dtype=float)
        met = ok & (np.nan_to_num(d, nan=np.inf) <= limit_m)
        out[cat] = w[met].sum() / w.sum()
        all_ok &= met
    out["all_categories"] = w[all_ok].sum() / w.sum()
    return out


def test_curve_at_15_minutes_equals_the_coverage(gap_run) -> None:  # type: ignore[no-untyped-def]
    res = gap_run.residents
    cov = gap_run.summary["coverage"]
    curve = charts.accessibility_curve(res, charts.targets_from_summary(cov))
    expected = _shares_within(res, 1000.0)  # 15 min at 4 km/h
    for cat, share in expected.items():
        assert curve.loc[15.0, cat] == pytest.approx(share, abs=1e-12), cat
        reported = cov["all_categories" if cat == "all_categories" else "categories"]
        reported = reported if cat == "all_categories" else reported[cat]
        assert curve.loc[15.0, cat] == pytest.approx(reported["coverage"], abs=1e-6), cat
    # the real Lujiazui figures (care home added): schools nearly all, health about half
    assert 0.9 < curve.loc[15.0, "school"] < 1.0
    assert 0.3 < curve.loc[15.0, "health"] < 0.7


def test_curve_is_monotone_and_ends_at_the_reachable_share(gap_run) -> None:  # type: ignore[no-untyped-def]
    res = gap_run.residents
    targets = charts.targets_from_summary(gap_run.summary["coverage"])
    curve = charts.accessibility_curve(res, targets)
    assert list(curve.index[:3]) == [0.0, 0.5, 1.0]
    assert curve.index[-1] == 30.0
    assert (np.diff(curve.to_numpy(), axis=0) >= -1e-15).all()
    at_30 = _shares_within(res, 2000.0)  # 30 min at 4 km/h
    for cat, share in at_30.items():
        assert curve.loc[30.0, cat] == pytest.approx(share, abs=1e-12), cat
    # far past the search limit: the share that reaches the category at all
    far = charts.accessibility_curve(res, targets, minutes=[10_000.0])
    w = res["weight"].to_numpy(dtype=float)
    ok = res["status"].to_numpy() == "ok"
    for cat in CATS:
        reach = ok & np.isfinite(res[f"dist_{cat}_m"].to_numpy(dtype=float))
        assert far.iloc[0][cat] == pytest.approx(w[reach].sum() / w.sum(), abs=1e-12)


def test_curve_on_a_hand_solved_toy() -> None:
    # weights 1, 2, 3, 4; distances 0, 500, 1000 m and one unreachable resident
    res = pd.DataFrame(
        {
            "weight": [1.0, 2.0, 3.0, 4.0],
            "status": ["ok", "ok", "ok", "unreachable"],
            "dist_school_m": [0.0, 500.0, 1000.0, 100.0],
        }
    )
    targets = [Target("school", "any", ("*",), 15.0, 4.0, "test")]
    curve = charts.accessibility_curve(res, targets, minutes=[0, 7.0, 7.5, 14.9, 15, 100])
    # 500 m = 7.5 min, 1000 m = 15 min; the unreachable 4 never arrive
    assert curve["school"].tolist() == pytest.approx([0.1, 0.1, 0.3, 0.3, 0.6, 0.6])


def test_unit_chart_bars_follow_the_units_sorted_by_coverage(gap_run) -> None:  # type: ignore[no-untyped-def]
    gaps = json.loads((gap_run.out_dir / "gaps.json").read_text())
    admin = pd.DataFrame(gaps["zones"]["admin"])
    for cat in [*CATS, "all_categories"]:
        rows = [
            r for r in gaps["zones"]["admin"] if r["category"] == cat and r["coverage"] is not None
        ]
        expected = [r["zone"] for r in sorted(rows, key=lambda r: -r["coverage"])]
        _, ax = charts.plot_unit_coverage(admin, cat, target=0.99)
        ticks = sorted(zip(ax.get_yticks(), ax.get_yticklabels(), strict=True), key=lambda t: -t[0])
        assert [label.get_text() for _, label in ticks] == expected
        bars = sorted(ax.patches, key=lambda p: -p.get_y())
        values = {r["zone"]: r["coverage"] * 100 for r in rows}
        assert [b.get_width() for b in bars] == pytest.approx([values[z] for z in expected])
    assert len(expected) >= 2  # 陆家嘴街道 and 潍坊新村街道 hold the extract's residents


def test_unit_chart_sorts_a_toy_table() -> None:
    table = pd.DataFrame(
        {
            "zone": ["a", "b", "c", "d", "e"],
            "category": ["school"] * 5,
            "coverage": [0.5, 0.9, None, 0.1, 0.995],
        }
    )
    assert charts.unit_order(table, "school") == ["e", "b", "a", "d"]
    _, ax = charts.plot_unit_coverage(table, "school", target=0.99, units_without_residents=["c"])
    ticks = sorted(zip(ax.get_yticks(), ax.get_yticklabels(), strict=True), key=lambda t: -t[0])
    top_down = [label.get_text() for _, label in ticks]
    assert top_down == ["e", "b", "a", "d"]
    # only e meets the 99% target: green, the others orange
    colors = [p.get_facecolor()[:3] for p in sorted(ax.patches, key=lambda p: -p.get_y())]
    assert colors[0] != colors[1]
    assert colors[1] == colors[2] == colors[3]


def _target_line(ax) -> Line2D:  # type: ignore[no-untyped-def]
    lines = [ln for ln in ax.get_lines() if str(ln.get_label()).startswith(("target", "目标"))]
    assert len(lines) == 1
    return lines[0]


def test_target_line_and_value_labels(gap_run) -> None:  # type: ignore[no-untyped-def]
    cov = gap_run.summary["coverage"]
    _, ax = charts.plot_coverage_by_category(cov)
    assert list(_target_line(ax).get_ydata()) == [99.0, 99.0]
    shares = [cov["categories"][c]["coverage"] for c in CATS] + [cov["all_categories"]["coverage"]]
    labels = [t.get_text() for t in ax.texts]
    assert labels == [f"{s * 100:.1f}%" for s in shares]
    assert [p.get_height() for p in ax.patches] == pytest.approx([s * 100 for s in shares])
    rings = gap_run.tables["rings"]
    _, ax = charts.plot_ring_gradient(rings, target=0.8)
    assert list(_target_line(ax).get_ydata()) == [80.0, 80.0]
    school = next(ln for ln in ax.get_lines() if ln.get_label() == "School")
    sub = rings.loc[(rings["category"] == "school") & rings["coverage"].notna()]
    mids = sorted(charts.ring_midpoints_km(sub["zone"]))
    assert list(school.get_xdata()) == mids  # ring midpoints, 0.25 km for "0-0.5 km"
    assert mids[0] == 0.25
    _, ax = charts.plot_unit_coverage(gap_run.tables["admin"], "school", target=0.95)
    assert list(_target_line(ax).get_xdata()) == [95.0, 95.0]


def test_curve_chart_marks_the_threshold(gap_run) -> None:  # type: ignore[no-untyped-def]
    cov = gap_run.summary["coverage"]
    curve = charts.accessibility_curve(gap_run.residents, charts.targets_from_summary(cov))
    _, ax = charts.plot_accessibility_curves(curve, threshold_min=15.0)
    vertical = [ln for ln in ax.get_lines() if list(ln.get_xdata()) == [15.0, 15.0]]
    assert len(vertical) == 1
    school = next(ln for ln in ax.get_lines() if str(ln.get_label()).startswith("School"))
    assert school.get_label() == f"School ({curve.loc[15.0, 'school'] * 100:.1f}%)"


def test_chinese_chart_has_chinese_labels_in_a_cjk_font(gap_run) -> None:  # type: ignore[no-untyped-def]
    if cjk_font() is None:
        pytest.skip("no CJK font installed (apt install fonts-noto-cjk)")
    _, ax = charts.plot_coverage_by_category(gap_run.summary["coverage"], lang="zh")
    ticks = [t.get_text() for t in ax.get_xticklabels()]
    assert ticks == ["学校", "医疗卫生", "养老", "文化", "四类设施均可达"]
    assert "CJK" in ax.get_xticklabels()[0].get_fontproperties().get_file()
    assert "居民" in ax.get_title()
    assert "CJK" in ax.title.get_fontproperties().get_file()
    assert _target_line(ax).get_label() == "目标 99%"


def test_gap_run_writes_the_charts_into_the_report(gap_run) -> None:  # type: ignore[no-untyped-def]
    names = {p.name for p in gap_run.files}
    expected = {
        "coverage_by_category.png",
        "accessibility_curves.png",
        "ring_gradient.png",
        *(f"unit_coverage_{c}.png" for c in [*CATS, "all_categories"]),
    }
    assert expected <= names
    html = (gap_run.out_dir / "gaps_report.html").read_text(encoding="utf-8")
    md = (gap_run.out_dir / "gaps_report.md").read_text(encoding="utf-8")
    for name in expected:
        assert (gap_run.out_dir / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert name in md
    # + the 5 gap maps, the tier map and the tier chart
    assert html.count("data:image/png;base64,") == len(expected) + 7


def test_small_multiples_show_each_category_alone(gap_run, prepared) -> None:  # type: ignore[no-untyped-def]
    cov = gap_run.summary["coverage"]
    res = gap_run.residents
    _fig, axes = plot_coverage_small_multiples(prepared, res, None, cov)
    assert axes.shape == (2, 2)
    fac = prepared.facilities
    for ax, cat in zip(axes.flat, CATS, strict=True):
        assert ax.get_title().startswith(f"{category_label(cat)}: ")
        assert f"{cov['categories'][cat]['coverage'] * 100:.1f}%" in ax.get_title()
        # the panel's black dots are exactly the residents this category leaves uncovered,
        # and its triangles exactly this category's facilities
        sizes = {}
        for coll in ax.collections:
            n = len(coll.get_offsets()) if hasattr(coll, "get_offsets") else 0
            face = coll.get_facecolor()
            color = tuple(np.round(face[0][:3], 3)) if len(face) else None
            sizes[color] = sizes.get(color, 0) + n
        left = int((~res[f"covered_{cat}"].to_numpy(dtype=bool)).sum())
        assert sizes.get((0.0, 0.0, 0.0), 0) == left, cat
        assert sum(v for k, v in sizes.items() if k not in {(0.0, 0.0, 0.0), None}) == int(
            (fac["category"] == cat).sum()
        ), cat


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_small_multiples_titles_clear_the_panels_above_and_name_the_district(
    gap_run, prepared, lang
) -> None:  # type: ignore[no-untyped-def]
    """Drawn as saved, no lower panel's title lies over a map of the row above it."""
    import matplotlib.pyplot as plt

    cov = gap_run.summary["coverage"]
    fig, axes = plot_coverage_small_multiples(prepared, gap_run.residents, None, cov, lang=lang)
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()  # type: ignore[attr-defined]
    for lower in axes[1]:
        title = lower.title.get_window_extent(renderer)
        for upper in axes[0]:
            assert title.y1 <= upper.get_window_extent(renderer).y0, (lower.get_title(), lang)
    assert fig.get_suptitle().startswith("浦东新区：" if lang == "zh" else "Pudong New Area: ")
    plt.close(fig)
    # a category without facilities is named so, in full-width brackets in Chinese
    import dataclasses

    fac = prepared.facilities
    bare = dataclasses.replace(prepared, facilities=fac.loc[fac["category"] != "elderly_care"])
    fig, axes = plot_coverage_small_multiples(bare, gap_run.residents, None, cov, lang=lang)
    title = axes.flat[CATS.index("elderly_care")].get_title()
    assert title.endswith("（数据中无此类设施）" if lang == "zh" else " (no facility in the data)")
    plt.close(fig)


def test_gap_map_is_drawn_in_chinese(gap_run, prepared) -> None:  # type: ignore[no-untyped-def]
    """Title, legend and colour bar of a gap map follow ``lang``: no English left in Chinese."""
    import geopandas as gpd
    import matplotlib.pyplot as plt

    from lifecircle.plot import plot_gap_map

    rings = gpd.GeoDataFrame({"coverage": []}, geometry=[], crs=prepared.crs)
    labels = {}
    for lang in ("en", "zh"):
        fig, ax = plot_gap_map(
            prepared, gap_run.residents, rings, gap_run.clusters, "school", lang=lang
        )
        legend = [t.get_text() for t in ax.get_legend().get_texts()]
        cbar = fig.axes[-1].get_ylabel()
        labels[lang] = (ax.get_title(), legend, cbar)
        plt.close(fig)
    title, legend, cbar = labels["zh"]
    assert title == "浦东新区：学校覆盖缺口"
    assert "学校设施" in legend
    assert "未覆盖人口" in legend
    assert "区界" in legend
    assert cbar == "各距离圈层覆盖率（居民比例）"
    for label in [title, *legend, cbar]:
        assert not any(w in label for w in ("school", "residents", "boundary", "coverage")), label
    assert labels["en"][0] == "Pudong New Area: gaps in school coverage"
    assert "residents not covered" in labels["en"][1]


def test_chinese_category_chart_title_has_no_english_threshold() -> None:
    summary = {
        "parameters": {
            "target": 0.99,
            "threshold_m": 1000.0,
            "minutes": 15.0,
            "threshold_label": "15 min (1000 m) at 4 km/h",
        },
        "categories": {"school": {"coverage": 0.98}},
        "all_categories": {"coverage": 0.98},
    }
    import matplotlib.pyplot as plt

    fig, ax = charts.plot_coverage_by_category(summary, lang="zh")
    assert "步行 15 分钟（1,000 米）" in ax.get_title()
    assert "min" not in ax.get_title()
    plt.close(fig)
    fig, ax = charts.plot_coverage_by_category(summary, lang="en")
    assert "15 min (1000 m) at 4 km/h" in ax.get_title()
    plt.close(fig)


def test_ring_gradient_plots_each_ring_share_computed_by_hand(gap_run) -> None:  # type: ignore[no-untyped-def]
    """Every point of the ring gradient is the weighted share covered in that ring, by hand."""
    import matplotlib.pyplot as plt

    res = gap_run.residents
    fig, ax = charts.plot_ring_gradient(gap_run.tables["rings"], target=0.99)
    lines = {ln.get_label(): ln for ln in ax.get_lines()}
    checked = 0
    for cat in (*CATS, "all_categories"):
        line = lines[category_label("all" if cat == "all_categories" else cat)]
        for x, y in zip(line.get_xdata(), line.get_ydata(), strict=True):
            lo, hi = (
                float(v)
                for v in {
                    "0.25": (0, 0.5),
                    "0.75": (0.5, 1),
                    "1.25": (1, 1.5),
                    "1.75": (1.5, 2),
                    "2.5": (2, 3),
                }[f"{x:g}"]
            )
            ring = res.loc[res["ring"] == f"{lo:g}-{hi:g} km"]
            w = ring["weight"].to_numpy(dtype=float)
            covered = ring[f"covered_{cat}"].to_numpy(dtype=bool)
            assert y == pytest.approx(100 * w[covered].sum() / w.sum(), abs=1e-9), (cat, x)
            checked += 1
    assert checked >= 10  # several populated rings per category
    plt.close(fig)


def test_plan_curve_counts_sites_in_whole_numbers() -> None:
    import matplotlib.pyplot as plt

    from lifecircle.plot import plot_plan_curve

    fig, ax = plot_plan_curve("elderly_care", 0.0, [0.763, 0.982, 1.0], 0.99, sites_needed=3)
    fig.canvas.draw()
    ticks = [t for t in ax.get_xticks() if ax.get_xlim()[0] <= t <= ax.get_xlim()[1]]
    assert ticks == [0, 1, 2, 3]
    plt.close(fig)


def test_outlines_are_drawn_from_every_ring_without_redrawing_or_moving_the_view() -> None:
    import matplotlib.pyplot as plt
    import shapely
    from matplotlib.collections import LineCollection

    from lifecircle.plot import draw_outlines

    square_with_hole = shapely.Polygon(
        [(0, 0), (10, 0), (10, 10), (0, 10)], [[(4, 4), (6, 4), (6, 6), (4, 6)]]
    )
    two = shapely.MultiPolygon([shapely.box(20, 0, 21, 1), shapely.box(30, 0, 31, 1)])
    line = shapely.LineString([(0, 20), (5, 25)])
    fig, ax = plt.subplots()
    ax.set_xlim(-1, 1)
    ax.set_ylim(-1, 1)
    redraws: list[int] = []
    fig.canvas.mpl_connect("draw_event", lambda _e: redraws.append(1))
    draw_outlines(ax, [square_with_hole, two, line, shapely.Polygon()], color="red")
    (coll,) = [c for c in ax.collections if isinstance(c, LineCollection)]
    drawn = {tuple(map(tuple, np.round(seg, 6))) for seg in coll.get_segments()}
    expected = {
        tuple(square_with_hole.exterior.coords),
        tuple(square_with_hole.interiors[0].coords),
        tuple(two.geoms[0].exterior.coords),
        tuple(two.geoms[1].exterior.coords),
        tuple(line.coords),
    }
    assert drawn == {tuple((float(x), float(y)) for x, y in ring) for ring in expected}
    assert ax.get_xlim() == (-1, 1)
    assert ax.get_ylim() == (-1, 1)
    assert redraws == []
    plt.close(fig)


def _rendered_ink(*, raster: bool, hollow: bool, monkeypatch: pytest.MonkeyPatch) -> np.ndarray:
    import matplotlib.pyplot as plt

    from lifecircle import plot as lcplot

    fig = plt.figure(figsize=(1000 / lcplot.MAP_DPI, 800 / lcplot.MAP_DPI), dpi=lcplot.MAP_DPI)
    ax = fig.add_axes((0, 0, 1, 1))
    ax.set_axis_off()
    rng = np.random.default_rng(0)
    x, y = rng.uniform(20, 980, 300), rng.uniform(20, 780, 300)
    monkeypatch.setattr(lcplot, "RASTER_POINTS_ABOVE", 0 if raster else 10**9)
    lcplot.add_points(
        ax,
        x,
        y,
        color="black",
        size=14,
        bounds=(0.0, 0.0, 1000.0, 800.0),
        hollow_width=0.9 if hollow else None,
    )
    ax.set_xlim(0, 1000)
    ax.set_ylim(0, 800)
    fig.canvas.draw()
    img = np.asarray(fig.canvas.buffer_rgba())[..., :3].mean(axis=2)
    plt.close(fig)
    return img < 128


@pytest.mark.parametrize("hollow", [False, True])
def test_city_size_point_sets_drawn_as_an_image_match_matplotlibs_markers(
    hollow: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    # the image drawn above 50,000 points against matplotlib's own scatter of the same points
    from scipy import ndimage

    drawn = _rendered_ink(raster=False, hollow=hollow, monkeypatch=monkeypatch)
    image = _rendered_ink(raster=True, hollow=hollow, monkeypatch=monkeypatch)
    assert image.sum() == pytest.approx(drawn.sum(), rel=0.08)
    assert (drawn & ndimage.binary_dilation(image)).sum() / drawn.sum() > 0.99
    assert (image & ndimage.binary_dilation(drawn)).sum() / image.sum() > 0.99
    if hollow:  # the stroke is a ring, not a disc
        assert (drawn & image).sum() / (drawn | image).sum() > 0.9


def test_polygons_are_drawn_with_their_holes_and_colours_without_a_redraw() -> None:
    import matplotlib.pyplot as plt
    import shapely
    from matplotlib.collections import PathCollection

    from lifecircle.plot import draw_polygons

    ring = shapely.Polygon([(0, 0), (10, 0), (10, 10), (0, 10)], [[(4, 4), (6, 4), (6, 6), (4, 6)]])
    pair = shapely.MultiPolygon([shapely.box(20, 0, 22, 2), shapely.box(30, 0, 31, 1)])
    fig, ax = plt.subplots()
    redraws: list[int] = []
    fig.canvas.mpl_connect("draw_event", lambda _e: redraws.append(1))
    colours = np.array([[1.0, 0, 0, 1], [0, 0, 1.0, 1], [0, 1.0, 0, 1]])
    draw_polygons(ax, [ring, shapely.Polygon(), pair], facecolors=colours)
    (coll,) = [c for c in ax.collections if isinstance(c, PathCollection)]
    paths = coll.get_paths()
    assert len(paths) == 2
    # the filled area of each path (even-odd within a polygon: the hole is left out), by sampling
    grid = np.stack(np.meshgrid(np.arange(0.25, 40, 0.5), np.arange(0.25, 12, 0.5)), -1)
    pts = grid.reshape(-1, 2)
    for path, geom in zip(paths, [ring, pair], strict=True):
        inside = _even_odd(path, pts)
        assert (inside * 0.25).sum() == pytest.approx(geom.area)
    np.testing.assert_array_equal(coll.get_facecolors()[:, :3], colours[[0, 2], :3])
    assert redraws == []
    plt.close(fig)


def _even_odd(path: object, pts: np.ndarray) -> np.ndarray:
    # a point is filled when it lies inside an odd number of the path's rings
    from matplotlib.path import Path

    assert isinstance(path, Path)
    rings = [Path(p) for p in path.to_polygons()]
    return np.sum([r.contains_points(pts) for r in rings], axis=0) % 2 == 1


@pytest.mark.parametrize("hole_ccw", [False, True])
def test_a_hole_stays_empty_whichever_way_its_ring_runs(hole_ccw: bool) -> None:
    import matplotlib.pyplot as plt
    import shapely

    from lifecircle.plot import draw_polygons

    hole = [(4, 4), (6, 4), (6, 6), (4, 6)]
    poly = shapely.Polygon([(0, 0), (10, 0), (10, 10), (0, 10)], [hole if hole_ccw else hole[::-1]])
    assert shapely.is_ccw(poly.interiors[0]) == hole_ccw
    fig = plt.figure(figsize=(1, 1), dpi=100)
    ax = fig.add_axes((0, 0, 1, 1))
    ax.set_axis_off()
    draw_polygons(ax, [poly], facecolors="black")
    ax.set_xlim(0, 10)
    ax.set_ylim(0, 10)
    fig.canvas.draw()
    red = np.asarray(fig.canvas.buffer_rgba())[..., 0]
    plt.close(fig)
    assert red[50, 50] == 255  # the hole's centre is not painted
    assert red[20, 20] == 0  # the ring around it is


def test_point_raster_equals_the_pixel_by_pixel_rule() -> None:
    # the compiled loop against the rule written out with numpy, offset by offset
    from lifecircle.plot import point_raster

    rng = np.random.default_rng(5)
    x, y = rng.uniform(-50, 1050, 3000), rng.uniform(-50, 750, 3000)  # some off the map
    bounds, pixel_m = (0.0, 0.0, 1000.0, 700.0), 3.7
    for diameter, ring in ((1.0, None), (4.6, None), (6.0, 1.5)):
        got = point_raster(x, y, bounds, pixel_m, diameter_px=diameter, ring_px=ring)
        n_cols, n_rows = int(np.ceil(1000 / pixel_m)), int(np.ceil(700 / pixel_m))
        fx, fy = x / pixel_m, (700 - y) / pixel_m
        r, inner = max(diameter / 2, 0.5), -1.0
        if ring is not None:
            r, inner = r + ring / 2, max(r - ring / 2, 0.0)
        want = np.zeros((n_rows, n_cols), dtype=bool)
        reach = int(np.ceil(r)) + 1
        c0, r0 = np.floor(fx).astype(int), np.floor(fy).astype(int)
        for dr in range(-reach, reach + 1):
            for dc in range(-reach, reach + 1):
                col, row = c0 + dc, r0 + dr
                d = np.hypot(col + 0.5 - fx, row + 0.5 - fy)
                hit = ((d <= r) | ((dr == 0) & (dc == 0))) & (d >= inner)
                hit &= (col >= 0) & (col < n_cols) & (row >= 0) & (row < n_rows)
                want[row[hit], col[hit]] = True
        assert got.shape == want.shape
        assert (got == want).all()
        assert want.sum() > 1000
