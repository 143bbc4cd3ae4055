from __future__ import annotations

import geopandas as gpd
import pandas as pd
import pytest
import shapely

from lifecircle.errors import InputError
from lifecircle.facilities import (
    amap_mapping,
    classify_tags,
    deduplicate,
    default_tag_rules,
    facilities_from_osm,
    facilities_from_table,
    parse_tag_table,
)
from lifecircle.io import read_table
from tests.conftest import POIS


@pytest.mark.parametrize(
    ("tags", "expected"),
    [
        ({"amenity": "kindergarten", "name": "东园幼儿园"}, ("school", "kindergarten")),
        ({"amenity": "school", "name": "崂山小学"}, ("school", "primary")),
        ({"amenity": "school", "name": "金陵中学"}, ("school", "secondary")),
        ({"amenity": "school", "name": "洋泾菊园实验学校"}, ("school", "primary+secondary")),
        ({"amenity": "school", "name": "某中学宿舍区"}, None),
        (
            {"building": "yes", "name": "花木社区卫生服务中心"},
            ("health", "community_health_centre"),
        ),
        ({"amenity": "hospital", "name": "上海东方医院"}, ("health", "hospital")),
        ({"amenity": "clinic", "name": "某口腔诊所"}, None),
        ({"amenity": "nursing_home"}, ("elderly_care", "nursing_home")),
        ({"name": "浦东新区敬老院"}, ("elderly_care", "nursing_home")),
        ({"name": "陆家嘴长者照护之家"}, ("elderly_care", "day_care")),
        (
            {"social_facility": "day_care", "social_facility:for": "senior"},
            ("elderly_care", "day_care"),
        ),
        ({"name": "塘桥社区文化活动中心"}, ("culture", "community_centre")),
        ({"amenity": "library"}, ("culture", "library")),
        ({"tourism": "museum"}, ("culture", "museum")),
        ({"amenity": "toilets", "name": "卫生间"}, None),
        ({"highway": "residential", "name": "老太平弄"}, None),
    ],
)
def test_classify(tags: dict[str, str], expected: tuple[str, str] | None) -> None:
    assert classify_tags(tags, default_tag_rules()) == expected


def test_tag_table_is_validated() -> None:
    with pytest.raises(InputError, match="unknown category 'shops'"):
        parse_tag_table("category,subtype,key,value,name_pattern\nshops,x,shop,*,\n")


def test_lujiazui_osm_facilities(lujiazui_osm) -> None:  # type: ignore[no-untyped-def]
    fac = facilities_from_osm(lujiazui_osm.features)
    counts = fac["category"].value_counts().to_dict()
    # the data README: 8 schools/kindergartens, 3 hospitals/clinics, 1 elderly association,
    # 4 cultural (library, museums) plus the Fosun arts centre
    assert counts == {"school": 8, "health": 3, "elderly_care": 1, "culture": 5}
    assert fac.geom_type.eq("Point").all()
    assert set(fac["source_id"].str.split("/").str[0]) == {"way"}


def test_amap_import_and_dedup(lujiazui_osm) -> None:  # type: ignore[no-untyped-def]
    table = read_table(POIS / "shanghai_school.csv")
    pois = facilities_from_table(table, amap_mapping(), datum="wgs84")
    assert len(pois) > 4000
    assert {"kindergarten", "primary", "secondary"} <= set(pois["subtype"])
    assert "高等院校" not in " ".join(pois["subtype"])  # universities dropped
    osm = facilities_from_osm(lujiazui_osm.features)
    kept, dropped = deduplicate(osm, pois, crs="EPSG:32651")
    assert dropped >= 3  # the same Lujiazui schools are in both sources
    assert len(kept) == len(pois) - dropped


def test_dedup_by_hand() -> None:
    osm = gpd.GeoDataFrame(
        {
            "category": ["school"],
            "subtype": ["primary"],
            "name": ["崂山小学"],
            "source": "osm",
            "source_id": "way/1",
        },
        geometry=[shapely.Point(121.5, 31.2)],
        crs=4326,
    )
    pois = gpd.GeoDataFrame(
        {
            "category": ["school", "school", "health"],
            "subtype": ["primary"] * 3,
            "name": ["上海市崂山小学", "金陵中学", "崂山小学"],
            "source": "p",
            "source_id": "p",
        },
        geometry=[shapely.Point(121.5003, 31.2)] * 3,
        crs=4326,
    )
    kept, dropped = deduplicate(osm, pois, crs="EPSG:32651")
    assert dropped == 1
    assert kept["name"].tolist() == ["金陵中学", "崂山小学"]


def test_gcj02_import_moves_points() -> None:
    table = pd.DataFrame(
        {"name": ["a"], "type": ["科教文化服务;学校;小学"], "lat": ["31.2400"], "lon": ["121.5050"]}
    )
    wgs = facilities_from_table(table, amap_mapping(), datum="wgs84")
    gcj = facilities_from_table(table, amap_mapping(), datum="gcj02")
    shift = wgs.to_crs(32651).distance(gcj.to_crs(32651)).iloc[0]
    assert 300 < shift < 800


def test_bad_csv_columns_name_the_fix() -> None:
    table = pd.DataFrame({"name": ["a"], "type": ["x"], "y": ["1"], "x": ["2"]})
    with pytest.raises(InputError, match="--pois-lon"):
        facilities_from_table(table, amap_mapping())
