from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely

from lifecircle.errors import InputError
from lifecircle.facilities import (
    change_facilities,
    change_facility_access,
    combine_facilities,
    facilities_from_osm,
    facility_access,
    facility_shapes,
)
from lifecircle.io import load_gdf, save_gdf
from lifecircle.prepare import AreaRequest, prepare_area
from tests.conftest import LUJIAZUI

CRS = "EPSG:32651"


def _entrances(rows: list[tuple[int, dict[str, str], tuple[float, float]]]) -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame(
        {"osm_id": [r[0] for r in rows], "tags": [r[1] for r in rows]},
        geometry=[shapely.Point(r[2]) for r in rows],
        crs=CRS,
    )


def test_entrances_are_read_from_the_osm_file(lujiazui_osm) -> None:  # type: ignore[no-untyped-def]
    # independent count: the XML's nodes with an entrance tag
    root = ET.parse(LUJIAZUI).getroot()
    expected = {
        int(n.get("id", "0")): float(n.get("lon", "nan"))
        for n in root.iter("node")
        if any(t.get("k") == "entrance" for t in n.iter("tag"))
    }
    ent = lujiazui_osm.entrances
    assert len(expected) == 16
    assert dict(zip(ent["osm_id"], ent.geometry.x, strict=True)) == pytest.approx(expected)
    assert ent.crs.to_epsg() == 4326
    assert all("entrance" in t for t in ent["tags"])


def test_access_by_hand() -> None:
    # 0: a point; 1: a square with an entrance on its edge and one 3 m outside;
    # 2: a square whose only entrance is 10 m away, another private, another an exit;
    # 3: two squares (a multipolygon) with no entrance; 4: a square with a courtyard hole
    fac = gpd.GeoDataFrame(
        {"source_id": ["p", "a", "b", "m", "h"]},
        geometry=[
            shapely.Point(0, 0),
            shapely.box(100, 0, 200, 100),
            shapely.box(300, 0, 400, 100),
            shapely.MultiPolygon([shapely.box(500, 0, 510, 10), shapely.box(520, 0, 530, 10)]),
            shapely.Polygon(
                [(600, 0), (700, 0), (700, 100), (600, 100)],
                [[(640, 40), (660, 40), (660, 60), (640, 60)]],
            ),
        ],
        crs=CRS,
        index=pd.Index([10, 11, 12, 13, 14], name="facility_id"),
    )
    ent = _entrances(
        [
            (1, {"entrance": "main"}, (100, 50)),
            (2, {"entrance": "yes"}, (150, 103)),
            (3, {"entrance": "yes"}, (300, -10)),
            (4, {"entrance": "yes", "access": "private"}, (350, 0)),
            (5, {"entrance": "exit"}, (400, 50)),
            (6, {"entrance": "yes", "railway": "subway_entrance"}, (350, 100)),
            (7, {"entrance": "yes"}, (650, 50)),  # inside the hole: lies in no polygon
            (8, {"entrance": "main"}, (150, 50)),  # a building door deep inside the grounds
            (9, {"entrance": "yes"}, (302, 50)),  # 2 m inside square b's fence: a gate
        ]
    )
    acc = facility_access(fac, ent, crs=CRS, tolerance_m=5.0)
    rows = list(zip(acc["facility_id"], acc["access"], acc["entrance_id"], strict=True))
    assert rows == [
        (10, "point", -1),
        (11, "entrance", 1),
        (11, "entrance", 2),
        (12, "entrance", 9),
        (13, "outline", -1),
        (14, "outline", -1),
    ]
    assert acc.geometry.iloc[0].equals(shapely.Point(0, 0))
    assert acc.geometry.iloc[2].equals(shapely.Point(150, 103))
    assert acc.geometry.iloc[3].equals(shapely.Point(302, 50))
    assert acc.geometry.iloc[4].geom_type == "MultiLineString"
    assert acc.geometry.iloc[4].length == pytest.approx(80.0)
    # the courtyard is not a way in: only the exterior ring
    assert acc.geometry.iloc[5].length == pytest.approx(400.0)
    assert list(acc["source_id"]) == ["p", "a", "a", "b", "m", "h"]
    # without gate 9, square b is reached from its outline: from a point 10 m south of it the
    # outline is 10 m away, its centre 60 m
    no_gate = facility_access(fac, ent.loc[ent["osm_id"] != 9], crs=CRS, tolerance_m=5.0)
    b = no_gate.loc[no_gate["facility_id"] == 12]
    assert b["access"].tolist() == ["outline"]
    outline = b.geometry.iloc[0]
    assert outline.geom_type == "LineString"
    assert outline.length == pytest.approx(400.0)
    south = shapely.Point(350, -10)
    assert outline.distance(south) == pytest.approx(10.0)
    assert shapely.centroid(fac.geometry.loc[12]).distance(south) == pytest.approx(60.0)
    # a wider tolerance takes the entrance 10 m out as well
    wide = facility_access(fac, ent, crs=CRS, tolerance_m=10.0)
    assert wide.loc[wide["facility_id"] == 12, "entrance_id"].tolist() == [3, 9]
    with pytest.raises(InputError, match="tolerance_m"):
        facility_access(fac, ent, crs=CRS, tolerance_m=-1.0)


def test_access_round_trip_keeps_mixed_geometry(tmp_path: Path) -> None:
    fac = gpd.GeoDataFrame(
        {"source_id": ["p", "a", "m"]},
        geometry=[
            shapely.Point(0, 0),
            shapely.box(100, 0, 200, 100),
            shapely.MultiPolygon([shapely.box(500, 0, 510, 10), shapely.box(520, 0, 530, 10)]),
        ],
        crs=CRS,
    )
    ent = _entrances([(9, {"entrance": "yes"}, (100, 50))])
    acc = facility_access(fac, ent, crs=CRS)
    assert set(acc.geom_type) == {"Point", "MultiLineString"}
    fac2 = fac.iloc[:2].copy()
    acc = pd.concat([acc, facility_access(fac2, ent.iloc[:0], crs=CRS)], ignore_index=True)
    acc = gpd.GeoDataFrame(acc, crs=CRS)
    assert set(acc.geom_type) == {"Point", "LineString", "MultiLineString"}
    path = save_gdf(acc, tmp_path / "facility_access.gpkg")
    back = load_gdf(path)
    assert list(back.geom_type) == list(acc.geom_type)
    assert back.geometry.geom_equals_exact(acc.geometry, 1e-9).all()
    assert back["facility_id"].tolist() == acc["facility_id"].tolist()
    assert back["entrance_id"].tolist() == acc["entrance_id"].tolist()


def test_lujiazui_polygon_facilities_are_reached_from_outline_or_entrance(  # type: ignore[no-untyped-def]
    lujiazui_osm,
) -> None:
    fac = combine_facilities([facilities_from_osm(lujiazui_osm.features)]).to_crs(CRS)
    shapes = facility_shapes(fac, lujiazui_osm.features)
    assert shapes.geom_type.isin(["Polygon", "MultiPolygon"]).all()  # all 15 are mapped areas
    acc = facility_access(shapes, lujiazui_osm.entrances, crs=CRS)
    assert acc["facility_id"].nunique() == len(fac) == 15
    # the only entrance within 5 m of a facility outline was the Shanghai Tower's (node
    # 8948895828), and the tower is no facility (a tourism=attraction office tower): every
    # facility is reached from its outline
    assert (acc["access"] == "outline").all()
    ents = lujiazui_osm.entrances.to_crs(CRS).geometry
    assert int((ents.apply(lambda p: shapes.boundary.distance(p).min()) <= 5.0).sum()) == 0
    # and no entrance lies inside a facility polygon either
    assert int(ents.apply(lambda p: shapes.contains(p).any()).sum()) == 0
    # every outline is the polygon's exterior: the interior point lies 9-241 m inside it
    outlines = acc.loc[acc["access"] == "outline"].set_index("facility_id").geometry
    inside_m = fac.geometry.loc[outlines.index].distance(outlines, align=True)
    assert (inside_m > 5.0).all()
    assert shapely.covers(shapes.geometry.loc[outlines.index].buffer(0.01), outlines).all()


def test_scenario_access_follows_the_changed_facilities() -> None:
    fac = gpd.GeoDataFrame(
        {
            "category": ["school", "health"],
            "subtype": ["primary", "hospital"],
            "name": ["a", "b"],
            "source": "osm",
            "source_id": ["way/1", "way/2"],
        },
        geometry=[shapely.Point(150, 50), shapely.Point(0, 0)],
        crs=CRS,
    )
    shapes = fac.copy()
    shapes.geometry = [shapely.box(100, 0, 200, 100), shapely.Point(0, 0)]
    access = facility_access(shapes, _entrances([]), crs=CRS)
    add = gpd.GeoDataFrame(
        {"category": ["elderly_care", "culture"]},
        geometry=[shapely.box(1000, 0, 1010, 10), shapely.Point(2000, 0)],
        crs=CRS,
    )
    new = change_facilities(fac, add=add, remove=pd.DataFrame({"source_id": ["way/1"]}))
    got = change_facility_access(access, new, add=add)
    assert new["source_id"].tolist() == ["way/2", "scenario/0", "scenario/1"]
    rows = list(zip(got["facility_id"], got["access"], got.geom_type, strict=True))
    assert rows == [(0, "point", "Point"), (1, "outline", "LineString"), (2, "point", "Point")]
    assert got.geometry.iloc[1].length == pytest.approx(40.0)
    assert np.allclose(got.geometry.iloc[2].coords[0], (2000, 0))


def test_prepared_area_has_the_access_layer() -> None:
    bbox = "121.495,31.228,121.512,31.243"
    first = prepare_area(AreaRequest(bbox=bbox, osm_file=LUJIAZUI, name="accesstest"))
    again = prepare_area(AreaRequest(bbox=bbox, osm_file=LUJIAZUI, name="accesstest"))
    assert again.manifest["created"] == first.manifest["created"]  # loaded from the cache
    for area in (first, again):
        acc = area.facility_access
        assert acc is not None
        assert set(acc["facility_id"]) == set(area.facilities.index)
        assert set(acc["access"]) <= {"point", "entrance", "outline"}
        assert acc.crs == area.facilities.crs
    assert list(again.facility_access.geom_type) == list(first.facility_access.geom_type)
    assert (first.folder / "facility_access.gpkg").is_file()
    info = first.manifest["facility_access"]
    assert (
        info["polygons"]
        == first.facility_access.loc[
            first.facility_access["access"] != "point", "facility_id"
        ].nunique()
    )


def test_no_facilities_gives_an_empty_access_layer() -> None:
    """An extract without facilities (the Porto Alegre benchmark) crashed the build."""
    empty = gpd.GeoDataFrame({"source_id": []}, geometry=gpd.GeoSeries([], crs=CRS), crs=CRS)
    ent = gpd.GeoDataFrame(
        {"osm_id": [7], "tags": [{"entrance": "main"}]}, geometry=[shapely.Point(0, 0)], crs=CRS
    )
    acc = facility_access(empty, ent, crs=CRS)
    assert len(acc) == 0
    assert "facility_id" in acc.columns
