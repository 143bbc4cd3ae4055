"""The interactive web map: pure pieces against hand-solved cases, the page in headless Chromium.

The browser tests run the real pipeline once on Lujiazui (``coverage`` then ``gaps`` into one
folder), open ``web_map.html`` and ``gaps_web_map.html`` from disk with networking cut off, and
check what a reader sees against the run's own files (``residents_coverage.gpkg``,
``facilities.gpkg``, ``coverage.json``, ``gaps.json``). Locally they skip when Chromium,
chromedriver or selenium is missing; in CI (``CI=true``) they fail instead.
"""

from __future__ import annotations

import json
import os
import shutil
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely

from lifecircle import webmap
from tests.conftest import DATA_DIR, POIS, _session_cache

# the minute classes of a 15-minute run, written out by hand: upper-inclusive limits 5, 10, 15,
# 20, 30 min, then the colour of each class and of unreachable residents
LIMITS_MIN = (5.0, 10.0, 15.0, 20.0, 30.0)
COLOURS = ("#1a9850", "#91cf60", "#d9ef8b", "#fee08b", "#fc8d59", "#d73027")
GREY = "#6f6f6f"
SPEED_M_PER_MIN = 4000.0 / 60.0
UNITS_FILE = DATA_DIR / "pudong" / "boundaries" / "pudong_36_streets_towns_osm_wgs84.geojson"
IN_CI = os.environ.get("CI", "").strip().lower() in {"1", "true", "yes"}


def expected_colour(distance_m: float) -> str:
    if not np.isfinite(distance_m):
        return GREY
    minutes = distance_m / SPEED_M_PER_MIN
    for limit, colour in zip(LIMITS_MIN, COLOURS, strict=False):
        if minutes <= limit:
            return colour
    return COLOURS[-1]


# --------------------------------------------------------------------------- pure pieces


def test_minute_classes_are_upper_inclusive_and_unreachable_last() -> None:
    d_m = np.array([0.0, 333.3, 333.4, 1000.0, 1000.1, 2000.0, 2000.1, np.inf, np.nan])
    got = webmap.minute_classes(d_m / SPEED_M_PER_MIN, 15.0)
    want = [COLOURS.index(expected_colour(d)) if np.isfinite(d) else 6 for d in d_m]
    assert got.tolist() == want == [0, 0, 1, 2, 3, 4, 5, 6, 6]


def test_grid_cells_double_until_the_cap_and_take_weighted_medians() -> None:
    # 4 points: at 100 m cells they fill 3 cells, at 200 m 2 cells (x < 200 and x >= 200)
    x = np.array([10.0, 150.0, 160.0, 390.0])
    y = np.array([10.0, 20.0, 30.0, 10.0])
    cells, side = webmap.grid_cells(x, y, cap=2)
    assert side == 200.0
    assert cells.tolist() == [0, 0, 0, 1]
    cells3, side3 = webmap.grid_cells(x, y, cap=3)
    assert side3 == 100.0
    assert len(set(cells3.tolist())) == 3
    # weighted median of cell 0: values 2, 7, 4 min with weights 1, 1, 5 -> sorted 2(1) 4(5) 7(1):
    # half of 7 is 3.5, reached at 4; cell 1: inf alone -> inf (unreachable)
    med = webmap.weighted_median(
        np.array([2.0, 7.0, 4.0, np.nan]), np.array([1.0, 1.0, 5.0, 2.0]), cells
    )
    assert med[0] == 4.0
    assert np.isinf(med[1])


def _toy_residents(n: int, *, seed: int = 0) -> gpd.GeoDataFrame:
    rng = np.random.default_rng(seed)
    x = 357000.0 + rng.uniform(0, 3000, n)
    y = 3456000.0 + rng.uniform(0, 3000, n)
    dist = rng.uniform(0, 2500, n)
    dist[:5] = np.inf
    return gpd.GeoDataFrame(
        {
            "resident_id": np.arange(n),
            "weight": rng.uniform(1, 100, n),
            "status": "ok",
            "dist_school_m": dist,
        },
        geometry=shapely.points(x, y),
        crs="EPSG:32651",
    )


def _toy_data(residents: gpd.GeoDataFrame, **kw: Any) -> webmap.WebMapData:
    return webmap.WebMapData(
        area="toy",
        categories=("school",),
        minutes=15.0,
        speed_kmh=4.0,
        target=0.99,
        residents=residents,
        **kw,
    )


def test_city_scale_residents_are_aggregated_to_a_bounded_grid() -> None:
    res = _toy_residents(30_000)
    feats, note = webmap.resident_points(_toy_data(res), cap=500)
    assert 0 < len(feats) <= 500
    points, cells, side, cap = note.split("|")
    assert (int(points), int(cells), int(cap)) == (30_000, len(feats), 500)
    # every point falls in one cell; the cells' counts add up to the residents
    counts = [json.loads(f)["properties"]["n"] for f in feats]
    assert sum(counts) == 30_000
    # a cell's colour class comes from its weighted median, checked by brute force on one cell
    x, y = res.geometry.x.to_numpy(), res.geometry.y.to_numpy()
    ids, side_m = webmap.grid_cells(x, y, cap=500)
    assert side_m == float(side)
    first = json.loads(feats[0])["properties"]
    members = np.flatnonzero(ids == first["id"])
    d = res["dist_school_m"].to_numpy()[members]
    w = res["weight"].to_numpy()[members]
    order = np.argsort(d)
    half = np.flatnonzero(np.cumsum(w[order]) >= w.sum() / 2)[0]
    assert first["b"][0] == COLOURS.index(expected_colour(d[order][half]))
    # and the page stays small: 30k points in, well under 1 MB of data out
    html = webmap.render_web_map(_toy_data(res), cap=500)
    assert len(html.encode()) < 600_000
    assert "30,000 resident points drawn as" in html


def test_small_areas_draw_every_resident() -> None:
    res = _toy_residents(50)
    feats, note = webmap.resident_points(_toy_data(res))
    assert note == ""
    assert [json.loads(f)["properties"]["id"] for f in feats] == list(range(50))
    lonlat = np.array([json.loads(f)["geometry"]["coordinates"] for f in feats])
    back = gpd.GeoSeries(res.geometry, crs=res.crs).to_crs(4326)
    assert np.abs(lonlat[:, 0] - back.x.to_numpy()).max() <= 5e-7  # rounded to 1e-6 degree
    assert np.abs(lonlat[:, 1] - back.y.to_numpy()).max() <= 5e-7


def test_names_cannot_break_out_of_the_page() -> None:
    res = _toy_residents(3)
    fac = gpd.GeoDataFrame(
        {
            "category": ["school"],
            "subtype": ["primary"],
            "name": ["</script><script>alert(1)</script>"],
        },
        geometry=[shapely.Point(357100.0, 3456100.0)],
        crs="EPSG:32651",
    )
    html = webmap.render_web_map(_toy_data(res, facilities=fac), lang="zh")
    assert "<script>alert(1)" not in html
    assert html.count("</script>") == 4  # leaflet, the two data blocks, the map script
    assert "小学" in html  # the sub-type label in Chinese


def test_units_take_their_coverage_from_the_summaries() -> None:
    summary = {
        "zones": {
            "admin": [
                {
                    "zone": "A",
                    "residents": 10.0,
                    "school": {"coverage": 0.5},
                    "all_categories": {"coverage": 0.25},
                }
            ]
        }
    }
    assert webmap.coverage_unit_figures(summary) == {"A": {"school": 0.5, "all": 0.25}}
    table = pd.DataFrame(
        {"zone": ["A", "A"], "category": ["school", "all_categories"], "coverage": [0.5, np.nan]}
    )
    assert webmap.gap_unit_figures(table) == {"A": {"school": 0.5, "all": None}}


# --------------------------------------------------------------------------- the real run


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Coverage, then gaps, on Lujiazui with the Amap school and hospital lists, into one folder."""
    from lifecircle.pipeline import CoverageOptions, GapOptions, run_coverage, run_gaps
    from lifecircle.prepare import AreaRequest, PoiSource

    out = tmp_path_factory.mktemp("webmap") / "o"
    req = AreaRequest(
        district="pudong",
        pois=(PoiSource(POIS / "shanghai_school.csv"), PoiSource(POIS / "shanghai_hospital.csv")),
    )
    with pytest.MonkeyPatch.context() as mp, warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        mp.setenv("LIFECIRCLE_DATA_DIR", str(DATA_DIR))
        mp.setenv("LIFECIRCLE_CACHE_DIR", str(_session_cache(tmp_path_factory)))
        mp.setenv("LIFECIRCLE_OVERPASS_URL", "http://127.0.0.1:9/api")
        cov = run_coverage(req, CoverageOptions(), out_dir=out)
        gaps = run_gaps(req, CoverageOptions(), GapOptions(pdf=False), out_dir=out, overwrite=True)
    # Lujiazui maps no elderly care: that category is unreachable for every resident
    assert any("no elderly_care facilities" in str(w.message) for w in caught)
    assert cov.prepared is not None
    return {"out": out, "cache": cov.prepared.folder, "gaps": gaps, "coverage": cov}


def test_both_commands_write_their_map_into_their_output_set(run: dict[str, Any]) -> None:
    out: Path = run["out"]
    cov = json.loads((out / "coverage.json").read_text())
    gap = json.loads((out / "gaps.json").read_text())
    assert "web_map.html" in cov["outputs"]
    assert "gaps_web_map.html" in gap["outputs"]
    for name in ("web_map.html", "gaps_web_map.html"):
        page = (out / name).read_text("utf-8")
        assert len(page.encode()) < 3_000_000
        assert "© OpenStreetMap contributors" in page
        assert "Copyright (c) 2010-2023, Volodymyr Agafonkin" in page  # Leaflet's licence
    # a notebook gets the same page from the run's result
    page = (out / "web_map.html").read_bytes().decode("utf-8")
    assert webmap.coverage_result_map(run["coverage"]) == page
    gaps_page = (out / "gaps_web_map.html").read_bytes().decode("utf-8")
    assert webmap.gaps_result_map(run["gaps"]) == gaps_page


def _missing_browser(what: str) -> None:
    msg = f"{what}: install chromium and chromium-driver (apt) and selenium (pip)"
    if IN_CI:
        pytest.fail(f"CI must run the browser test, but {msg}")
    pytest.skip(msg)


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        _missing_browser("selenium is not installed")
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    driver_path = shutil.which("chromedriver")
    if chromium is None or driver_path is None:
        _missing_browser("chromium or chromedriver is not on PATH")
    assert chromium is not None
    assert driver_path is not None
    opts = webdriver.ChromeOptions()
    opts.binary_location = chromium
    profile = tmp_path_factory.mktemp("chromium-profile")
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--host-resolver-rules=MAP * ~NOTFOUND",  # offline: no host resolves
        f"--user-data-dir={profile}",
        "--window-size=1400,900",
    ):
        opts.add_argument(flag)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(driver_path), options=opts)
    try:
        yield driver
    finally:
        driver.quit()


def _open(driver: Any, page: Path) -> None:
    from selenium.webdriver.support.ui import WebDriverWait

    driver.get(page.as_uri())
    WebDriverWait(driver, 20).until(lambda d: d.execute_script("return !!window.lifecircleMap"))


def _colours(driver: Any) -> dict[int, str]:
    pairs = driver.execute_script(
        "return lifecircleMap.residents.getLayers()"
        ".map(l => [l.feature.properties.id, l.options.fillColor]);"
    )
    return {int(i): str(c) for i, c in pairs}


@pytest.mark.parametrize("name", ["web_map.html", "gaps_web_map.html"])
def test_page_loads_offline_without_errors_or_external_requests(
    browser: Any, run: dict[str, Any], name: str
) -> None:
    browser.get_log("browser")  # drop what earlier pages logged
    _open(browser, run["out"] / name)
    severe = [e for e in browser.get_log("browser") if e["level"] == "SEVERE"]
    assert severe == []
    external = browser.execute_script(
        "const ext = u => !!u && !/^(data:|file:|blob:|about:)/.test(u);"
        "return [...performance.getEntriesByType('resource').map(e => e.name),"
        " ...[...document.scripts].map(s => s.src), "
        " ...[...document.querySelectorAll('link')].map(l => l.href),"
        " ...[...document.querySelectorAll('[src]')].map(e => e.src)].filter(ext);"
    )
    assert external == []
    assert browser.execute_script("return document.querySelectorAll('script[src]').length") == 0
    assert browser.execute_script("return typeof L === 'object' && L.version") == "1.9.4"
    # the OSM tile layer is offered but off by default, so an offline page requests no tile
    assert browser.execute_script("return lifecircleMap.map.hasLayer(lifecircleMap.osm)") is False
    assert browser.execute_script("return document.querySelectorAll('.leaflet-tile').length") == 0


def test_layers_hold_every_resident_unit_and_facility(browser: Any, run: dict[str, Any]) -> None:
    out, cache = run["out"], run["cache"]
    residents = gpd.read_file(out / "residents_coverage.gpkg")
    facilities = gpd.read_file(cache / "facilities.gpkg")
    units = gpd.read_file(UNITS_FILE)
    _open(browser, out / "web_map.html")
    count = "return lifecircleMap.{}.getLayers().length"
    assert browser.execute_script(count.format("residents")) == len(residents) == 258
    assert browser.execute_script(count.format("units")) == len(units) == 36
    assert browser.execute_script(count.format("facilities")) == len(facilities)
    extent = gpd.read_file(cache / "extent.gpkg")
    assert browser.execute_script(count.format("extent")) == len(extent) == 1
    assert "Pudong" in browser.title
    names = browser.execute_script(
        "return lifecircleMap.facilities.getLayers().map(l => l.feature.properties.name)"
    )
    assert sorted(names) == sorted(facilities["name"].fillna("").astype(str))
    _open(browser, out / "gaps_web_map.html")
    clusters = gpd.read_file(out / "gap_clusters.gpkg")
    assert browser.execute_script(count.format("clusters")) == len(clusters) >= 1
    assert browser.execute_script(count.format("units")) == 36


def test_category_switcher_recolours_residents_by_walking_minutes(
    browser: Any, run: dict[str, Any]
) -> None:
    out = run["out"]
    residents = gpd.read_file(out / "residents_coverage.gpkg").set_index("resident_id")
    _open(browser, out / "web_map.html")
    before = _colours(browser)
    assert before == {i: expected_colour(d) for i, d in residents["dist_school_m"].items()}
    changed = 0
    for cat in ("culture", "elderly_care"):
        browser.find_element("id", f"lc-cat-{cat}").click()
        after = _colours(browser)
        want = {i: expected_colour(d) for i, d in residents[f"dist_{cat}_m"].items()}
        assert after == want, cat
        changed += sum(after[i] != before[i] for i in before)
        shown = browser.execute_script(
            "return lifecircleMap.isochrones.getLayers()"
            ".map(g => g.getLayers()[0].feature.properties.c)"
        )
        assert shown == ([cat] if cat == "culture" else [])  # Lujiazui has no elderly care
    assert changed > 0
    assert set(after.values()) == {GREY}  # no elderly care: every resident unreachable


def _free_point(
    unit: shapely.Geometry, avoid: np.ndarray, clusters: shapely.Geometry, centre: shapely.Point
) -> Any:
    """The point of `unit` nearest `centre`, 60 m or more from any marker, outside the clusters."""
    m = gpd.GeoSeries([unit], crs=4326).to_crs("EPSG:32651").iloc[0].buffer(-40)
    x0, y0, x1, y1 = m.bounds
    gx, gy = np.meshgrid(np.arange(x0, x1, 25.0), np.arange(y0, y1, 25.0))
    cand = shapely.points(gx.ravel(), gy.ravel())
    cand = cand[shapely.contains(m, cand) & ~shapely.intersects(clusters, cand)]
    tree = shapely.STRtree(shapely.points(avoid))
    near = tree.query(cand, predicate="dwithin", distance=60.0)
    free = np.setdiff1d(np.arange(len(cand)), near[0])
    best = cand[free][np.argmin(shapely.distance(cand[free], centre))]
    return gpd.GeoSeries([best], crs="EPSG:32651").to_crs(4326).iloc[0]


def _click_unit(driver: Any, point: tuple[float, float]) -> str:
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.support.ui import WebDriverWait

    # no animation: under load a click during the zoom animation lands on another unit
    driver.execute_script(
        "lifecircleMap.map.setView([arguments[0], arguments[1]], 16, {animate: false});", *point
    )
    ActionChains(driver).move_to_element(driver.find_element("id", "map")).click().perform()
    WebDriverWait(driver, 10).until(
        lambda d: d.find_elements("css selector", ".leaflet-popup-content")
    )
    popup = driver.find_element("css selector", ".leaflet-popup-content")
    return str(popup.get_attribute("innerHTML"))


@pytest.mark.parametrize("name", ["web_map.html", "gaps_web_map.html"])
def test_clicking_a_unit_shows_its_coverage(browser: Any, run: dict[str, Any], name: str) -> None:
    out = run["out"]
    units = gpd.read_file(UNITS_FILE)
    unit = units.loc[units["official_control_name_2023"] == "陆家嘴街道"].geometry.iloc[0]
    residents = gpd.read_file(out / "residents_coverage.gpkg")
    facilities = gpd.read_file(run["cache"] / "facilities.gpkg")
    centre = shapely.centroid(shapely.multipoints(shapely.get_coordinates(residents.geometry)))
    markers = np.concatenate(
        [shapely.get_coordinates(residents.geometry), shapely.get_coordinates(facilities.geometry)]
    )
    clusters = shapely.union_all(gpd.read_file(out / "gap_clusters.gpkg").geometry.to_numpy())
    free = _free_point(unit, markers, clusters, centre)
    point = (free.y, free.x)
    if name == "web_map.html":
        rows = json.loads((out / "coverage.json").read_text())["zones"]["admin"]
        row = next(r for r in rows if r["zone"] == "陆家嘴街道")
        want = {c: row[c]["coverage"] for c in ("school", "health", "elderly_care", "culture")}
        want["all"] = row["all_categories"]["coverage"]
    else:
        table = json.loads((out / "gaps.json").read_text())["zones"]["admin"]
        want = {
            ("all" if r["category"] == "all_categories" else r["category"]): r["coverage"]
            for r in table
            if r["zone"] == "陆家嘴街道"
        }
    _open(browser, out / name)
    popup = _click_unit(browser, point)
    assert "陆家嘴街道" in popup
    cells = browser.execute_script(
        "return [...document.querySelectorAll('.leaflet-popup-content tr[data-category]')]"
        ".map(r => [r.dataset.category, r.querySelector('td.v').textContent]);"
    )
    assert dict(cells) == {c: f"{100 * v:.1f}%" for c, v in want.items()}
    # the extract covers only part of 陆家嘴街道: the popup says how much (brute force in metres)
    extent = gpd.read_file(run["cache"] / "extent.gpkg").to_crs("EPSG:32651").union_all()
    unit_m = gpd.GeoSeries([unit], crs=4326).to_crs("EPSG:32651").iloc[0]
    share = unit_m.intersection(extent).area / unit_m.area
    assert 0.55 < share < 0.7
    note = browser.find_element("css selector", ".leaflet-popup-content .lc-share").text
    assert f"{100 * share:.1f}%" in note
    assert want["school"] == pytest.approx(0.9787, abs=1e-3)  # 97.9% of floor area near a school


def test_screenshot_is_a_drawn_map(browser: Any, run: dict[str, Any], tmp_path: Path) -> None:
    from PIL import Image

    _open(browser, run["out"] / "gaps_web_map.html")
    shot = tmp_path / "web_map.png"
    browser.save_screenshot(str(shot))
    pixels = np.asarray(Image.open(shot).convert("RGB"), dtype=float)
    assert pixels.std() > 10
    # the ramp's darkest green (residents within 5 minutes of a school) is on screen
    green = np.all(np.abs(pixels - np.array([0x1A, 0x98, 0x50])) < 8, axis=2)
    assert green.sum() > 200


def test_an_area_without_residents_or_layers_still_renders() -> None:
    empty = gpd.GeoDataFrame(
        {"resident_id": np.array([], dtype=int), "dist_school_m": np.array([], dtype=float)},
        geometry=gpd.GeoSeries([], crs="EPSG:32651"),
        crs="EPSG:32651",
    )
    html = webmap.render_web_map(_toy_data(empty))
    assert '"residents":{"type":"FeatureCollection","features":[]}' in html


def test_legend_title_and_switcher_follow_the_runs_minutes_and_categories() -> None:
    # a 10-minute run of two categories: limits 10/3, 20/3, 10, 40/3, 20 min shown to 0.1 min,
    # the title says 10 minutes, and the farthest-of entry does not claim four services
    assert webmap.ramp_labels(10) == ["≤ 3.3", "3.3–6.7", "6.7–10", "10–13.3", "13.3–20", "> 20"]
    res = _toy_residents(4)
    res["dist_health_m"] = 100.0
    # 10 min at 4 km/h is 666.7 m: 666 m is the last class within the threshold, 667.2 m is not
    res["dist_school_m"] = [666.0, 667.2, 219.0, 221.0]  # 3.3 min is 220 m
    data = webmap.WebMapData(
        area="toy",
        categories=("school", "health"),
        minutes=10.0,
        speed_kmh=4.0,
        target=0.99,
        residents=res,
    )
    feats, _ = webmap.resident_points(data)
    assert [json.loads(f)["properties"]["b"][0] for f in feats] == [2, 3, 0, 1]
    html = webmap.render_web_map(data)
    assert "<title>10-minute life circle: toy</title>" in html
    assert "15-minute" not in html
    assert "All 2 (farthest of them)" in html
    assert "All 2 services" in html
    assert "All four" not in html
    assert "3.33333" not in html
    zh = webmap.render_web_map(data, lang="zh")
    assert "<title>10分钟社区生活圈：toy</title>" in zh
    assert "2类设施（取最远者）" in zh


def test_residents_without_a_street_are_unreachable_in_every_category() -> None:
    res = _toy_residents(3)
    res["dist_school_m"] = [100.0, 100.0, 100.0]
    res["status"] = ["ok", "unsnapped", "ok"]
    feats, _ = webmap.resident_points(_toy_data(res))
    props = [json.loads(f)["properties"] for f in feats]
    assert [p["b"] for p in props] == [[0, 0], [6, 6], [0, 0]]
    assert props[1]["m"] == [None, None]
    assert props[0]["m"] == [1.5, 1.5]  # 100 m at 4 km/h


def test_a_unit_partly_outside_the_analysed_area_says_how_much_was_analysed() -> None:
    # unit A (0..1000 m) has 250 m of its width analysed, unit B lies wholly inside
    units = gpd.GeoDataFrame(
        {"zone": ["A", "B"]},
        geometry=[
            shapely.box(357000, 3456000, 358000, 3457000),
            shapely.box(358200, 3456000, 358400, 3456100),
        ],
        crs="EPSG:32651",
    )
    extent = gpd.GeoDataFrame(
        geometry=[shapely.box(357750, 3455000, 359000, 3458000)], crs="EPSG:32651"
    ).to_crs(4326)
    assert webmap.analysed_shares(units, extent) == pytest.approx([0.25, 1.0], abs=1e-4)
    assert webmap.analysed_shares(units, None) == [None, None]
    data = _toy_data(_toy_residents(3), units=units, extent=extent)
    props = [json.loads(f)["properties"] for f in webmap.unit_features(data)]
    assert [p["share"] for p in props] == pytest.approx([0.25, 1.0], abs=1e-4)


def test_an_area_without_units_offers_no_units_layer(browser: Any, tmp_path: Path) -> None:
    # a --bbox run outside any registry district has no 街道/镇 units: neither the layer control
    # nor the legend may list them
    page = tmp_path / "no_units.html"
    page.write_text(webmap.render_web_map(_toy_data(_toy_residents(20))), "utf-8")
    _open(browser, page)
    control = browser.find_element("css selector", ".leaflet-control-layers").text
    legend = browser.find_element("css selector", ".lc-legend").text
    assert "Residents" in control
    assert "Sub-districts / towns" not in control
    assert "Sub-districts / towns" not in legend
    assert browser.execute_script("return lifecircleMap.map.hasLayer(lifecircleMap.units)")


def test_grid_cells_number_cells_as_the_sorted_column_row_pairs() -> None:
    rng = np.random.default_rng(4)
    x, y = rng.uniform(-5000, 5000, 3000), rng.uniform(-2000, 9000, 3000)
    cells, side = webmap.grid_cells(x, y, cap=10_000, first_cell_m=400.0)
    pairs = np.column_stack([np.floor(x / side), np.floor(y / side)])
    _, expected = np.unique(pairs, axis=0, return_inverse=True)
    np.testing.assert_array_equal(cells, expected.reshape(-1))
    assert side == 400.0


def test_simplify_rings_simplifies_each_ring_as_a_line_and_keeps_the_holes() -> None:
    from lifecircle.webmap import simplify_rings

    t = np.linspace(0, 2 * np.pi, 400, endpoint=False)
    shell = np.column_stack([1000 * np.cos(t), 1000 * np.sin(t)])
    hole = np.column_stack([300 * np.cos(t), 300 * np.sin(t)])[::-1]
    tiny = np.column_stack([2000 + 0.2 * np.cos(t), 0.2 * np.sin(t)])  # collapses at 1 m
    with_hole = shapely.Polygon(shell, [hole])
    geoms = np.array(
        [
            with_hole,
            shapely.MultiPolygon([with_hole, shapely.Polygon(tiny)]),
            shapely.Polygon(tiny),
        ],
        dtype=object,
    )
    got = simplify_rings(geoms, 1.0)

    def by_hand(ring: np.ndarray) -> shapely.LineString:
        line = shapely.LineString(np.vstack([ring, ring[:1]]))
        return shapely.simplify(line, 1.0, preserve_topology=False)

    want = shapely.Polygon(by_hand(shell).coords, [by_hand(hole).coords])
    assert got[0].geom_type == "MultiPolygon"
    assert len(got[0].geoms) == 1
    assert shapely.equals_exact(got[0].geoms[0], want, tolerance=0)
    assert len(got[1].geoms) == 1  # the tiny part's only ring collapsed: dropped
    assert shapely.equals_exact(got[1].geoms[0], want, tolerance=0)
    assert got[2].is_empty
    assert 50 < shapely.get_num_coordinates(got[0]) < 400  # simplified
