"""Labels of reports, maps and tables in English and Chinese.

One vocabulary for every output: the HTML and Markdown reports, map titles and
legends, the web map and the terminal table take their words from here, so a
category is called the same in each. Keys missing from a language fall back to
English, and a key missing from both is returned as it is (never an exception in
the middle of writing a report).

Chinese category names follow GB 50180-2018's facility classes (教育, 医疗卫生,
社会福利/养老, 文化); the shorter forms used here (学校, 医疗卫生, 养老, 文化)
are those of Shanghai's 15-minute community life-circle guideline.
"""

from __future__ import annotations

from typing import Literal

Lang = Literal["en", "zh"]
LANGS: tuple[Lang, ...] = ("en", "zh")
DEFAULT_LANG: Lang = "en"

CATEGORY_LABELS: dict[str, dict[str, str]] = {
    "school": {"en": "School", "zh": "学校"},
    "health": {"en": "Health care", "zh": "医疗卫生"},
    "elderly_care": {"en": "Elderly care", "zh": "养老"},
    "culture": {"en": "Culture", "zh": "文化"},
    "all": {"en": "All four services", "zh": "四类设施均可达"},
}

SUBTYPE_LABELS: dict[str, dict[str, str]] = {
    "kindergarten": {"en": "kindergarten", "zh": "幼儿园"},
    "primary": {"en": "primary school", "zh": "小学"},
    "secondary": {"en": "secondary school", "zh": "中学"},
    "primary+secondary": {"en": "primary and secondary school", "zh": "九年一贯制学校"},
    "school": {"en": "school (stage unknown)", "zh": "学校（学段未知）"},
    "clinic": {"en": "clinic", "zh": "诊所/卫生站"},
    "community_health_centre": {"en": "community health centre", "zh": "社区卫生服务中心"},
    "hospital": {"en": "hospital", "zh": "医院"},
    "care_home": {"en": "care home", "zh": "养老院"},
    "nursing_home": {"en": "nursing home", "zh": "护理院"},
    "day_care": {"en": "day care centre", "zh": "日间照料中心"},
    "service_centre": {"en": "elderly service centre", "zh": "综合为老服务中心"},
    "community_centre": {"en": "community centre", "zh": "社区文化活动中心"},
    "library": {"en": "library", "zh": "图书馆"},
    "arts_centre": {"en": "arts centre", "zh": "艺术中心"},
    "theatre": {"en": "theatre", "zh": "剧院"},
    "tourism_museum": {"en": "museum", "zh": "博物馆"},
    "tourism_gallery": {"en": "gallery", "zh": "美术馆"},
}

TEXT: dict[str, dict[str, str]] = {
    "estimated_residents": {"en": "estimated residents", "zh": "估算常住人口"},
    "coverage": {"en": "coverage", "zh": "覆盖率"},
    "target": {"en": "target", "zh": "目标"},
    "category": {"en": "category", "zh": "设施类别"},
    "unit": {"en": "sub-district / town", "zh": "街道/镇"},
    "ring": {"en": "ring", "zh": "圈层"},
    "minutes": {"en": "minutes", "zh": "分钟"},
    "walking_minutes": {
        "en": "walking minutes to the nearest facility",
        "zh": "步行至最近设施的时间（分钟）",
    },
    "metres": {"en": "m", "zh": "米"},
    "yes": {"en": "yes", "zh": "是"},
    "no": {"en": "no", "zh": "否"},
    "meets_target": {"en": "meets the target", "zh": "达到目标"},
    "below_target": {"en": "below the target", "zh": "未达目标"},
    "facilities": {"en": "facilities", "zh": "设施"},
    "gap_clusters": {"en": "gap clusters", "zh": "缺口聚类"},
    "isochrone": {"en": "15-minute walk", "zh": "15分钟步行范围"},
    "uncovered_residents": {"en": "residents not covered", "zh": "未覆盖人口"},
    # web map (lifecircle.webmap)
    "web_map_title": {"en": "15-minute life circle: {area}", "zh": "15分钟社区生活圈：{area}"},
    "colour_by": {"en": "Colour residents by", "zh": "居民点着色依据"},
    "all_walk": {"en": "All four (farthest of them)", "zh": "四类设施（取最远者）"},
    "unreachable": {"en": "unreachable", "zh": "不可达"},
    "unreachable_note": {
        "en": "no facility within the search limit, or no street within the snap limit",
        "zh": "搜索范围内无设施，或吸附距离内无道路",
    },
    "residents_layer": {"en": "Residents", "zh": "居民点"},
    "resident_point": {"en": "resident point", "zh": "居民点"},
    "isochrones_layer": {
        "en": "Walking reach of the selected category",
        "zh": "所选类别的步行可达范围",
    },
    "facilities_layer": {"en": "Facilities", "zh": "设施"},
    "units_layer": {"en": "Sub-districts / towns", "zh": "街道/镇"},
    "clusters_layer": {"en": "Gap clusters", "zh": "缺口聚类"},
    "osm_tiles": {"en": "OpenStreetMap (online)", "zh": "OpenStreetMap 底图（需联网）"},
    "no_background": {"en": "No background (offline)", "zh": "无底图（离线）"},
    "tiles_note": {
        "en": "Background map: choose OpenStreetMap in the layer control (needs internet).",
        "zh": "底图：在图层控件中选择 OpenStreetMap（需联网）。",
    },
    "reachable": {"en": "reachable from where residents live", "zh": "居民可达"},
    "not_reachable": {
        "en": "not reachable from the analysed streets",
        "zh": "分析范围内道路不可达",
    },
    "no_residents_unit": {
        "en": "no residents in the analysed area",
        "zh": "分析范围内无居民点",
    },
    "no_network_unit": {"en": "no walking network in the data", "zh": "数据中无步行路网"},
    "aggregated_note": {
        "en": "{points} resident points drawn as {cells} cells of {cell_m} m (more than {cap})",
        "zh": "{points} 个居民点按 {cell_m} 米网格汇总为 {cells} 个格子（超过 {cap} 个）",
    },
    "cell_points": {"en": "resident points in this cell", "zh": "本格居民点数"},
    "median_minutes": {"en": "median walking minutes", "zh": "步行时间中位数（分钟）"},
    "missing": {"en": "missing", "zh": "缺少"},
    "points": {"en": "points", "zh": "点数"},
    "area_km2": {"en": "area (km²)", "zh": "面积（平方公里）"},
    "analysed_area": {
        "en": "Analysed area (extent of the walking network)",
        "zh": "分析范围（步行路网覆盖范围）",
    },
    "web_map_title_minutes": {
        "en": "{minutes:g}-minute life circle: {area}",
        "zh": "{minutes:g}分钟社区生活圈：{area}",
    },
    "all_walk_n": {"en": "All {n} (farthest of them)", "zh": "{n}类设施（取最远者）"},
    "all_services_n": {"en": "All {n} services", "zh": "{n}类设施均可达"},
    "unit_analysed_share": {
        "en": "The analysed area covers {share} of this unit: its figures describe that part only.",
        "zh": "分析范围仅占本单元面积的 {share}，数据仅反映该部分。",
    },
}


def category_label(category: str, lang: Lang = DEFAULT_LANG) -> str:
    """Return the display name of a facility category.

    Examples
    --------
    >>> category_label("elderly_care", "zh")
    '养老'
    >>> category_label("elderly_care")
    'Elderly care'
    >>> category_label("sports", "zh")
    'sports'
    """
    return _lookup(CATEGORY_LABELS, category, lang)


def subtype_label(subtype: str, lang: Lang = DEFAULT_LANG) -> str:
    """Return the display name of a facility sub-type (the sub-type itself when unknown).

    Examples
    --------
    >>> subtype_label("day_care", "zh")
    '日间照料中心'
    """
    return _lookup(SUBTYPE_LABELS, subtype, lang)


def text(key: str, lang: Lang = DEFAULT_LANG) -> str:
    """Return a label of the report vocabulary.

    Examples
    --------
    >>> text("estimated_residents", "zh")
    '估算常住人口'
    >>> text("no_such_key", "zh")
    'no_such_key'
    """
    return _lookup(TEXT, key, lang)


def check_lang(lang: str) -> Lang:
    """Return ``lang`` as a :data:`Lang`, or raise ValueError naming the choices.

    Examples
    --------
    >>> check_lang("zh")
    'zh'
    """
    if lang == "en":
        return "en"
    if lang == "zh":
        return "zh"
    msg = f"unknown language {lang!r}: use one of {', '.join(LANGS)}"
    raise ValueError(msg)


def _lookup(table: dict[str, dict[str, str]], key: str, lang: Lang) -> str:
    entry = table.get(key)
    if entry is None:
        return key
    return entry.get(lang) or entry.get(DEFAULT_LANG) or key
