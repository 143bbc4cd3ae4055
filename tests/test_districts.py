from __future__ import annotations

import pytest

from lifecircle.districts import get_district, list_districts
from lifecircle.errors import InputError


@pytest.mark.parametrize("name", ["pudong", "Pudong", "浦东", "浦东新区", "310115"])
def test_aliases(name: str) -> None:
    d = get_district(name)
    assert d.key == "pudong"
    assert d.crs == "EPSG:32651"
    assert d.boundary.datum == "gcj02"


def test_all_sixteen_shanghai_districts_are_data_entries() -> None:
    assert len(list_districts()) == 16
    assert get_district("黄浦区").adcode == "310101"


def test_unknown_district_lists_known_ones() -> None:
    with pytest.raises(InputError, match=r"unknown district .atlantis.*pudong"):
        get_district("atlantis")


@pytest.mark.parametrize(
    ("key", "count"),
    [
        ("pudong", 36),
        ("huangpu", 10),
        ("xuhui", 13),
        ("changning", 10),
        ("jingan", 14),
        ("putuo", 10),
        ("hongkou", 8),
        ("yangpu", 12),
    ],
)
def test_central_districts_have_their_town_level_units(key: str, count: int) -> None:
    """Counts from the data README: the 113-unit file filtered by `district`, Pudong's 36."""
    import geopandas as gpd

    from lifecircle.prepare import _zones_layer
    from tests.conftest import DATA_DIR

    district = get_district(key)
    units = _zones_layer(district, district.crs)
    assert units is not None
    assert len(units) == count
    assert units["zone"].is_unique
    raw = gpd.read_file(
        DATA_DIR
        / "shanghai"
        / "boundaries"
        / "shanghai_8_districts_113_streets_towns_osm_wgs84.geojson"
    )
    mine = raw.loc[raw["district"] == district.name_zh]
    assert set(units["zone"]) == set(mine["official_control_name_2023"])
    assert set(units["code"]) == set(mine["official_control_code_2023"].astype(str))
    # every unit is a 街道 or a 镇 by its code, and the code agrees with the name
    for name, kind in zip(units["zone"], units["kind"], strict=True):
        assert kind == ("subdistrict" if name.endswith("街道") else "town"), name


def test_districts_without_unit_files_have_no_units() -> None:
    from lifecircle.prepare import _zones_layer

    assert _zones_layer(get_district("minhang"), "EPSG:32651") is None
