from __future__ import annotations

import json
from pathlib import Path

import geopandas as gpd
import numpy as np
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
