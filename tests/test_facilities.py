from __future__ import annotations

import geopandas as gpd
import pandas as pd
import pytest
import shapely

from lifecircle.errors import InputError
from lifecircle.facilities import (
    COMMUNITY_CULTURE_SUBTYPES,
    TOURISM_SUBTYPES,
    amap_mapping,
    classify_many,
    classify_tags,
    deduplicate,
    default_tag_rules,
    facilities_from_osm,
    facilities_from_table,
    is_service_place,
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
        ({"amenity": "school", "name": "某某学校"}, ("school", "school")),
        # the stage from OSM tags (isced:level, grades) before the name
        ({"amenity": "school", "isced:level": "1"}, ("school", "primary")),
        ({"amenity": "school", "isced:level": "2;3"}, ("school", "secondary")),
        ({"amenity": "school", "isced:level": "1;2"}, ("school", "primary+secondary")),
        ({"amenity": "school", "isced:level": "0"}, ("school", "kindergarten")),
        (
            {"amenity": "school", "grades": "1-9", "name": "某某学校"},
            ("school", "primary+secondary"),
        ),
        ({"amenity": "school", "grades": "10-12"}, ("school", "secondary")),
        # training, driving, language schools and universities are not schools
        ({"amenity": "school", "name": "申浦驾校"}, None),
        ({"amenity": "school", "name": "新东方英语培训学校"}, None),
        ({"amenity": "driving_school", "name": "浦东驾校"}, None),
        ({"amenity": "language_school", "name": "某外语学校"}, None),
        ({"amenity": "university", "name": "复旦大学"}, None),
        ({"amenity": "school", "name": "复旦大学（张江校区）"}, None),
        ({"amenity": "school", "name": "上海思博职业技术学院"}, None),
        ({"amenity": "school", "name": "上海科技大学附属学校"}, ("school", "school")),
        ({"amenity": "school", "name": "华东师范大学第二附属中学"}, ("school", "secondary")),
        ({"amenity": "kindergarten", "name": "阳光实验早教园"}, None),
        # health: community health centres by name on service places only
        (
            {"amenity": "clinic", "name": "花木社区卫生服务中心"},
            ("health", "community_health_centre"),
        ),
        (
            {"amenity": "hospital", "name": "陆家嘴社区卫生服务中心"},
            ("health", "community_health_centre"),
        ),
        ({"building": "yes", "name": "花木社区卫生服务中心"}, None),
        ({"amenity": "hospital", "name": "上海东方医院"}, ("health", "hospital")),
        ({"amenity": "clinic", "name": "某口腔诊所"}, None),
        ({"amenity": "hospital", "name": "上海市口腔医院"}, None),
        ({"amenity": "dentist", "name": "某牙科"}, None),
        ({"amenity": "veterinary", "name": "宠物医院"}, None),
        ({"amenity": "hospital", "name": "浦东新区精神卫生中心"}, None),
        # transport stops, shops and restaurants named after facilities are not facilities
        ({"highway": "bus_stop", "name": "东方医院"}, None),
        ({"highway": "bus_stop", "public_transport": "platform", "name": "东方医院"}, None),
        ({"railway": "station", "name": "浦东图书馆"}, None),
        ({"public_transport": "station", "name": "浦东图书馆"}, None),
        ({"railway": "station", "name": "书院"}, None),
        ({"amenity": "restaurant", "name": "长者食堂"}, None),
        ({"shop": "books", "name": "某图书馆书店"}, None),
        ({"amenity": "parking", "name": "东方医院停车场"}, None),
        # elderly care: the standard's facilities, not associations or senior colleges
        ({"amenity": "nursing_home"}, ("elderly_care", "nursing_home")),
        ({"name": "浦东新区敬老院"}, None),
        (
            {"amenity": "social_facility", "name": "浦东新区敬老院"},
            ("elderly_care", "nursing_home"),
        ),
        (
            {"amenity": "social_facility", "name": "陆家嘴长者照护之家"},
            ("elderly_care", "care_home"),
        ),
        (
            {"amenity": "social_facility", "name": "塘桥街道综合为老服务中心"},
            ("elderly_care", "service_centre"),
        ),
        (
            {"social_facility": "day_care", "social_facility:for": "senior"},
            ("elderly_care", "day_care"),
        ),
        ({"social_facility": "day_care", "social_facility:for": "child"}, None),
        (
            {"social_facility": "group_home", "social_facility:for": "senior"},
            ("elderly_care", "care_home"),
        ),
        ({"social_facility": "nursing_home"}, ("elderly_care", "nursing_home")),
        ({"social_facility": "nursing_home", "social_facility:for": "disabled"}, None),
        ({"building": "yes", "name": "陆家嘴街道老年协会"}, None),
        ({"office": "association", "name": "陆家嘴街道老年协会"}, None),
        ({"amenity": "community_centre", "name": "陆家嘴街道老年协会"}, None),
        ({"amenity": "college", "name": "上海市浦东新区老年大学"}, None),
        ({"amenity": "social_facility", "name": "上海老年大学浦东分校"}, None),
        # culture: community culture; tourism venues a separate sub-type family
        ({"name": "塘桥社区文化活动中心"}, None),
        (
            {"amenity": "community_centre", "name": "塘桥社区文化活动中心"},
            ("culture", "community_centre"),
        ),
        (
            {"leisure": "sports_centre", "name": "航头镇社区文化活动中心"},
            ("culture", "community_centre"),
        ),
        (
            {"amenity": "community_centre", "name": "潍坊老年活动中心"},
            ("culture", "community_centre"),
        ),
        ({"amenity": "library"}, ("culture", "library")),
        ({"amenity": "arts_centre"}, ("culture", "arts_centre")),
        ({"tourism": "museum"}, ("culture", "tourism_museum")),
        ({"tourism": "gallery"}, ("culture", "tourism_gallery")),
        ({"tourism": "attraction", "name": "城隍庙"}, None),  # a landmark, not a facility
        ({"amenity": "toilets", "name": "卫生间"}, None),
        ({"highway": "residential", "name": "老太平弄"}, None),
    ],
)
def test_classify(tags: dict[str, str], expected: tuple[str, str] | None) -> None:
    assert classify_tags(tags, default_tag_rules()) == expected


def test_tourism_subtypes_are_the_tables_tourism_rows() -> None:
    rules = default_tag_rules()
    culture = {r.subtype for r in rules if r.category == "culture"}
    assert set(TOURISM_SUBTYPES) == {s for s in culture if s.startswith("tourism_")}
    assert set(COMMUNITY_CULTURE_SUBTYPES) == culture - set(TOURISM_SUBTYPES)
    # every facility and exclusion row of the packaged table names its source
    assert all(r.source for r in rules)


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ("category,subtype,key,value,name_pattern\nshops,x,shop,*,\n", "unknown category 'shops'"),
        (
            "category,subtype,key,value,and_tags,name_pattern\nschool,x,amenity,school,isced,\n",
            "bad and_tags condition 'isced'",
        ),
        (
            "category,subtype,key,value,name_pattern\nservice_place,,,,x\n",
            "a service_place row needs a key",
        ),
        ("category,subtype,key,value,name_pattern\nschool,x,,,(\n", "bad regular expression"),
        ("category,subtype,key,value\nschool,x,amenity,school\n", "lacks columns"),
    ],
)
def test_tag_table_is_validated(table: str, message: str) -> None:
    with pytest.raises(InputError, match=message.replace("(", r"\(")) as info:
        parse_tag_table(table)
    assert "\n" not in str(info.value)


def test_old_five_column_tables_still_read() -> None:
    rules = parse_tag_table("category,subtype,key,value,name_pattern\nschool,,amenity,school,\n")
    assert classify_tags({"amenity": "school"}, rules) == ("school", "school")


def test_name_rules_need_a_service_place_in_an_edited_table() -> None:
    # a user table: one gate row, one name rule; the name alone never classifies
    rules = parse_tag_table(
        "category,subtype,key,value,name_pattern\n"
        "service_place,,amenity,clinic,\n"
        "health,chc,,,卫生服务中心\n"
    )
    assert classify_tags({"amenity": "clinic", "name": "花木社区卫生服务中心"}, rules) == (
        "health",
        "chc",
    )
    assert classify_tags({"highway": "bus_stop", "name": "花木社区卫生服务中心"}, rules) is None
    assert is_service_place({"amenity": "clinic"}, rules)
    assert not is_service_place({"building": "yes"}, rules)


# Every feature of the Lujiazui extract that is a facility, checked by hand against its
# tags (osm.org/way/<id>): the name alone makes none of them one.
LUJIAZUI_FACILITIES = {
    165023539: ("health", "hospital"),  # 上海东方医院, amenity=hospital
    957008798: ("health", "hospital"),  # 上海沃德医疗中心, amenity=hospital
    981198286: ("health", "hospital"),  # 上海市黄浦区中西医结合医院分院, amenity=hospital
    957008785: ("school", "kindergarten"),  # 东昌幼儿园, amenity=kindergarten
    957451723: ("school", "kindergarten"),  # 浦东新区东园幼儿园, amenity=kindergarten
    1198910501: ("school", "kindergarten"),  # 民办菊园幼儿园, building=kindergarten
    967279347: ("school", "primary"),  # 崂山小学
    957008800: ("school", "secondary"),  # 华东师范大学附属东昌中学
    1198532834: ("school", "secondary"),  # 金陵中学
    964254641: ("school", "primary+secondary"),  # 洋泾菊园实验学校(东园分部)
    1198910494: ("school", "primary+secondary"),  # 洋泾·菊园实验学校, grades=1-9
    964254608: ("culture", "library"),  # 陆家嘴图书馆, amenity=library
    520214798: ("culture", "arts_centre"),  # 复星艺术中心, amenity=arts_centre
    803292747: ("culture", "tourism_gallery"),  # 浦东美术馆, tourism=gallery
    965004721: ("culture", "tourism_museum"),  # 上海大自然野生昆虫馆, tourism=museum
}
# Named features that the old name-only rules took for facilities, and why they are not.
LUJIAZUI_NOT_FACILITIES = {
    957008779: "陆家嘴街道老年协会: building=yes, an association office",
    961069854: "浦东文化馆: landuse=commercial only, no service key",
    957008791: "华东师范大学附属东昌中学宿舍区: amenity=school, a dormitory",
    530696824: "十六铺码头: tourism=attraction on a ferry terminal (public_transport=station)",
    948057320: "unnamed building=kindergarten inside a kindergarten's grounds",
    957451722: "unnamed building=kindergarten inside a kindergarten's grounds",
    10691100: "上海环球金融中心: tourism=attraction on an office tower (review of issue 8)",
    53746506: "十六铺: tourism=attraction, a landmark",
    165792123: "上海中心大厦: tourism=attraction on an office tower",
    1333613410: "城隍庙: tourism=attraction, a temple",
}


def test_lujiazui_osm_facilities(lujiazui_osm) -> None:  # type: ignore[no-untyped-def]
    fac = facilities_from_osm(lujiazui_osm.features)
    got = {
        int(sid.split("/")[1]): (cat, sub)
        for sid, cat, sub in zip(fac["source_id"], fac["category"], fac["subtype"], strict=True)
    }
    assert got == LUJIAZUI_FACILITIES
    ids = set(lujiazui_osm.features["osm_id"])
    assert set(LUJIAZUI_NOT_FACILITIES) <= ids
    # no elderly-care facility of the standard is mapped in the extract
    assert "elderly_care" not in set(fac["category"])
    # an independent simple rule: the keyed facilities are exactly the features with a facility
    # key, or building=kindergarten
    keyed = lujiazui_osm.features.loc[
        [
            t.get("amenity") in {"school", "kindergarten", "hospital", "library", "arts_centre"}
            or t.get("tourism") in {"museum", "gallery", "attraction"}
            or t.get("building") == "kindergarten"
            for t in lujiazui_osm.features["tags"]
        ]
    ]
    assert set(keyed["osm_id"]) - set(LUJIAZUI_NOT_FACILITIES) == set(LUJIAZUI_FACILITIES)
    assert fac.geom_type.eq("Point").all()
    assert set(fac["source_id"].str.split("/").str[0]) == {"way"}


# Pudong POIs with amenity=school|kindergarten|hospital that are not facilities of the standard,
# checked one by one by name.
PUDONG_NOT_FACILITIES = {
    4735494025: "申浦驾校 (driving school)",
    5042033122: "上海老年大学浦东分校 (senior college)",
    881273412: "上海思博职业技术学院 (vocational college)",
    1256615298: "成才教育进修学院 (adult college)",
    445906526: "中国联通学院上海分院 (corporate college)",
    10267319: "中欧国际工商学院 (business school)",
    154726157: "上海英国外籍人员子女学校 (school for foreign nationals only)",
    333555885: "复旦大学（张江校区） (university)",
    369820756: "上海立信会计金融学院（浦东校区） (university)",
    710816583: "浦东振华外经职业技术学校 (vocational)",
    722388532: "技工学校 (vocational)",
    858778223: "上海海事大学港湾校区 (university)",
    959064120: "阳光实验早教园 (early-education centre)",
    1002174802: "上海民远学院 (college)",
    1082656205: "上海光华学院 (college)",
    1097608177: "振华外经职业技术学校 (vocational)",
    1240459192: "上海健康医学院 (university)",
    636304503: "南汇精神卫生中心 (psychiatric)",
    729540012: "浦东新区精神卫生中心 (psychiatric)",
    1429938664: "上海黄浦区精神卫生中心 (psychiatric)",
    957008791: "华东师范大学附属东昌中学宿舍区 (dormitory)",
    11272439: "浦东新区医疗急救中心停车场 (a car park tagged hospital)",
    347475849: "大树英语 (English training, review of issue 8)",
    896158756: "上海市医药学校 (vocational, review of issue 8)",
    1375783825: "上海市商贸旅游学校 (vocational, review of issue 8)",
    831693407: "上海市浦东新区农民中等专业学校 (vocational secondary)",
}


@pytest.fixture(scope="module")
def pudong_pois() -> gpd.GeoDataFrame:
    pois = gpd.read_file(POIS / "pudong_osm_pois_2026-05.geojson")
    pois["tags"] = [{k: str(v) for k, v in t.items() if v is not None} for t in pois["tags"]]
    return pois


def test_pudong_pois_by_hand(pudong_pois: gpd.GeoDataFrame) -> None:
    rules = default_tag_rules()
    found = [classify_tags(t, rules) for t in pudong_pois["tags"]]
    cat = pd.Series([f[0] if f else None for f in found], index=pudong_pois.index)
    amenity = pudong_pois["tags"].map(lambda t: t.get("amenity"))
    listed = pudong_pois["osm_id"].isin(list(PUDONG_NOT_FACILITIES))
    assert listed.sum() == len(PUDONG_NOT_FACILITIES)
    assert cat.loc[listed].isna().all()
    # independent rule: every other school/kindergarten is a school, hospital/clinic is health
    school_like = amenity.isin(["school", "kindergarten"]) & ~listed
    assert cat.loc[school_like].eq("school").all()
    named = pudong_pois["name"].fillna("")
    health_like = amenity.isin(["hospital", "clinic"]) & ~listed & ~named.str.contains("口腔|牙")
    assert cat.loc[health_like].eq("health").all()
    # the metro station 书院 is no library; stations, shops, banks, parks, colleges are nothing
    shuyuan = (pudong_pois["osm_id"] == 460584077) & (amenity.isna())
    assert shuyuan.sum() == 1
    assert cat.loc[shuyuan].isna().all()
    others = ~amenity.isin(["school", "kindergarten", "hospital", "clinic"])
    sports_centre = pudong_pois["tags"].map(lambda t: t.get("leisure") == "sports_centre")
    not_expected = others & ~sports_centre
    assert cat.loc[not_expected].isna().all(), pudong_pois.loc[not_expected & cat.notna(), "name"]
    # the only facility among sports centres is a community cultural activity centre
    hit = sports_centre & cat.notna()
    assert named.loc[hit].tolist() == ["航头镇社区文化活动中心"]
    counts = cat.value_counts().to_dict()
    n_health_dropped = sum(
        ("psychiatric" in w or "car park" in w) for w in PUDONG_NOT_FACILITIES.values()
    )
    n_school = int(amenity.isin(["school", "kindergarten"]).sum()) - (
        len(PUDONG_NOT_FACILITIES) - n_health_dropped
    )
    n_health = int(amenity.isin(["hospital", "clinic"]).sum()) - n_health_dropped
    n_health -= int((amenity.isin(["hospital", "clinic"]) & named.str.contains("口腔|牙")).sum())
    assert counts == {"school": n_school, "health": n_health, "culture": 1}


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


@pytest.mark.parametrize(
    ("type_path", "name", "expected"),
    [
        ("科教文化服务;学校;幼儿园", "东园幼儿园", ("school", "kindergarten")),
        (
            "科教文化服务;学校;幼儿园|科教文化服务;培训机构;培训机构",
            "平江路幼儿园",
            ("school", "kindergarten"),
        ),
        ("科教文化服务;学校;幼儿园|科教文化服务;培训机构;培训机构", "金宝贝(桂平路)", None),
        ("科教文化服务;学校;幼儿园", "鲱鱼宝宝早教中心", None),
        ("科教文化服务;学校;幼儿园", "金太阳看护点", None),
        (
            "科教文化服务;学校;中学|科教文化服务;培训机构;培训机构",
            "上海闵行区美高教育培训学校",
            None,
        ),
        ("科教文化服务;学校;中学", "上海韩国外籍人员子女学校", None),
        ("科教文化服务;学校;中学", "上海市实验学校", ("school", "primary+secondary")),
        ("科教文化服务;学校;高等院校", "复旦大学", None),
        ("科教文化服务;学校;职业技术学校|科教文化服务;学校;中学", "某职工业余中学", None),
        ("医疗保健服务;诊所;诊所", "上海吴志刚口腔诊所", None),
        ("医疗保健服务;诊所;诊所", "慈铭体检(陆家嘴店)", None),
        ("医疗保健服务;诊所;诊所", "潍坊社区卫生服务站", ("health", "community_health_centre")),
        (
            "医疗保健服务;综合医院;卫生院",
            "高桥社区卫生服务中心",
            ("health", "community_health_centre"),
        ),
        ("医疗保健服务;综合医院;三级甲等医院", "上海东方医院", ("health", "hospital")),
        ("医疗保健服务;综合医院;三级甲等医院", "上海东方医院口腔科", None),
        ("医疗保健服务;动物医疗场所;宠物诊所", "某宠物医院", None),
        ("医疗保健服务;急救中心;急救中心", "浦东医疗急救中心洋泾分站", None),
        ("体育休闲服务;影剧院;剧场", "东方艺术中心", ("culture", "theatre")),
        ("体育休闲服务;影剧院;电影院", "某影城", None),
        ("科教文化服务;博物馆;博物馆", "上海科技馆博物馆", ("culture", "tourism_museum")),
    ],
)
def test_amap_mapping_follows_the_tag_rules(
    type_path: str, name: str, expected: tuple[str, str] | None
) -> None:
    assert amap_mapping().classify(type_path, name) == expected


def test_amap_lists_keep_no_training_dental_or_pet_places() -> None:
    mapping = amap_mapping()
    for name in ("school", "hospital", "Theatr_Cinema"):
        table = read_table(POIS / f"shanghai_{name}.csv")
        pois = facilities_from_table(table, mapping, datum="wgs84")
        # an independent check on the names of what is kept
        bad = pois["name"].str.contains("培训|驾校|早教|看护点|口腔|牙科|齿科|宠物|整形|影城|电影")
        assert not bad.any(), pois.loc[bad, "name"].head().tolist()
    # Pudong's Amap kindergartens: those named 幼儿园/托儿所/托育/幼托... stay (checked by hand:
    # the 39 others are brands such as 金宝贝, 早教 centres and 看护点 childminding points)
    table = read_table(POIS / "shanghai_school.csv")
    pudong = table.loc[table["adname"] == "浦东新区"].reset_index(drop=True)
    kinder = pudong["type"].str.startswith("科教文化服务;学校;幼儿园")
    named = pudong["name"].str.contains("幼儿园|幼稚园|托儿所|托育|幼托|保育院|幼儿学校")
    training = pudong["name"].str.contains("培训|早教|亲子|看护点")
    pois = facilities_from_table(pudong, mapping, datum="wgs84")
    assert (pois["subtype"] == "kindergarten").sum() == int((kinder & named & ~training).sum())


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


def test_one_facility_listed_several_times_counts_once() -> None:
    """Review of issue 8: Amap lists 上海长航医院 six times (门诊, 住院部, 急诊 ...)."""
    from lifecircle.facilities import deduplicate_within

    names = [
        "上海长航医院",
        "上海长航医院门诊",
        "上海长航医院住院部",
        "上海长航医院急诊",
        "东方医院",
    ]
    pts = gpd.GeoDataFrame(
        {"category": ["health"] * 5, "name": names},
        geometry=gpd.points_from_xy([0, 20, 40, 60, 30], [0, 0, 0, 0, 10]),
        crs="EPSG:32651",
    )
    kept, dropped = deduplicate_within(pts, crs="EPSG:32651")
    assert kept["name"].tolist() == ["上海长航医院", "东方医院"]
    assert dropped == 3
    # 150 m apart: two facilities, whatever their names
    far = pts.iloc[:2].copy()
    far.geometry = gpd.points_from_xy([0, 150], [0, 0], crs="EPSG:32651")
    assert deduplicate_within(far, crs="EPSG:32651")[1] == 0


@pytest.mark.parametrize(
    ("tags", "expected"),
    [
        (
            {"amenity": "hospital", "name": "金桥社区卫生中心"},
            ("health", "community_health_centre"),
        ),
        (
            {"amenity": "clinic", "name": "惠南镇社区卫生服务听潮分中心"},
            ("health", "community_health_centre"),
        ),
        ({"amenity": "hospital", "name": "浦东新区精神卫生中心"}, None),
        ({"building": "commercial", "tourism": "attraction", "name": "上海中心大厦"}, None),
        ({"highway": "residential", "tourism": "attraction", "name": "方浜中路"}, None),
        ({"amenity": "clinic", "name": "豫园街道社区党建服务中心"}, None),
        ({"amenity": "school", "name": "大树英语"}, None),
        ({"amenity": "school", "name": "上海市医药学校"}, None),
        ({"healthcare": "centre", "name": "美年体检中心"}, None),
        (
            {
                "social_facility": "nursing_home",
                "social_facility:for": "disabled",
                "name": "阳光养护院",
            },
            None,
        ),
    ],
)
def test_review_misclassifications(tags: dict[str, str], expected: object) -> None:
    """Cases found by the hostile review of issue 8 on the real Pudong POIs and Lujiazui."""
    assert classify_tags(tags, default_tag_rules()) == expected


def test_classify_many_equals_one_feature_at_a_time(lujiazui_osm) -> None:  # type: ignore[no-untyped-def]
    """Classifying each distinct tag set once gives every feature the class it had alone."""
    rules = default_tag_rules()
    tags = list(lujiazui_osm.features["tags"])
    # the same tags in another key order, and a name that changes one school's class
    extra = [dict(reversed(list(t.items()))) for t in tags[:50]]
    extra += [{"amenity": "school", "name": "崂山小学"}, {"amenity": "school", "name": "金陵中学"}]
    everything = tags + extra + tags
    want = [classify_tags(t, rules) for t in everything]
    assert classify_many(everything, rules) == want
    assert want[len(tags) + 50 : len(tags) + 52] == [("school", "primary"), ("school", "secondary")]
    assert sum(w is not None for w in want) == 2 * len(LUJIAZUI_FACILITIES) + 2 + sum(
        w is not None for w in want[len(tags) : len(tags) + 50]
    )
