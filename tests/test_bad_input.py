"""Bad input to `fetch`, `coverage` and `gaps`: one line, exit 1, no traceback, nothing written.

Each refused case runs the real command (click's CliRunner on ``lifecircle.cli.main``) against
the real Lujiazui data, with an output folder that already holds a file: after the refusal the
folder and its parent list exactly what they listed before (no staging folder left behind).
Unusual-but-valid inputs run to the end with a warning saying what was assumed, and their
results are pinned against an independent run.
"""

from __future__ import annotations

import itertools
import json
import math
import subprocess
import sys
import warnings
from pathlib import Path

import geopandas as gpd
import pandas as pd
import pytest
import shapely
from click.testing import CliRunner, Result
from hypothesis import given, settings
from hypothesis import strategies as st

from lifecircle.areas import MAX_AREA_KM2, parse_bbox
from lifecircle.checks import NUMBER_RULES, check_number, check_ring_edges
from lifecircle.cli import main
from lifecircle.errors import InputError
from tests.conftest import DATA_DIR, LUJIAZUI, POIS

SCHOOLS = POIS / "shanghai_school.csv"
PORTO_ALEGRE = DATA_DIR / "bench" / "porto_alegre_r5r_sample.osm.pbf"
TOWNS = DATA_DIR / "pudong" / "boundaries" / "pudong_4_towns_osm_wgs84.geojson"
LUJIAZUI_BOX = (121.49, 31.22, 121.52, 31.245)
PROFILE_HEAD = "category,tier,subtypes,minutes,required,source\n"
MAX_MESSAGE_CHARS = 300


def _points(crs: int | None, values: list[float] | None = None) -> gpd.GeoDataFrame:
    pts = [shapely.Point(121.50, 31.230 + 0.001 * i) for i in range(3)]
    data = {"population": values or [100.0, 100.0, 100.0], "type": ["科教文化服务;学校;小学"] * 3}
    return gpd.GeoDataFrame(data, geometry=pts, crs=crs)


def _write_files(folder: Path) -> None:
    """Every bad file of the cases below, as a planner might hand it over."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "empty.csv").write_text("")
    (folder / "header_only_spaces.csv").write_text("   \n")
    (folder / "empty.osm.pbf").write_bytes(b"")
    (folder / "empty.geojson").write_text('{"type": "FeatureCollection", "features": []}')
    (folder / "garbage.geojson").write_text("this is not GeoJSON")
    (folder / "sheet.xlsx").write_bytes(b"PK\x03\x04" + bytes(range(256)))
    (folder / "profile_words.csv").write_text(PROFILE_HEAD + "school,any,*,fifteen,yes,x\n")
    (folder / "profile_ragged.csv").write_text(PROFILE_HEAD + "school,any,*,15,yes,x,1,2\n")
    (folder / "mapping_regex.csv").write_text(
        "pattern,category,subtype\n([unclosed,school,primary\n"
    )
    tags = pd.read_csv(
        Path(__file__).parents[1] / "lifecircle" / "data" / "facility_tags.csv",
        dtype=str,
        keep_default_na=False,
    )
    first = (tags["name_pattern"] != "").idxmax()
    tags.loc[first, "name_pattern"] += "|(unclosed"
    tags.to_csv(folder / "tags_regex.csv", index=False)
    (folder / "pois_gbk.csv").write_bytes(
        "name,type,lat,lon\n上海市实验学校,科教文化服务;学校;中学,31.23,121.5\n".encode("gbk")
    )
    with warnings.catch_warnings():  # pyogrio warns that the file gets no CRS: that is the point
        warnings.simplefilter("ignore", UserWarning)
        _points(None).to_file(folder / "no_crs.gpkg", engine="pyogrio")
    _points(4326, [-100.0, 50.0, 50.0]).to_file(folder / "pop_negative.geojson")
    gpd.GeoDataFrame(geometry=[shapely.Point(121.5, 31.23)], crs=4326).to_file(
        folder / "point.geojson"
    )
    gpd.GeoDataFrame(geometry=[shapely.box(70, 15, 135, 55)], crs=4326).to_file(
        folder / "continent.geojson"
    )


@pytest.fixture(scope="module")
def bad_files(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("bad-files")
    _write_files(folder)
    return folder


PUDONG = ["--district", "pudong"]
COVERAGE_CASES: list[tuple[list[str], str]] = [
    # (1) an extract of another city: no walkable street inside the district
    ([*PUDONG, "--osm-file", str(PORTO_ALEGRE)], "no walkable street inside the area"),
    # (2) snapping limit
    ([*PUDONG, "--max-snap-m", "0"], "--max-snap-m must be a finite number > 0"),
    ([*PUDONG, "--max-snap-m", "-1"], "--max-snap-m must be a finite number > 0"),
    ([*PUDONG, "--max-snap-m", "nan"], "--max-snap-m must be a finite number > 0"),
    # (5) profiles: a word for a number, a ragged row, an empty file, a spreadsheet
    ([*PUDONG, "--profile", "{f}/profile_words.csv"], "minutes 'fifteen' is not a number"),
    ([*PUDONG, "--profile", "{f}/profile_ragged.csv"], "is not a valid CSV file"),
    ([*PUDONG, "--profile", "{f}/header_only_spaces.csv"], "standard profile (--profile) is empty"),
    ([*PUDONG, "--profile", "{f}/sheet.xlsx"], "give a UTF-8 CSV file"),
    # (6) regular expressions
    ([*PUDONG, "--tags", "{f}/tags_regex.csv"], "bad regular expression"),
    (
        [*PUDONG, "--pois", str(SCHOOLS), "--pois-mapping", "{f}/mapping_regex.csv"],
        "bad regular expression",
    ),
    ([*PUDONG, "--tags", "{f}/empty.csv"], "is empty (0 bytes)"),
    ([*PUDONG, "--pois", str(SCHOOLS), "--pois-mapping", "{f}/empty.csv"], "is empty (0 bytes)"),
    # silently accepted before
    ([*PUDONG, "--speed-kmh", "nan"], "--speed-kmh must be a finite number > 0"),
    ([*PUDONG, "--speed-kmh", "inf"], "--speed-kmh must be a finite number > 0"),
    ([*PUDONG, "--speed-kmh", "-4"], "--speed-kmh must be a finite number > 0"),
    ([*PUDONG, "--minutes", "inf"], "--minutes must be a finite number > 0"),
    ([*PUDONG, "--minutes", "nan"], "--minutes must be a finite number > 0"),
    ([*PUDONG, "--target", "nan"], "--target must be in (0, 1]"),
    ([*PUDONG, "--isochrone-buffer-m", "-5"], "--isochrone-buffer-m must be a finite number > 0"),
    ([*PUDONG, "--isochrone-buffer-m", "0"], "--isochrone-buffer-m must be a finite number > 0"),
    ([*PUDONG, "--isochrone-buffer-m", "nan"], "--isochrone-buffer-m must be a finite number > 0"),
    ([*PUDONG, "--margin-m", "nan"], "--margin-m must be a finite number >= 0"),
    ([*PUDONG, "--margin-m", "inf"], "--margin-m must be a finite number >= 0"),
    ([*PUDONG, "--margin-m", "-1"], "--margin-m must be a finite number >= 0"),
    ([*PUDONG, "--rings", "-1,3"], "--rings -1,3 must be at least two increasing"),
    ([*PUDONG, "--rings", "nan,3"], "must be at least two increasing finite distances"),
    ([*PUDONG, "--rings", "5,3"], "must be at least two increasing finite distances"),
    ([*PUDONG, "--rings", "3"], "must be at least two increasing finite distances"),
    # POI files: no CRS, a folder, empty, GBK-encoded, a spreadsheet, wrong or swapped columns
    ([*PUDONG, "--pois", "{f}/no_crs.gpkg", "--pois-field", "type"], "POI layer has no CRS"),
    ([*PUDONG, "--pois", "{f}"], "is a folder"),
    ([*PUDONG, "--pois", "{f}/empty.csv"], "is empty (0 bytes)"),
    ([*PUDONG, "--pois", "{f}/pois_gbk.csv"], "is not UTF-8 text"),
    ([*PUDONG, "--pois", "{f}/sheet.xlsx"], "cannot read"),
    ([*PUDONG, "--pois", str(SCHOOLS), "--pois-lat", "latitude"], "no column 'latitude'"),
    (
        [*PUDONG, "--pois", str(SCHOOLS), "--pois-lat", "lon", "--pois-lon", "lat"],
        "no valid coordinates",
    ),
    # population layers: a CSV, negative counts, no CRS, a missing column
    ([*PUDONG, "--population", str(SCHOOLS)], "has no geometry"),
    ([*PUDONG, "--population", "{f}/pop_negative.geojson"], "negative or infinite value(s)"),
    ([*PUDONG, "--population", "{f}/no_crs.gpkg"], "population layer has no CRS"),
    (
        [*PUDONG, "--population", "{f}/pop_negative.geojson", "--population-column", "pop"],
        "no column 'pop'",
    ),
    # OSM files of the wrong type or empty
    ([*PUDONG, "--osm-file", str(SCHOOLS)], "is not an OSM file"),
    ([*PUDONG, "--osm-file", "{f}/empty.osm.pbf"], "cannot read OSM file"),
    # boundaries and boxes: garbage, empty, points, no CRS, a continent, lat/lon swapped, metres
    (["--boundary", "{f}/garbage.geojson", "--osm-file", str(LUJIAZUI)], "cannot read"),
    (["--boundary", "{f}/empty.geojson", "--osm-file", str(LUJIAZUI)], "has no geometry"),
    (["--boundary", "{f}/point.geojson", "--osm-file", str(LUJIAZUI)], "must be polygons"),
    (["--boundary", "{f}/no_crs.gpkg", "--osm-file", str(LUJIAZUI)], "boundary file has no CRS"),
    (["--boundary", "{f}/continent.geojson", "--osm-file", str(LUJIAZUI)], "km² of one city"),
    (["--bbox", "31.22,121.49,31.245,121.52", "--osm-file", str(LUJIAZUI)], "W,S,E,N"),
    (["--bbox", "452000,3454000,455000,3457000", "--osm-file", str(LUJIAZUI)], "W,S,E,N"),
    (["--bbox", "70,15,135,55", "--osm-file", str(LUJIAZUI)], "km² of one city"),
    # a cache name that is a path
    (["--bbox", "121.49,31.22,121.52,31.245", "--name", "../../escaped"], "must be a plain name"),
]

GAPS_CASES: list[tuple[list[str], str]] = [
    # (3) DBSCAN radius
    ([*PUDONG, "--cluster-eps-m", "0"], "--cluster-eps-m must be a finite number > 0"),
    ([*PUDONG, "--cluster-eps-m", "nan"], "--cluster-eps-m must be a finite number > 0"),
    ([*PUDONG, "--cluster-eps-m", "-250"], "--cluster-eps-m must be a finite number > 0"),
    ([*PUDONG, "--lag-points", "nan"], "--lag-points must be a finite number >= 0"),
    ([*PUDONG, "--lag-points", "-10"], "--lag-points must be a finite number >= 0"),
    ([*PUDONG, "--zone-ring-m", "0"], "--zone-ring-m must be a finite number > 0"),
    ([*PUDONG, "--zone-ring-m", "-2000"], "--zone-ring-m must be a finite number > 0"),
    # a --zones-name naming a missing column, zones without polygons or CRS
    ([*PUDONG, "--zones", str(TOWNS), "--zones-name", "nope"], "no column 'nope'"),
    ([*PUDONG, "--zones", "{f}/point.geojson"], "--zones file has no polygons"),
    ([*PUDONG, "--zones", "{f}/no_crs.gpkg"], "--zones file has no CRS"),
]

FETCH_CASES: list[tuple[list[str], str]] = [
    (["--bbox", "70,15,135,55"], "km² of one city"),
    ([*PUDONG, "--margin-m", "nan"], "--margin-m must be a finite number >= 0"),
    ([*PUDONG, "--pois", "{f}"], "is a folder"),
    ([*PUDONG, "--tags", "{f}/tags_regex.csv"], "bad regular expression"),
]


def _expand(args: list[str], files: Path) -> list[str]:
    return [a.replace("{f}", str(files)) for a in args]


def _listing(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file()} | {
        p.name + "/": b"" for p in folder.iterdir() if p.is_dir()
    }


def assert_refused(result: Result, message: str) -> None:
    """Exit 1, one error line holding `message`, only warnings besides, no traceback."""
    text = result.output
    assert result.exit_code == 1, text
    assert isinstance(result.exception, SystemExit), repr(result.exception)
    assert "Traceback" not in text
    lines = text.strip().splitlines()
    errors = [line for line in lines if line.startswith("Error:")]
    assert len(errors) == 1, text
    assert message in errors[0], text
    assert len(errors[0]) <= MAX_MESSAGE_CHARS, errors[0]
    assert all(line.startswith(("Error:", "Warning:")) for line in lines), text


def _run_refused(
    command: str, args: list[str], message: str, files: Path, tmp_path: Path, extra: list[str]
) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "previous-run.txt").write_text("left by an earlier run")
    before, parent_before = _listing(out), sorted(p.name for p in tmp_path.iterdir())
    result = CliRunner().invoke(main, [command, *_expand(args, files), "--out", str(out), *extra])
    assert_refused(result, message)
    assert _listing(out) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == parent_before


@pytest.mark.parametrize(("args", "message"), COVERAGE_CASES)
def test_coverage_refuses(args: list[str], message: str, bad_files: Path, tmp_path: Path) -> None:
    _run_refused("coverage", args, message, bad_files, tmp_path, ["--no-map"])


@pytest.mark.parametrize(("args", "message"), GAPS_CASES)
def test_gaps_refuses(args: list[str], message: str, bad_files: Path, tmp_path: Path) -> None:
    _run_refused("gaps", args, message, bad_files, tmp_path, ["--no-pdf"])


@pytest.mark.parametrize(("args", "message"), FETCH_CASES)
def test_fetch_refuses(args: list[str], message: str, bad_files: Path, private_cache: Path) -> None:
    result = CliRunner().invoke(main, ["fetch", *_expand(args, bad_files)])
    assert_refused(result, message)
    processed = private_cache / "processed"
    assert not processed.exists() or not any(processed.iterdir())


# ------------------------------------------------------------------ unusual but valid: warn


def _coverage_json(args: list[str], out: Path) -> tuple[Result, dict]:  # type: ignore[type-arg]
    result = CliRunner().invoke(
        main, ["coverage", *args, "--out", str(out), "--no-map", "--no-isochrones"]
    )
    assert result.exit_code == 0, result.output
    return result, json.loads((out / "coverage.json").read_text())


def _shares(summary: dict) -> dict[str, float]:  # type: ignore[type-arg]
    return {c: v["coverage"] for c, v in summary["categories"].items()}


@pytest.mark.parametrize("kind", ["polygon", "line"])
def test_polygon_and_line_pois_count_as_a_point_inside(kind: str, tmp_path: Path) -> None:
    """(4) A POI layer of shapes: each shape is one facility at its representative point."""
    shape = (
        shapely.box(121.5005, 31.2305, 121.5015, 31.2315)
        if kind == "polygon"
        else shapely.LineString([(121.5005, 31.2305), (121.5015, 31.2318), (121.5030, 31.2318)])
    )
    poi = {"name": ["新建小学"], "type": ["科教文化服务;学校;小学"]}
    gpd.GeoDataFrame(poi, geometry=[shape], crs=4326).to_file(tmp_path / "shapes.geojson")
    point = shapely.point_on_surface(shape)  # what the run must use: computed here, by shapely
    gpd.GeoDataFrame(poi, geometry=[point], crs=4326).to_file(tmp_path / "point.geojson")
    base = [*PUDONG, "--pois-field", "type", "--category", "school"]
    shaped, s1 = _coverage_json([*base, "--pois", str(tmp_path / "shapes.geojson")], tmp_path / "a")
    _, s2 = _coverage_json([*base, "--pois", str(tmp_path / "point.geojson")], tmp_path / "b")
    _, s0 = _coverage_json(base, tmp_path / "c")
    assert "Traceback" not in shaped.output
    assert f"1 {'Polygon' if kind == 'polygon' else 'LineString'} feature(s)" in shaped.output
    assert s1["categories"]["school"]["facilities"] == s0["categories"]["school"]["facilities"] + 1
    assert _shares(s1) == _shares(s2)


def test_pois_outside_the_area_warn(tmp_path: Path) -> None:
    """Valid coordinates of another place (or swapped axes that stay in range): a warning."""
    far = tmp_path / "far.csv"
    far.write_text("name,type,lat,lon\n某小学,科教文化服务;学校;小学,-30.03,-51.22\n")
    result, _ = _coverage_json([*PUDONG, "--pois", str(far)], tmp_path / "o")
    assert "none of its 1 mapped POIs lies inside the area" in result.output


def test_pois_with_some_bad_rows_or_the_wrong_field_warn(tmp_path: Path) -> None:
    """Rows without coordinates are skipped, and a --pois-field that maps nothing is named."""
    mixed = tmp_path / "mixed.csv"
    mixed.write_text(
        "name,type,lat,lon\n"
        "浦东新小学,科教文化服务;学校;小学,31.2330,121.5040\n"
        "无坐标小学,科教文化服务;学校;小学,,\n"
    )
    base = [*PUDONG, "--category", "school"]
    result, s_mixed = _coverage_json([*base, "--pois", str(mixed)], tmp_path / "a")
    assert "1 of 2 rows have no valid coordinates in 'lon'/'lat' and are skipped" in result.output
    _, s0 = _coverage_json(base, tmp_path / "b")
    assert s_mixed["categories"]["school"]["facilities"] == (
        s0["categories"]["school"]["facilities"] + 1
    )
    wrong, s_wrong = _coverage_json(
        [*base, "--pois", str(mixed), "--pois-field", "name"], tmp_path / "c"
    )
    assert "none of its 1 values of 'name' matches the POI mapping" in wrong.output
    assert _shares(s_wrong) == _shares(s0)


def test_out_is_a_file(tmp_path: Path) -> None:
    """--out naming an existing file: refused before any work, the file untouched."""
    out = tmp_path / "coverage.json"
    out.write_text("{}")
    result = CliRunner().invoke(main, ["coverage", *PUDONG, "--out", str(out), "--no-map"])
    assert_refused(result, "choose a writable folder with --out")
    assert out.read_text() == "{}"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["coverage.json"]


def test_unusual_speed_warns_and_is_used(tmp_path: Path) -> None:
    """--speed-kmh 40 (a cycling speed, or m/s taken for km/h): used as given, with a warning."""
    result, summary = _coverage_json(
        [*PUDONG, "--speed-kmh", "40", "--category", "school"], tmp_path / "o"
    )
    assert "Warning: --speed-kmh 40 is outside the usual 2-7" in result.output
    assert summary["parameters"]["threshold_m"] == pytest.approx(15 * 40_000 / 60)


def test_json_boundary_crs_member_is_honoured(tmp_path: Path) -> None:
    """A `.json` boundary saved in UTM with a GeoJSON `crs` member reads as the same place."""
    box = gpd.GeoDataFrame({"name": ["box"]}, geometry=[shapely.box(*LUJIAZUI_BOX)], crs=4326)
    box.to_file(tmp_path / "wgs84.geojson")
    utm = box.to_crs(32651)
    doc = json.loads(utm.to_json())
    doc["crs"] = {"type": "name", "properties": {"name": "urn:ogc:def:crs:EPSG::32651"}}
    (tmp_path / "utm.json").write_text(json.dumps(doc))
    osm = ["--osm-file", str(LUJIAZUI), "--name", "crs-member"]
    _, s_utm = _coverage_json(["--boundary", str(tmp_path / "utm.json"), *osm], tmp_path / "a")
    _, s_wgs = _coverage_json(["--boundary", str(tmp_path / "wgs84.geojson"), *osm], tmp_path / "b")
    assert s_utm["data"]["residents"]["count"] == s_wgs["data"]["residents"]["count"] > 100
    assert _shares(s_utm) == pytest.approx(_shares(s_wgs), abs=1e-9)


def test_gap_clusters_outside_every_ring(tmp_path: Path) -> None:
    """(7) Rings of 0-0.1 km: every gap cluster lies beyond them, in the open ring "0.1+ km".

    Lujiazui maps no elderly care, so every resident is uncovered for all categories and the
    clusters partition all resident points (counted by an elderly-care-only coverage run).
    """
    out = tmp_path / "o"
    result = CliRunner().invoke(
        main, ["gaps", *PUDONG, "--rings", "0,0.1", "--out", str(out), "--no-pdf"]
    )
    assert result.exit_code == 0, result.output
    clusters = gpd.read_file(out / "gap_clusters.gpkg")
    assert len(clusters) >= 1
    assert set(clusters["zone"]) == {"0.1+ km"}
    _, summary = _coverage_json([*PUDONG, "--category", "elderly_care"], tmp_path / "c")
    assert summary["categories"]["elderly_care"]["coverage"] == 0
    assert clusters["points"].sum() == summary["data"]["residents"]["count"]


def test_damaged_cache_layer_is_rebuilt(private_cache: Path, tmp_path: Path) -> None:
    """(8) A damaged layer in the processed cache: rebuilt, same answer, no traceback."""
    args = [*PUDONG, "--category", "school"]
    _, before = _coverage_json(args, tmp_path / "a")
    damaged = list((private_cache / "processed").glob("*/residents.parquet"))
    assert damaged
    for path in damaged:
        path.write_bytes(b"not a GeoParquet file")
    result, after = _coverage_json(args, tmp_path / "b")
    assert "Traceback" not in result.output
    assert _shares(after) == _shares(before)
    assert all(gpd.read_parquet(p).shape[0] > 0 for p in damaged)


def test_run_killed_after_first_write_leaves_previous_outputs(tmp_path: Path) -> None:
    """A run killed (SIGKILL) right after its first output write leaves the folder as it was."""
    out = tmp_path / "o"
    _coverage_json([*PUDONG, "--category", "school"], out)
    before = _listing(out)
    script = (
        "import os, signal, lifecircle.io as io\n"
        "orig = io.save_gdf\n"
        "def killed(*a, **k):\n"
        "    r = orig(*a, **k)\n"
        "    if '-staging-' in str(a[1]):\n"
        "        os.kill(os.getpid(), signal.SIGKILL)\n"
        "    return r\n"
        "io.save_gdf = killed\n"
        "from lifecircle.cli import main\n"
        "main()\n"
    )
    args = [*PUDONG, "--category", "health", "--out", str(out), "--overwrite", "--no-map"]
    proc = subprocess.run(
        [sys.executable, "-c", script, "coverage", *args],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=Path(__file__).parents[1],
        check=False,
    )
    assert proc.returncode == -9, proc.stderr
    assert _listing(out) == before


# ------------------------------------------------------------------ properties of the checks


FLOATS = st.floats(allow_nan=True, allow_infinity=True) | st.sampled_from([0.0, -0.0, 1e-300])


@settings(max_examples=300, deadline=None)
@given(name=st.sampled_from(sorted(NUMBER_RULES)), x=FLOATS)
def test_check_number_accepts_exactly_the_valid_values(name: str, x: float) -> None:
    rule = NUMBER_RULES[name]
    valid = math.isfinite(x) and (x > rule.low if rule.low_open else x >= rule.low)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        if valid:
            assert check_number(name, x) == x
        else:
            with pytest.raises(InputError) as info:
                check_number(name, x)
            text = str(info.value)
            assert text.startswith("--" + name.replace("_", "-"))
            assert "\n" not in text


def _invalid(name: str) -> st.SearchStrategy[float]:
    rule = NUMBER_RULES[name]
    return FLOATS.filter(
        lambda x: not (math.isfinite(x) and (x > rule.low if rule.low_open else x >= rule.low))
    )


@settings(max_examples=80, deadline=None)
@given(data=st.data())
def test_cli_refuses_every_invalid_number_in_one_line(data: st.DataObject) -> None:
    """Any invalid value of any numeric option: the real command refuses it before any work."""
    name = data.draw(st.sampled_from(sorted(NUMBER_RULES)))
    value = data.draw(_invalid(name))
    command = (
        "gaps"
        if name
        in {
            "cluster_eps_m",
            "zone_ring_m",
            "lag_points",
            "cell_m",
            "centre_density_km2",
            "centre_min_persons",
            "cluster_density_km2",
            "cluster_min_persons",
            "centre_radius_m",
        }
        else "plan"
        if name in {"time_limit_s", "candidate_spacing_m"}
        else "coverage"
    )
    flag = "--" + name.replace("_", "-")
    result = CliRunner().invoke(main, [command, *PUDONG, f"{flag}={value!r}"])
    assert_refused(result, f"{flag} must be a finite number")


@settings(max_examples=300, deadline=None)
@given(edges=st.lists(FLOATS, max_size=6))
def test_ring_edges_accepted_iff_increasing_finite_nonnegative(edges: list[float]) -> None:
    valid = (
        len(edges) >= 2
        and all(math.isfinite(e) and e >= 0 for e in edges)
        and all(b > a for a, b in itertools.pairwise(edges))
    )
    if valid:
        assert check_ring_edges(tuple(edges)) == tuple(edges)
    else:
        with pytest.raises(InputError):
            check_ring_edges(tuple(edges))


@settings(max_examples=300, deadline=None)
@given(box=st.tuples(FLOATS, FLOATS, FLOATS, FLOATS))
def test_bbox_is_parsed_or_refused_in_one_line(box: tuple[float, float, float, float]) -> None:
    from pyproj import Geod

    text = ",".join(repr(v) for v in box)
    w, s, e, n = box
    ok = all(math.isfinite(v) for v in box) and -180 <= w < e <= 180 and -90 <= s < n <= 90
    if ok:  # independent area: pyproj's geodesic area of the box polygon
        area = abs(Geod(ellps="WGS84").polygon_area_perimeter([w, e, e, w], [s, s, n, n])[0])
        ok = area / 1e6 <= MAX_AREA_KM2
    if ok:
        assert parse_bbox(text) == box
    else:
        with pytest.raises(InputError) as info:
            parse_bbox(text)
        assert "\n" not in str(info.value)


def test_checks_used_by_every_numeric_option() -> None:
    """Every float option of coverage/gaps/fetch has a rule (or, for --target, its own check)."""
    floats = {
        p.name
        for cmd in ("coverage", "gaps", "fetch")
        for p in main.commands[cmd].params  # type: ignore[attr-defined]
        if getattr(p.type, "name", "") == "float"
    }
    assert floats - {"target"} <= set(NUMBER_RULES), floats - set(NUMBER_RULES)


def test_a_folder_as_osm_file_is_named_as_such(tmp_path: Path) -> None:
    """Review of issue 9: a folder was reported as a missing file."""
    result = CliRunner().invoke(main, ["fetch", *PUDONG, "--osm-file", str(tmp_path)])
    assert_refused(result, "is a folder")


def test_an_unwritable_cache_folder_names_the_cache_setting_not_out(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """--out is writable but the processed cache is not: the fix is LIFECIRCLE_CACHE_DIR."""
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    monkeypatch.setenv("LIFECIRCLE_CACHE_DIR", str(blocker / "cache"))
    out = tmp_path / "out"
    result = CliRunner().invoke(
        main, ["coverage", *PUDONG, "--out", str(out), "--no-map", "--no-isochrones"]
    )
    assert_refused(result, "set LIFECIRCLE_CACHE_DIR to a writable folder")
    assert "--out" not in result.output
    assert not out.exists()
    assert blocker.read_text() == "x"
