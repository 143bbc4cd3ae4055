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
    # charts (lifecircle.charts) and the small-multiple coverage map
    "share_residents_pct": {
        "en": "share of estimated residents (%)",
        "zh": "估算常住人口占比（%）",
    },
    "target_line": {"en": "target {pct}", "zh": "目标 {pct}"},
    "threshold_line": {"en": "{minutes}-minute threshold", "zh": "{minutes}分钟阈值"},
    "chart_category_title": {
        "en": "Residents with each service within {threshold}",
        "zh": "各类设施步行可达的居民比例（{threshold}）",
    },
    "chart_curve_title": {
        "en": "Cumulative accessibility: residents within t minutes' walk",
        "zh": "累积可达性：t分钟步行内可达的居民比例",
    },
    "chart_units_title": {
        "en": "{category}: coverage by sub-district / town",
        "zh": "{category}：各街道/镇覆盖率",
    },
    "units_no_residents": {
        "en": "{n} more units hold no residents in the analysed area (no walking network there)",
        "zh": "另有{n}个街道/镇在分析范围内无居民（无步行路网数据）",
    },
    "chart_rings_title": {
        "en": "Coverage by distance from the district core",
        "zh": "覆盖率随距区中心距离的变化",
    },
    "ring_midpoint_km": {
        "en": "distance from the core, ring midpoint (km)",
        "zh": "距区中心距离（圈层中点，公里）",
    },
    "one_ring_note": {
        "en": "residents in one ring only: no gradient to show",
        "zh": "居民仅分布在一个圈层：无法显示梯度",
    },
    "walkable_streets": {"en": "walkable streets", "zh": "步行道路"},
    "analysed_extent": {"en": "analysed extent", "zh": "分析范围"},
    "district_boundary": {"en": "district boundary", "zh": "区界"},
    "small_multiple_title": {
        "en": "{category}: {pct} within {minutes} min",
        "zh": "{category}：{minutes}分钟内 {pct}",
    },
    "small_multiples_title": {
        "en": "{area}: residents within a {minutes}-minute walk, by service (target {target})",
        "zh": "{area}：各类设施{minutes}分钟步行覆盖（目标 {target}）",
    },
    "no_facility": {"en": "no facility in the data", "zh": "数据中无此类设施"},
    "caption_coverage_by_category": {
        "en": "Coverage by category against the target",
        "zh": "各类设施覆盖率与目标",
    },
    "caption_accessibility_curves": {
        "en": "Cumulative accessibility: share of residents within t minutes",
        "zh": "累积可达性：t分钟内可达的居民比例",
    },
    "caption_ring_gradient": {
        "en": "Coverage by distance ring from the district core",
        "zh": "各距离圈层的覆盖率",
    },
    "caption_unit_coverage": {
        "en": "{category}: coverage by sub-district / town (街道/镇), sorted",
        "zh": "{category}：各街道/镇覆盖率（排序）",
    },
    "caption_coverage_map": {
        "en": "Coverage map, one panel per category",
        "zh": "覆盖地图（每类设施一幅）",
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
