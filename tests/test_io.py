from __future__ import annotations

import json
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely

from lifecircle import io
from lifecircle.errors import DataError, InputError, OutputError
from lifecircle.prepare import AreaRequest, prepare_area
from tests.conftest import LUJIAZUI, STATUS, ReplayServer, nominatim_answer

BBOX = "121.495,31.228,121.512,31.243"


def test_read_lujiazui(lujiazui_osm) -> None:  # type: ignore[no-untyped-def]
    assert len(lujiazui_osm.ways) == 1500  # highway ways, as the data README says
    assert lujiazui_osm.osm_base == "2026-08-15T11:23:42Z"
    assert (lujiazui_osm.features["osm_type"] == "way").sum() > 600


def test_read_bz2_and_pbf_give_the_same_network(tmp_path: Path, lujiazui_osm) -> None:  # type: ignore[no-untyped-def]
    import bz2

    import osmium

    from lifecircle.network import build_walk_network

    bz = tmp_path / "l.osm.bz2"
    bz.write_bytes(bz2.compress(LUJIAZUI.read_bytes()))
    pbf = tmp_path / "l.osm.pbf"
    writer = osmium.SimpleWriter(str(pbf))
    for obj in osmium.FileProcessor(str(LUJIAZUI)):
        writer.add(obj)
    writer.close()
    ref = build_walk_network(lujiazui_osm.ways, crs="EPSG:32651")
    for path in (bz, pbf):
        net = build_walk_network(io.read_osm(path).ways, crs="EPSG:32651")
        assert net.n_nodes == ref.n_nodes
        assert net.n_edges == ref.n_edges


def test_malformed_and_empty_osm(tmp_path: Path) -> None:
    bad = tmp_path / "bad.osm"
    bad.write_text("<osm><node id='1' lat='x'")
    with pytest.raises(DataError, match=r"bad\.osm"):
        io.read_osm(bad)
    empty = tmp_path / "empty.osm"
    empty.write_text("<?xml version='1.0'?><osm version='0.6'></osm>")
    with pytest.raises(DataError, match="no highways"):
        io.read_osm(empty)
    with pytest.raises(InputError, match="not an OSM file"):
        io.read_osm(Path(__file__))


def test_atomic_write_leaves_no_partial_file(tmp_path: Path) -> None:
    class Boom:
        def savefig(self, *a: object, **k: object) -> None:
            Path(a[0]).write_text("half")  # type: ignore[arg-type]
            raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        io.save_figure(Boom(), tmp_path / "map.png")
    assert list(tmp_path.iterdir()) == []


def test_unwritable_folder(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(OutputError, match="choose a writable folder"):
        io.ensure_writable_dir(blocker / "sub")


def test_overpass_download_against_replay(
    replay_server: ReplayServer, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("LIFECIRCLE_OVERPASS_URL", replay_server.url + "/api")
    monkeypatch.setenv("LIFECIRCLE_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("LIFECIRCLE_DATA_DIR", str(tmp_path / "nodata"))
    prepared = prepare_area(AreaRequest(bbox=BBOX, name="replay"))
    raw = tmp_path / "cache" / "raw" / "replay" / "overpass.osm.pbf"
    assert raw.is_file()
    methods = [(m, p.split("?")[0]) for m, p, _ in replay_server.requests]
    assert methods[0] == ("GET", "/api/status")  # a slot was asked for first
    posts = [b for m, p, b in replay_server.requests if m == "POST"]
    # the box with its 3 km margin is about 60 km²: two or three pieces of <= 50 km²
    assert 2 <= len(posts) <= 4
    assert methods.count(("GET", "/api/status")) == len(posts)
    assert all(b"highway" in b for b in posts)
    assert b"sidewalk" in posts[0]  # the walk filter (network.WALK_EXCLUDE) went in
    assert prepared.manifest["osm"]["osm_base"] == "2026-08-15T11:23:42Z"
    assert prepared.network.n_edges > 3000
    assert prepared.manifest["facilities"]["school"]["osm"] >= 5
    # a second run reuses the raw file and the processed cache: no new request
    n = len(replay_server.requests)
    prepare_area(AreaRequest(bbox=BBOX, name="replay"))
    assert len(replay_server.requests) == n


def test_geocoder_and_overpass_replay_for_a_district(
    overpass_recording: bytes, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, data_dir: Path
) -> None:
    boundary = io.read_vector(
        data_dir / "pudong" / "boundaries" / "pudong_4_towns_osm_wgs84.geojson"
    )
    poly = shapely.box(121.49, 31.22, 121.515, 31.245)
    assert not boundary.empty
    with ReplayServer(
        {
            "/api/status": STATUS,
            "/api/interpreter": overpass_recording,
            "/search": nominatim_answer(121.49, 31.22, 121.515, 31.245),
        }
    ) as server:
        monkeypatch.setenv("LIFECIRCLE_OVERPASS_URL", server.url + "/api")
        monkeypatch.setenv("LIFECIRCLE_NOMINATIM_URL", server.url + "/")
        monkeypatch.setenv("LIFECIRCLE_CACHE_DIR", str(tmp_path / "cache"))
        monkeypatch.setenv("LIFECIRCLE_DATA_DIR", str(tmp_path / "nodata"))
        prepared = prepare_area(AreaRequest(district="pudong"))
        assert any(p.startswith("/search") for _, p, _ in server.requests)
    assert (tmp_path / "cache" / "raw" / "pudong" / "boundary.geojson").is_file()
    assert prepared.boundary.to_crs(32651).area.sum() == pytest.approx(
        gpd.GeoSeries([poly], crs=4326).to_crs(32651).area.iloc[0], rel=1e-6
    )


def test_offline_without_data_names_the_fix(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("LIFECIRCLE_DATA_DIR", str(tmp_path))
    with pytest.raises(DataError, match="LIFECIRCLE_DATA_DIR"):
        prepare_area(AreaRequest(bbox=BBOX, offline=True))


def test_datav_boundary_is_shifted_from_gcj02(data_dir: Path) -> None:
    prepared = prepare_area(AreaRequest(district="pudong", osm_file=LUJIAZUI))
    raw = io.read_vector(data_dir / "pudong" / "boundaries" / "pudong_310115_datav_gcj02.json")
    shift = raw.to_crs(32651).centroid.distance(prepared.boundary.to_crs(32651).centroid).iloc[0]
    assert 300 < shift < 800


def test_admin_units_keep_town_level_administrative_polygons_only() -> None:
    """osmnx answers tags as a union: the filter keeps boundary=administrative AND level 8."""
    import geopandas as gpd
    import pandas as pd
    import shapely

    from lifecircle.io import admin_units_from_features

    square = shapely.box(121.50, 31.22, 121.51, 31.23)
    index = pd.MultiIndex.from_tuples(
        [
            ("relation", 1),  # a town: kept
            ("way", 2),  # the same town as a closed way: the relation wins
            ("relation", 3),  # the district (admin_level 6): dropped
            ("relation", 4),  # the city (4): dropped
            ("relation", 5),  # admin_level 8 but a census boundary: dropped
            ("way", 6),  # an unnamed boundary way: dropped
            ("relation", 7),  # a second town, with a ref: kept
            ("way", 8),  # a boundary line, not a polygon: dropped
        ],
        names=["element", "id"],
    )
    features = gpd.GeoDataFrame(
        {
            "boundary": ["administrative"] * 4
            + ["census", "administrative", "administrative", "administrative"],
            "admin_level": ["8", "8", "6", "4", "8", "8", "8", "8"],
            "name": [
                "陆家嘴街道",
                "陆家嘴街道",
                "浦东新区",
                "上海市",
                "统计区",
                None,
                "洋泾街道",
                "x",
            ],
            "ref": [None, None, None, None, None, None, "310115013", None],
        },
        geometry=[square, shapely.box(121.50, 31.22, 121.505, 31.225)]
        + [square] * 5
        + [shapely.LineString([(121.5, 31.2), (121.6, 31.3)])],
        index=index,
        crs=4326,
    )
    out = admin_units_from_features(features.iloc[[1, 0, 2, 3, 4, 5, 6, 7]], admin_level="8")
    assert out["name"].tolist() == ["陆家嘴街道", "洋泾街道"]
    assert out["code"].tolist() == ["", "310115013"]
    assert out.crs.to_epsg() == 4326
    assert out.geometry.iloc[0].equals(square)  # the relation's polygon, not the way's


def _strict_loads(text: str) -> object:
    """Parse JSON as RFC 8259 does: NaN, Infinity and -Infinity are errors."""

    def refuse(token: str) -> object:
        raise ValueError(f"non-standard JSON constant {token}")

    return json.loads(text, parse_constant=refuse)


def test_save_json_is_strict(tmp_path: Path) -> None:
    summary = {
        "categories": {
            "school": {"median_distance_m": float("inf"), "p90_distance_m": np.float64("inf")},
            "health": {"coverage": float("nan"), "levels": [1.0, -np.inf, np.float32(2.5)]},
        },
        "count": np.int64(3),
        "flag": np.bool_(True),
        "pair": (np.nan, 1),
        "array": np.array([1.0, np.inf]),
    }
    path = io.save_json(summary, tmp_path / "s.json")
    data = _strict_loads(path.read_text("utf-8"))
    assert data == {
        "categories": {
            "school": {"median_distance_m": None, "p90_distance_m": None},
            "health": {"coverage": None, "levels": [1.0, None, 2.5]},
        },
        "count": 3,
        "flag": True,
        "pair": [None, 1],
        "array": [1.0, None],
    }


def _sparse_raster(path: Path, width: int, height: int, blocks: list[tuple[int, int, int, float]]):  # type: ignore[no-untyped-def]
    """A tiled, compressed WGS-84 GeoTIFF of 0.001° cells from 120 E, 32 N, written by windows.

    Only `blocks` (row, col, size, value) are written, so a national-size grid stays a small file.
    """
    import rasterio
    from rasterio.transform import from_origin
    from rasterio.windows import Window

    with rasterio.open(
        path,
        "w",
        driver="GTiff",
        width=width,
        height=height,
        count=1,
        dtype="float32",
        nodata=0.0,
        crs="EPSG:4326",
        transform=from_origin(120.0, 32.0, 0.001, 0.001),
        tiled=True,
        blockxsize=256,
        blockysize=256,
        compress="deflate",
        sparse_ok=True,
    ) as dst:
        for row, col, size, value in blocks:
            dst.write(
                np.full((size, size), value, dtype="float32"),
                1,
                window=Window(col, row, size, size),
            )


@pytest.mark.filterwarnings("ignore:Use `@` matmul:PendingDeprecationWarning")
def test_population_raster_read_through_a_window_of_the_area(tmp_path: Path) -> None:
    """A national raster: only the window of the area is read, never the whole grid."""
    import tracemalloc

    path = tmp_path / "national.tif"
    # 4,000 x 3,000 cells (120-124 E, 29-32 N); 10 x 10 cells of 2 persons at 121.50-121.51 E,
    # 31.23-31.24 N (rows from 32 N: 760-769, cols from 120 E: 1500-1509), and a far-away block
    _sparse_raster(path, 4000, 3000, [(760, 1500, 10, 2.0), (2500, 3500, 50, 7.0)])
    area = shapely.box(121.49, 31.22, 121.52, 31.25)
    tracemalloc.start()
    try:
        cells = io.read_raster_cells(path, area=area)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert len(cells) == 100
    assert cells["population"].sum() == pytest.approx(200.0)
    x0, y0, x1, y1 = cells.total_bounds
    assert (x0, y0, x1, y1) == pytest.approx((121.50, 31.23, 121.51, 31.24))
    # the whole grid is 48 MB as float32: the window (about 30 x 30 cells) is a few kB
    assert peak < 5_000_000
    # an area the raster does not cover, a raster without CRS, a huge raster without an area
    with pytest.raises(DataError, match="does not cover the area"):
        io.read_raster_cells(path, area=shapely.box(10.0, 10.0, 11.0, 11.0))
    big = tmp_path / "big.tif"
    _sparse_raster(big, 6000, 5000, [(0, 0, 1, 1.0)])
    with pytest.raises(DataError, match="give the area"):
        io.read_raster_cells(big)


class _Counting:
    """A compiled regular expression that counts its searches."""

    def __init__(self, pattern: object) -> None:
        self.pattern = pattern
        self.calls = 0

    def search(self, text: str) -> object:
        self.calls += 1
        return self.pattern.search(text)  # type: ignore[attr-defined]


@pytest.mark.slow
def test_million_row_poi_table_is_mapped_per_distinct_value(tmp_path: Path, data_dir: Path) -> None:
    """1M POIs: each rule's patterns run per distinct category path and name, never per row."""
    import dataclasses

    import pandas as pd

    from lifecircle.facilities import PoiMapping, amap_mapping, facilities_from_table

    real = pd.concat(
        io.read_table(data_dir / "pudong" / "pois" / f"shanghai_{n}.csv")
        for n in ("school", "hospital", "Theatr_Cinema")
    )
    pairs = real[["type", "name"]].drop_duplicates().reset_index(drop=True)
    n_rows = 1_000_000
    rng = np.random.default_rng(9)
    pick = rng.integers(0, len(pairs), n_rows)
    big = pairs.iloc[pick].reset_index(drop=True)
    big["lon"] = np.round(rng.uniform(121.2, 121.9, n_rows), 6)
    big["lat"] = np.round(rng.uniform(30.9, 31.4, n_rows), 6)
    path = tmp_path / "pois.csv"
    big.to_csv(path, index=False)
    del big
    table = io.read_table(path)
    assert len(table) == n_rows

    plain = amap_mapping()
    counters: list[_Counting] = []

    def count(p: object) -> _Counting | None:
        if p is None:
            return None
        counters.append(_Counting(p))
        return counters[-1]

    rules = tuple(
        dataclasses.replace(
            r,
            pattern=count(r.pattern),
            name_re=count(r.name_re),
            exclude_name_re=count(r.exclude_name_re),
        )
        for r in plain.rules
    )
    out = facilities_from_table(table, PoiMapping(field="type", rules=rules))  # type: ignore[arg-type]

    n_paths = len({p for v in pairs["type"] for p in v.split("|")})
    n_names = pairs["name"].nunique()
    searches = sum(c.calls for c in counters)
    assert searches <= len(rules) * (n_paths + n_names)
    assert searches < n_rows / 4  # row by row: >= 1,000,000 for the first rule alone
    # the same result as the row-by-row rule, computed once per distinct (type, name) pair
    decided = [plain.classify(t, n) for t, n in zip(pairs["type"], pairs["name"], strict=True)]
    expected: dict[tuple[str, str], int] = {}
    for i, k in zip(*np.unique(pick, return_counts=True), strict=True):
        if decided[i] is not None:
            expected[decided[i]] = expected.get(decided[i], 0) + int(k)
    got = out.groupby(["category", "subtype"]).size().to_dict()
    assert got == expected
    assert len(out) == sum(expected.values()) > 100_000


def test_a_damaged_cached_table_is_refused_not_read_as_other_numbers(tmp_path: Path) -> None:
    """Pages carry checksums: a flipped bit in a cached table is an error, never other values."""
    rng = np.random.default_rng(5)
    table = pd.DataFrame({"col": rng.integers(0, 10**6, 200_000), "length_m": rng.random(200_000)})
    path = io.save_table(table, tmp_path / "t.parquet")
    good = path.read_bytes()
    silent = 0
    for pos in rng.integers(len(good) // 10, len(good) * 8 // 10, 25).tolist():
        bad = bytearray(good)
        bad[pos] ^= 1 << int(rng.integers(0, 8))
        path.write_bytes(bytes(bad))
        try:
            back = io.load_table(path)
        except DataError:
            continue
        silent += not back.equals(table)
    assert silent == 0
