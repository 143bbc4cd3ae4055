from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely

from lifecircle.errors import CRSError, InputError
from lifecircle.io import read_table
from lifecircle.zones import (
    assign_units,
    classify_unit,
    prepare_user_zones,
    ring_polygons,
    unit_table,
    user_zone_membership,
    user_zone_tables,
    zone_membership,
)
from tests.conftest import DATA_DIR, _session_cache

CRS = "EPSG:32651"

AREA = shapely.box(0, 0, 10_000, 10_000)


def test_pudong_units_are_classified() -> None:
    units = unit_table(read_table(DATA_DIR / "pudong" / "admin" / "pudong_streets_2023.csv"))
    counts = units["kind"].value_counts().to_dict()
    assert counts == {"town": 24, "subdistrict": 12, "farm": 3, "development_zone": 3}
    assert classify_unit("陆家嘴街道") == "subdistrict"
    assert classify_unit("三林镇") == "town"


def test_user_zones_with_rings() -> None:
    zones = gpd.GeoDataFrame(
        {"name": ["dz"]}, geometry=[shapely.box(1000, 1000, 2000, 2000)], crs="EPSG:32651"
    )
    out = prepare_user_zones(zones, area=AREA, crs="EPSG:32651", ring_m=500)
    assert out["zone"].tolist() == ["dz", "dz (ring 0.5 km)"]
    # ring of a 1 km square buffered by 500 m: four 1000 x 500 strips and four quarter discs
    assert out.geometry.iloc[1].area == pytest.approx(4 * 1000 * 500 + 3.14159 * 500**2, rel=2e-3)
    pts = gpd.GeoDataFrame(
        geometry=[shapely.Point(1500, 1500), shapely.Point(2200, 1500), shapely.Point(9000, 9000)],
        crs="EPSG:32651",
    )
    member = user_zone_membership(pts, out)
    assert member.values.tolist() == [[0, "dz", "zone"], [1, "dz (ring 0.5 km)", "ring"]]


def test_user_zone_errors_and_repair() -> None:
    with pytest.raises(CRSError, match="no CRS"):
        prepare_user_zones(
            gpd.GeoDataFrame(geometry=[shapely.box(0, 0, 1, 1)]), area=AREA, crs="EPSG:32651"
        )
    far = gpd.GeoDataFrame(geometry=[shapely.box(0, 0, 1, 1)], crs=4326)  # off Africa, not Shanghai
    with pytest.raises(InputError, match="no zone overlaps"):
        prepare_user_zones(far, area=AREA, crs="EPSG:32651")
    bowtie = shapely.Polygon([(1000, 1000), (2000, 2000), (2000, 1000), (1000, 2000)])
    assert not bowtie.is_valid
    with pytest.warns(RuntimeWarning, match="repaired 1 invalid"):
        out = prepare_user_zones(
            gpd.GeoDataFrame(geometry=[bowtie], crs="EPSG:32651"), area=AREA, crs="EPSG:32651"
        )
    assert out.geometry.is_valid.all()
    assert out.geometry.iloc[0].area == pytest.approx(500_000)


def test_rings_clip_to_area() -> None:
    rings = ring_polygons(shapely.Point(0, 0), (0, 3, 6), AREA, crs="EPSG:32651")
    assert rings["zone"].tolist() == ["0-3 km", "3-6 km"]
    assert rings.geometry.iloc[0].area == pytest.approx(3.1416 * 3000**2 / 4, rel=0.01)


def test_chinese_labels_render_with_the_cjk_font(tmp_path) -> None:  # type: ignore[no-untyped-def]
    import matplotlib.pyplot as plt
    import numpy as np
    from PIL import Image

    from lifecircle.plot import cjk_font

    font = cjk_font()
    assert font is not None, "install fonts-noto-cjk (make sysdeps)"
    fig, ax = plt.subplots(figsize=(2, 1))
    ax.set_axis_off()
    ax.text(0.5, 0.5, "陆家嘴街道", fontproperties=font, fontsize=20, ha="center", va="center")
    fig.savefig(tmp_path / "label.png")  # a missing glyph would warn, and warnings are errors
    plt.close(fig)
    ink = np.asarray(Image.open(tmp_path / "label.png").convert("L")) < 128
    assert ink.sum() > 200  # the characters were drawn, not empty boxes of a fallback font


# ----------------------------------------------------------------- administrative units


def test_twelve_digit_codes_decide_the_kind() -> None:
    """The data folder's official codes are 12 digits (town block = digits 7-9, village 000)."""
    units = gpd.read_file(
        DATA_DIR / "pudong" / "boundaries" / "pudong_36_streets_towns_osm_wgs84.geojson"
    )
    kinds = [
        classify_unit("", c) for c in units["official_control_code_2023"]
    ]  # no name: the code alone decides
    assert kinds.count("subdistrict") == 12
    assert kinds.count("town") == 24
    assert classify_unit("", "310115005000") == "subdistrict"  # 陆家嘴街道
    assert classify_unit("", "310115145000") == "town"  # 南汇新城镇
    assert classify_unit("", "310115403000") == "farm"  # 朝阳农场
    assert classify_unit("", "310115503000") == "development_zone"  # 张江高科技园区
    assert classify_unit("", "310115301000") == "township"  # 3xx: 乡 in the national scheme
    # a village-level code is not a town-level unit: the name decides
    assert classify_unit("高桥镇", "310115104001") == "town"
    # the code wins over a misleading name
    assert classify_unit("东海农场街道", "310115402") == "farm"


def _two_squares(codes: tuple[str, str]) -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame(
        {"zone": ["east", "west"], "code": list(codes)},
        geometry=[shapely.box(1000, 0, 2000, 1000), shapely.box(0, 0, 1000, 1000)],
        crs=CRS,
    )


def test_each_point_in_exactly_one_unit_with_a_border_rule() -> None:
    pts = gpd.GeoDataFrame(
        geometry=[
            shapely.Point(1500, 500),  # east inside
            shapely.Point(500, 500),  # west inside
            shapely.Point(1000, 500),  # on the shared border
            shapely.Point(0, 500),  # on west's outer outline
            shapely.Point(3000, 500),  # outside both
        ],
        index=[10, 11, 12, 13, 14],
        crs=CRS,
    )
    # west has the smaller code: the border point goes to west, whatever the file order
    units = _two_squares(("310115005000", "310115004000"))
    expected = ["east", "west", "west", "west", None]
    got = assign_units(pts, units)
    assert got.index.tolist() == [10, 11, 12, 13, 14]
    assert [None if pd.isna(v) else v for v in got] == expected
    got_rev = assign_units(pts, units.iloc[::-1])
    assert [None if pd.isna(v) else v for v in got_rev] == expected
    # swap the codes: the border point follows the smaller code to east
    swapped = assign_units(pts, _two_squares(("310115004000", "310115005000")))
    assert swapped.loc[12] == "east"


def test_overlapping_units_warn() -> None:
    units = gpd.GeoDataFrame(
        {"zone": ["a", "b"], "code": ["310115005000", "310115004000"]},
        geometry=[shapely.box(0, 0, 1000, 1000), shapely.box(500, 0, 1500, 1000)],
        crs=CRS,
    )
    pts = gpd.GeoDataFrame(geometry=[shapely.Point(750, 500)], crs=CRS)
    with pytest.warns(RuntimeWarning, match="units overlap: 1 point"):
        assert assign_units(pts, units).tolist() == ["b"]


@pytest.fixture(scope="module")
def lujiazui_prepared(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    from lifecircle.prepare import AreaRequest, prepare_area

    with pytest.MonkeyPatch.context() as mp:  # module scope: set what the autouse fixture sets
        mp.setenv("LIFECIRCLE_DATA_DIR", str(DATA_DIR))
        mp.setenv("LIFECIRCLE_CACHE_DIR", str(_session_cache(tmp_path_factory)))
        mp.setenv("LIFECIRCLE_OVERPASS_URL", "http://127.0.0.1:9/api")
        mp.setenv("LIFECIRCLE_NOMINATIM_URL", "http://127.0.0.1:9/")
        return prepare_area(AreaRequest(district="pudong"))


def test_lujiazui_residents_fall_in_the_real_units(lujiazui_prepared) -> None:  # type: ignore[no-untyped-def]
    """The data folder's 36 units name Lujiazui's residents; checked by brute force."""
    prepared = lujiazui_prepared
    units = prepared.zones
    assert units is not None
    assert len(units) == 36
    assert set(units["kind"]) == {"subdistrict", "town"}
    res = prepared.residents
    labels = assign_units(res, units)
    # independent: every resident against every unit polygon, read again from the file
    raw = gpd.read_file(
        DATA_DIR / "pudong" / "boundaries" / "pudong_36_streets_towns_osm_wgs84.geojson"
    ).to_crs(prepared.crs)
    brute: dict[str, float] = {}
    for pt, w in zip(res.geometry, res["weight"], strict=True):
        holders = [
            n
            for n, poly in zip(raw["official_control_name_2023"], raw.geometry, strict=True)
            if poly.covers(pt)
        ]
        assert len(holders) == 1  # no resident on a border or outside the 36 units here
        brute[holders[0]] = brute.get(holders[0], 0.0) + float(w)
    assert labels.notna().all()
    got = res["weight"].groupby(labels).sum().to_dict()
    assert set(got) == set(brute) == {"陆家嘴街道", "潍坊新村街道"}
    for name, w in brute.items():
        assert got[name] == pytest.approx(w, rel=1e-12)
    assert sum(got.values()) == pytest.approx(float(res["weight"].sum()), rel=1e-12)
    # 244 + 5 residential buildings, plus 4 + 5 landuse_infill points (residential land
    # without a mapped home: way/407443052 in Lujiazui, way/497032156 in Weifang)
    assert (labels == "陆家嘴街道").sum() == 248
    assert (labels == "潍坊新村街道").sum() == 10
    assert ((labels == "陆家嘴街道") & (res["basis"] == "buildings")).sum() == 244


@pytest.mark.filterwarnings("ignore:no elderly_care facilities:RuntimeWarning")
def test_lujiazui_coverage_names_units_and_units_without_network(lujiazui_prepared) -> None:  # type: ignore[no-untyped-def]
    from lifecircle.pipeline import CoverageOptions, compute_coverage

    frames = compute_coverage(lujiazui_prepared, CoverageOptions(isochrones=False))
    summary, residents = frames.summary, frames.residents
    z = summary["zones"]
    admin = {u["zone"]: u for u in z["admin"]}
    assert set(admin) == {"陆家嘴街道", "潍坊新村街道"}
    assert admin["陆家嘴街道"]["code"] == "310115005000"
    assert admin["陆家嘴街道"]["kind"] == "subdistrict"
    total = float(residents["weight"].sum())
    assert sum(u["weight"] for u in z["admin"]) == pytest.approx(total, abs=0.01)
    # independent coverage of 陆家嘴街道 for school: weights of covered residents inside the polygon
    poly = lujiazui_prepared.zones.set_index("zone").geometry["陆家嘴街道"]
    inside = np.array([poly.covers(p) for p in residents.geometry])
    w = residents["weight"].to_numpy()
    cov = residents["covered_school"].to_numpy(dtype=bool)
    assert admin["陆家嘴街道"]["school"]["coverage"] == pytest.approx(
        w[inside & cov].sum() / w[inside].sum(), abs=1e-6
    )
    # the other 34 units hold neither residents nor walking network in the Lujiazui extract
    assert len(z["admin_units_without_residents"]) == 34
    assert z["admin_units_without_network"] == z["admin_units_without_residents"]
    assert {"洋泾街道", "塘桥街道", "花木街道"} <= set(z["admin_units_without_network"])
    status = {u["zone"]: u["status"] for u in z["admin_units"]}
    assert status["陆家嘴街道"] == "residents"
    assert status["洋泾街道"] == "no network"


# ----------------------------------------------------------------- user zones


def _frame(points: list[tuple[float, float]], weights: list[float], covered: list[bool]):  # type: ignore[no-untyped-def]
    return gpd.GeoDataFrame(
        {
            "weight": weights,
            "covered_school": covered,
            "covered_all_categories": covered,
            "dist_school_m": [100.0 if c else 2000.0 for c in covered],
        },
        geometry=[shapely.Point(x, y) for x, y in points],
        crs=CRS,
    )


def test_rings_exclude_every_user_zone() -> None:
    """Two touching 1 km squares with 500 m rings; memberships and coverage worked out by hand."""
    zones = gpd.GeoDataFrame(
        {"name": ["z1", "z2"]},
        geometry=[shapely.box(0, 0, 1000, 1000), shapely.box(1000, 0, 2000, 1000)],
        crs=CRS,
    )
    user = prepare_user_zones(zones, area=AREA, crs=CRS, ring_m=500)
    res = _frame(
        [
            (700, 500),  # p0 in z1, 300 m from z2
            (1300, 500),  # p1 in z2, 300 m from z1
            (-200, 500),  # p2 ring of z1 only
            (2200, 500),  # p3 ring of z2 only
            (500, 1200),  # p4 ring of z1 only (538 m from z2)
            (1000, 1200),  # p5 in both rings (200 m from each)
            (1000, 500),  # p6 on the shared border: in both zones, in no ring
        ],
        [1, 2, 3, 4, 5, 6, 7],
        [True, False, False, True, True, False, True],
    )
    member = user_zone_membership(res, user)
    got = {
        z: sorted(member.loc[member["zone"] == z, "point"].tolist())
        for z in pd.unique(member["zone"])
    }
    assert got == {
        "z1": [0, 6],
        "z2": [1, 6],
        "z1 (ring 0.5 km)": [2, 4, 5],
        "z2 (ring 0.5 km)": [3, 5],
    }
    t_in, t_ring = user_zone_tables(res, user, ["school"])
    school = t_ring.loc[t_ring["category"] == "school"].set_index("zone")
    assert school.loc["z1 (ring 0.5 km)", "weight"] == 3 + 5 + 6
    assert school.loc["z1 (ring 0.5 km)", "coverage"] == pytest.approx(5 / 14)
    assert school.loc["z2 (ring 0.5 km)", "coverage"] == pytest.approx(4 / 10)
    inner = t_in.loc[t_in["category"] == "school"].set_index("zone")
    assert inner.loc["z1", "coverage"] == pytest.approx((1 + 7) / (1 + 7))
    assert inner.loc["z2", "coverage"] == pytest.approx(7 / (2 + 7))


def test_overlapping_user_zones_count_a_point_in_both() -> None:
    zones = gpd.GeoDataFrame(
        {"name": ["a", "b"]},
        geometry=[shapely.box(0, 0, 1000, 1000), shapely.box(500, 0, 1500, 1000)],
        crs=CRS,
    )
    with pytest.warns(RuntimeWarning, match=r"overlapping zones a / b \(0.50 km²\)"):
        user = prepare_user_zones(zones, area=AREA, crs=CRS, ring_m=300)
    res = _frame([(250, 500), (750, 500), (1250, 500)], [1, 2, 4], [True, False, True])
    t_in, _ = user_zone_tables(res, user, ["school"])
    school = t_in.loc[t_in["category"] == "school"].set_index("zone")
    assert school.loc["a", "weight"] == 1 + 2
    assert school.loc["b", "weight"] == 2 + 4
    assert school.loc["a", "coverage"] == pytest.approx(1 / 3)
    assert school.loc["b", "coverage"] == pytest.approx(4 / 6)


def test_zhangjiang_ring_holds_no_jinqiao_resident() -> None:
    """The real touching towns: a grid of residents, membership checked by brute force."""
    towns = gpd.read_file(DATA_DIR / "pudong" / "boundaries" / "pudong_4_towns_osm_wgs84.geojson")
    towns = towns.loc[towns["referenceAdminName"].isin(["张江镇", "金桥镇"])].to_crs(CRS)
    polys = dict(zip(towns["referenceAdminName"], towns.geometry, strict=True))
    area = shapely.box(*shapely.union_all(list(polys.values())).buffer(5000).bounds)
    user = prepare_user_zones(
        towns, area=area, crs=CRS, name_field="referenceAdminName", ring_m=2000
    )
    x0, y0, x1, y1 = shapely.union_all(list(polys.values())).buffer(2500).bounds
    xs, ys = np.meshgrid(np.arange(x0, x1, 400.0), np.arange(y0, y1, 400.0))
    pts = gpd.GeoDataFrame(geometry=shapely.points(xs.ravel(), ys.ravel()), crs=CRS)
    member = user_zone_membership(pts, user)
    ring_zj = set(member.loc[member["zone"] == "张江镇 (ring 2 km)", "point"])
    in_jq = {i for i, p in zip(pts.index, pts.geometry, strict=True) if polys["金桥镇"].covers(p)}
    near_zj = {
        i
        for i, p in zip(pts.index, pts.geometry, strict=True)
        if 0 < polys["张江镇"].distance(p) < 2000
    }
    assert len(in_jq & near_zj) > 50  # many Jinqiao residents lie within 2 km of Zhangjiang
    assert not ring_zj & in_jq
    # brute force: the ring holds exactly the points within 2 km of Zhangjiang and in no town
    # (points within 10 m of the 2 km line are left out: the buffer is a polygon approximation)
    brute = {
        i
        for i, p in zip(pts.index, pts.geometry, strict=True)
        if 0 < polys["张江镇"].distance(p) < 2000 and not any(q.covers(p) for q in polys.values())
    }
    edge = {
        i
        for i, p in zip(pts.index, pts.geometry, strict=True)
        if abs(polys["张江镇"].distance(p) - 2000) < 10
    }
    assert ring_zj - edge == brute - edge
    assert set(member.loc[member["zone"] == "金桥镇", "point"]) == in_jq


def test_zone_membership_lists_every_zone_of_a_point() -> None:
    zones = gpd.GeoDataFrame(
        {"zone": ["a", "b"]},
        geometry=[shapely.box(0, 0, 10, 10), shapely.box(5, 0, 15, 10)],
        crs=CRS,
    )
    pts = gpd.GeoDataFrame(geometry=[shapely.Point(7, 5), shapely.Point(1, 1)], crs=CRS)
    m = zone_membership(pts, zones)
    assert m.values.tolist() == [[0, "a"], [1, "a"], [0, "b"]]
