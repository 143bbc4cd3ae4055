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
