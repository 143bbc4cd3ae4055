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
    # --- gap report, flags and the terminal table (issue 11: persons and language)
    "flag_ring": {
        "en": "Ring {ring}: {cat} coverage {cov}%, {lag} points below the core ring "
        "({core}, {core_cov}%).",
        "zh": "{ring} 圈层：{cat}覆盖率 {cov}%，"
        "比核心圈层（{core}，{core_cov}%）低 {lag} 个百分点。",
    },
    "flag_gradient": {
        "en": "{cat}: coverage falls from core to periphery (Spearman rho {rho}, "
        "{slope} points per km).",
        "zh": "{cat}：覆盖率由核心向外围下降（Spearman rho {rho}，每公里 {slope} 个百分点）。",
    },
    "flag_unit": {
        "en": "{unit}: {cov}% of residents reach every category, {gap} points below the "
        "{target}% target.",
        "zh": "{unit}：{cov}% 的居民可达全部类别设施，比 {target}% 的目标低 {gap} 个百分点。",
    },
    "flag_cluster": {
        "en": "Gap cluster {rank} ({zone}): {who} over {area} km² lack {missing}.",
        "zh": "缺口聚类 {rank}（{zone}）：{who}，面积 {area} 平方公里，缺少{missing}。",
    },
    "flag_cluster_points": {"en": "{n} resident points", "zh": "{n} 个居住点"},
    "flag_cluster_people": {
        "en": "{n} resident points (about {persons} estimated residents)",
        "zh": "{n} 个居住点（约 {persons} 名估算常住人口）",
    },
    "several_categories": {"en": "several categories", "zh": "多类设施"},
    "no_flags": {"en": "No gap exceeds the flag thresholds.", "zh": "没有超过提示阈值的缺口。"},
    "headline_all": {
        "en": "{share}% of residents live within {threshold} of {what}; the target is {target}%.",
        "zh": "{share}% 的居民在{threshold}内可达{what}；目标为 {target}%。",
    },
    "headline_people": {
        "en": "That is about {covered} of {total} estimated residents ({basis}).",
        "zh": "即估算常住人口 {total} 人中约 {covered} 人（{basis}）。",
    },
    "all_n_services": {"en": "all {n} services", "zh": "全部 {n} 类设施"},
    "all_four_services": {"en": "all four services", "zh": "全部四类设施"},
    "one_service": {"en": "{cat} services", "zh": "{cat}设施"},
    "threshold_walk": {
        "en": "a {minutes}-minute walk ({metres} m)",
        "zh": "步行 {minutes} 分钟（{metres} 米）",
    },
    "threshold_tiers": {
        "en": "each tier's walk ({label})",
        "zh": "各级设施规定的步行时间（{label}）",
    },
    "gaps_title": {
        "en": "15-minute life circle gaps: {area}",
        "zh": "15分钟社区生活圈缺口分析：{area}",
    },
    "plan_title": {
        "en": "15-minute life circle: where to build in {area}",
        "zh": "15分钟社区生活圈：{area} 设施选址建议",
    },
    "summary": {"en": "Summary", "zh": "概要"},
    "summary_intro": {
        "en": "Area {area}: share of residents within {threshold} of each facility category, "
        "against a target of {target}% (profile {profile}).",
        "zh": "分析范围 {area}：各类设施{threshold}内可达的居民比例，"
        "目标为 {target}%（标准配置 {profile}）。",
    },
    "partial_note": {
        "en": "The walking network covers {analysed} km² of {district} km²: the figures describe "
        "the analysed area only.",
        "zh": "步行路网覆盖 {district} 平方公里中的 {analysed} 平方公里：结果仅代表分析范围。",
    },
    "full_note": {
        "en": "The walking network covers at least half of the district's land.",
        "zh": "步行路网覆盖了区内一半以上的土地。",
    },
    "coverage_by_category": {"en": "Coverage by category", "zh": "分类别覆盖率"},
    "col_category": {"en": "Category", "zh": "设施类别"},
    "col_facilities": {"en": "Facilities", "zh": "设施数"},
    "col_coverage_pct": {"en": "Coverage", "zh": "覆盖率"},
    "col_covered_people": {"en": "Estimated residents covered", "zh": "覆盖的估算常住人口"},
    "col_gap_points": {"en": "Gap to target (points)", "zh": "距目标（百分点）"},
    "col_meets_target": {"en": "Meets target", "zh": "是否达标"},
    "col_estimated_residents": {"en": "Estimated residents", "zh": "估算常住人口"},
    "col_weight_floor_area_m2": {
        "en": "Residential floor area (m²)",
        "zh": "居住建筑面积（平方米）",
    },
    "col_weight_grid_point": {"en": "Grid points", "zh": "网格点数"},
    "col_weight_persons": {"en": "Population layer (persons)", "zh": "人口图层（人）"},
    "col_resident_points": {"en": "Resident points", "zh": "居住点数"},
    "col_ring": {"en": "Distance ring", "zh": "距离圈层"},
    "col_unit": {"en": "Sub-district / town", "zh": "街道/镇"},
    "col_zone": {"en": "Zone", "zh": "区域"},
    "col_rank": {"en": "Rank", "zh": "序号"},
    "col_area_km2": {"en": "Area (km²)", "zh": "面积（平方公里）"},
    "col_missing": {"en": "Missing", "zh": "缺少的设施"},
    "col_median_to": {"en": "Median walk to {cat} (m)", "zh": "至{cat}步行距离中位数（米）"},
    "col_rho": {"en": "Spearman rho", "zh": "Spearman 相关系数"},
    "col_points_per_km": {"en": "Points per km", "zh": "每公里百分点"},
    "col_core": {"en": "Core ring (%)", "zh": "核心圈层（%）"},
    "col_outer": {"en": "Outer ring (%)", "zh": "外围圈层（%）"},
    "col_lag": {"en": "Lag (points)", "zh": "落差（百分点）"},
    "col_flag": {"en": "Flagged", "zh": "提示"},
    "col_note": {"en": "Note", "zh": "说明"},
    "col_gini": {"en": "Gini", "zh": "基尼系数"},
    "col_theil": {"en": "Theil", "zh": "泰尔指数"},
    "col_theil_between": {"en": "Theil between rings", "zh": "泰尔指数（圈层间）"},
    "col_theil_within": {"en": "Theil within rings", "zh": "泰尔指数（圈层内）"},
    "col_capped": {"en": "Share at the cap", "zh": "达到上限的比例"},
    "col_parameter": {"en": "Parameter", "zh": "参数"},
    "col_value": {"en": "Value", "zh": "取值"},
    "gradient_section": {
        "en": "Core-periphery gradient and inequality",
        "zh": "核心—外围梯度与不均衡",
    },
    "gradient_intro": {
        "en": "Rings are distances from the district core. Spearman's rho below zero means "
        "coverage falls with distance; a flag means the outermost populated ring lags the core "
        "ring by more than {lag} points.",
        "zh": "圈层按到区中心的距离划分。Spearman 相关系数小于零表示覆盖率随距离下降；"
        "若最外有人口圈层比核心圈层低 {lag} 个百分点以上，则给出提示。",
    },
    "inequality_intro": {
        "en": "Gini and Theil indices of walking distance (capped at {cap} m), Theil split "
        "between and within distance rings.",
        "zh": "步行距离（上限 {cap} 米）的基尼系数与泰尔指数，泰尔指数分解为圈层间与圈层内。",
    },
    "gradient_table": {"en": "Coverage by distance ring", "zh": "各距离圈层覆盖率"},
    "gradient_stats": {"en": "Gradient", "zh": "梯度"},
    "inequality_table": {"en": "Inequality of walking distances", "zh": "步行距离的不均衡"},
    "no_gradient": {
        "en": "Fewer than two distance rings hold residents: no gradient can be measured.",
        "zh": "有居民的距离圈层少于两个，无法测算梯度。",
    },
    "units_section": {"en": "Coverage by sub-district / town", "zh": "各街道/镇覆盖率"},
    "user_zones_section": {"en": "Coverage by zone", "zh": "各区域覆盖率"},
    "units_without_network": {
        "en": "Units with no walking network in the data (no figures): {units}.",
        "zh": "数据中没有步行路网的街道/镇（无结果）：{units}。",
    },
    "clusters_section": {
        "en": "Gap clusters (residents not covered for every category)",
        "zh": "缺口聚类（未被全部类别覆盖的居民）",
    },
    "clusters_intro": {
        "en": "Uncovered resident points grouped with DBSCAN (radius {eps} m, min_samples 1: "
        "every point joins the cluster of any uncovered point within {eps} m), ranked by "
        "estimated residents affected; distances are weighted medians in metres (blank: beyond "
        "the {cap} m search limit).",
        "zh": "未覆盖的居住点用 DBSCAN 聚类（半径 {eps} 米，min_samples 为 1：相距 {eps} 米以内的"
        "未覆盖点归为一类），按受影响的估算常住人口排序；"
        "距离为加权中位数（米，空白表示超过 {cap} 米搜索上限）。",
    },
    "no_clusters": {
        "en": "Every resident is covered: no gap cluster.",
        "zh": "所有居民均被覆盖，没有缺口聚类。",
    },
    "clusters_table": {"en": "Gap clusters", "zh": "缺口聚类"},
    "maps_section": {"en": "Maps", "zh": "地图"},
    "gap_map_caption": {"en": "Gaps in {cat} coverage", "zh": "{cat}覆盖缺口"},
    "limits_section": {"en": "Parameters and data limits", "zh": "参数与数据局限"},
    "residents_basis_note": {
        "en": "Residents: {points} points ({basis}); estimated residents: {persons_basis}.",
        "zh": "居民：{points} 个居住点（{basis}）；估算常住人口：{persons_basis}。",
    },
    "persons_unknown_note": {
        "en": "Estimated residents are unknown (equal grid points without floor area): shares "
        "only; give --population or --population-total.",
        "zh": "无法估算常住人口（无建筑面积的等权网格点），仅给出比例；"
        "请提供 --population 或 --population-total。",
    },
    "imputed_levels_note": {
        "en": "{share}% of the floor area rests on imputed building levels ({levels} levels).",
        "zh": "{share}% 的建筑面积基于推定层数（{levels} 层）。",
    },
    "amap_note": {
        "en": "Amap POI lists hit a 900-results-per-query cap: imported schools and hospitals "
        "are incomplete.",
        "zh": "高德 POI 每次查询最多返回 900 条：导入的学校和医院名单不完整。",
    },
    "no_elderly_note": {
        "en": "No elderly-care facility in the data: its coverage is 0% by construction.",
        "zh": "数据中没有养老设施，其覆盖率按定义为 0%。",
    },
    "osm_note": {"en": "OSM data {base}; {attribution}.", "zh": "OSM 数据 {base}；{attribution}。"},
    "param_threshold": {"en": "Walking threshold", "zh": "步行阈值"},
    "param_target": {"en": "Coverage target", "zh": "覆盖率目标"},
    "param_profile": {"en": "Standard profile", "zh": "标准配置"},
    "param_max_snap": {"en": "Largest distance to a street (m)", "zh": "到道路的最大距离（米）"},
    "param_search_limit": {"en": "Search limit (m)", "zh": "搜索上限（米）"},
    "param_rings": {"en": "Distance rings (km)", "zh": "距离圈层（公里）"},
    "param_cluster": {"en": "Gap clusters", "zh": "缺口聚类"},
    "param_cluster_value": {
        "en": "DBSCAN, radius {eps} m, min_samples 1",
        "zh": "DBSCAN，半径 {eps} 米，min_samples 1",
    },
    "param_persons": {"en": "Estimated residents", "zh": "估算常住人口"},
    "param_lag": {"en": "Ring lag flagged above (points)", "zh": "圈层落差提示阈值（百分点）"},
    "basis_population_layer": {"en": "population layer", "zh": "人口图层"},
    "basis_floor_area": {
        "en": "residential floor area / {value} m² per person",
        "zh": "居住建筑面积 ÷ 人均 {value} 平方米",
    },
    "basis_population_total": {
        "en": "scaled to a known total of {value} residents",
        "zh": "按已知总人口 {value} 人比例分配",
    },
    "basis_unknown": {"en": "not estimated", "zh": "未估算"},
    "table_header": {
        "en": "Coverage within {threshold}, profile {profile}, area {area}",
        "zh": "{threshold}内覆盖率，标准配置 {profile}，范围 {area}",
    },
    "all_categories_row": {"en": "all categories", "zh": "全部类别"},
    "verdict_meets": {"en": "meets", "zh": "达标"},
    "verdict_below": {"en": "BELOW", "zh": "未达标"},
    "col_gap": {"en": "gap", "zh": "差距"},
    "col_verdict": {"en": "verdict", "zh": "结论"},
    "na": {"en": "n/a", "zh": "无"},
    "plan_intro_title": {"en": "Where to build", "zh": "选址建议"},
    "plan_intro": {
        "en": "For each category the plan finds the fewest new sites that bring the share of "
        "residents within walking reach to the target ({target}%), with the existing facilities "
        "kept, and the best coverage reachable with 1 to {k} new sites. Distances are the same "
        "walking distances as the coverage figures; `lifecircle coverage --add-facilities "
        "sites.gpkg` reproduces them.",
        "zh": "对每类设施，在保留现有设施的前提下，"
        "求使步行可达居民比例达到目标（{target}%）所需的最少新增站点，"
        "以及新增 1 至 {k} 处站点时可达到的最高覆盖率。距离与覆盖率计算所用的步行距离相同；"
        "`lifecircle coverage --add-facilities sites.gpkg` 可复现结果。",
    },
    "plan_candidates_file": {
        "en": "Candidates: the sites in {file}.",
        "zh": "候选点：{file} 中的站点。",
    },
    "plan_candidates_streets": {
        "en": "Candidates: points every {spacing} m along the routable streets of the analysed "
        "area.",
        "zh": "候选点：分析范围内可通行道路上每隔 {spacing} 米取一点。",
    },
    "plan_optimal": {"en": "proven optimal", "zh": "已证明最优"},
    "plan_gap": {
        "en": "{status}, within {gap} of the proven bound",
        "zh": "{status}，与最优界相差不超过 {gap}",
    },
    "plan_verdict": {
        "en": "{n} new sites bring coverage from {now} to {reached} ({proof}).",
        "zh": "新增 {n} 处站点可使覆盖率由 {now} 提高到 {reached}（{proof}）。",
    },
    "plan_out_of_reach": {
        "en": "The target cannot be reached from these candidates: ",
        "zh": "这些候选点无法达到目标：",
    },
    "plan_category_title": {"en": "{cat} (within {metres} m)", "zh": "{cat}（{metres} 米内）"},
    "plan_sites_table": {"en": "Proposed sites", "zh": "建议站点"},
    "plan_curve_table": {
        "en": "Best coverage by number of new sites",
        "zh": "不同新增站点数下的最高覆盖率",
    },
    "col_name": {"en": "Name", "zh": "名称"},
    "col_newly_covered": {
        "en": "Estimated residents newly covered",
        "zh": "新增覆盖的估算常住人口",
    },
    "col_cumulative_coverage": {"en": "Coverage after this site", "zh": "累计覆盖率"},
    "col_new_sites": {"en": "New sites", "zh": "新增站点数"},
    "col_proof": {"en": "Proof", "zh": "求解状态"},
    "plan_curve_caption": {
        "en": "{cat}: coverage by number of new sites",
        "zh": "{cat}：不同新增站点数下的覆盖率",
    },
    "plan_map_caption": {"en": "{cat}: proposed sites", "zh": "{cat}：建议站点"},
    "tier": {"en": "tier", "zh": "地区层级"},
    "tier_central": {"en": "central city", "zh": "中心城区"},
    "tier_suburban_core": {"en": "suburban core", "zh": "郊区核心"},
    "tier_remote": {"en": "remote areas", "zh": "边远地区"},
    "tier_short_central": {"en": "central-city", "zh": "中心城区"},
    "tier_short_suburban_core": {"en": "suburban-core", "zh": "郊区核心"},
    "tier_short_remote": {"en": "remote", "zh": "边远地区"},
    "and": {"en": " and ", "zh": "、"},
    "verdict_holds": {"en": "the paper's ordering holds", "zh": "符合论文的排序"},
    "verdict_fails": {"en": "the paper's ordering fails", "zh": "不符合论文的排序"},
    "verdict_undecided": {
        "en": "undecided: the confidence interval includes 0",
        "zh": "尚无定论：置信区间包含0",
    },
    "verdict_not_testable": {"en": "not testable", "zh": "无法检验"},
    "no_residents_one": {"en": "the {tiers} tier holds no residents", "zh": "{tiers}无居民"},
    "no_residents_many": {"en": "the {tiers} tiers hold no residents", "zh": "{tiers}均无居民"},
    "no_residents": {"en": "no residents", "zh": "无居民"},
    "verdict_short_holds": {"en": "ordering holds", "zh": "排序成立"},
    "verdict_short_fails": {"en": "ordering fails", "zh": "排序不成立"},
    "verdict_short_undecided": {"en": "undecided", "zh": "尚无定论"},
    "verdict_short_not_testable": {"en": "not testable", "zh": "无法检验"},
    "hierarchy_title": {
        "en": "Central city, suburban cores, remote areas",
        "zh": "中心城区、郊区核心与边远地区",
    },
    # hierarchy report section (issue 13)
    "hierarchy_intro": {
        "en": "The study behind this tool claims that facility access is higher in the central "
        "city than in the suburbs, and higher in the suburban cores than in the remote areas. "
        "Each resident gets one tier; the test asks, per category, whether central >= suburban "
        "core >= remote, with 95% bootstrap intervals on the differences.",
        "zh": "本工具所依据的研究认为：中心城区的设施可达性高于郊区，郊区核心及其周边高于边远地区。"
        "每个居民点归入一个层级；检验按类别判断是否中心城区 ≥ 郊区核心 ≥ 边远地区，"
        "并给出差值的 95% 自助法置信区间。",
    },
    "hierarchy_params": {
        "en": "Central city: {central}. Town seats: {centres}. Persons: {persons}. "
        "Bootstrap: {bootstrap} replicates, seed {seed}.",
        "zh": "中心城区：{central}。镇区中心：{centres}。人口：{persons}。"
        "自助法：{bootstrap} 次重抽样，随机种子 {seed}。",
    },
    "none_given": {"en": "none given", "zh": "未提供"},
    "hierarchy_empty": {
        "en": "{note}: they are not invented, and the ordering cannot be tested here.",
        "zh": "{note}：不虚构这些居民，因此无法在此检验排序。",
    },
    "resident_points_col": {"en": "resident points", "zh": "居民点数"},
    "median_m": {"en": "median distance (m)", "zh": "距离中位数（米）"},
    "p90_m": {"en": "90th percentile (m)", "zh": "第90百分位距离（米）"},
    "left_out_persons": {"en": "estimated residents left out", "zh": "未覆盖估算人口"},
    "zero_units": {"en": "units with 0% coverage", "zh": "覆盖率为0的街道/镇"},
    "tier_pair": {"en": "tiers compared", "zh": "比较的层级"},
    "points_diff": {"en": "difference (points)", "zh": "差值（百分点）"},
    "verdict": {"en": "verdict", "zh": "结论"},
    "tier_measures_caption": {
        "en": "Measures by tier (distances blank: beyond the search limit or no residents)",
        "zh": "各层级指标（距离空白：超出搜索范围或无居民）",
    },
    "tier_map_caption": {
        "en": "Tiers and coverage of all categories",
        "zh": "地区层级与四类设施均可达的覆盖情况",
    },
    "tier_chart_caption": {
        "en": "Coverage by tier with 95% bootstrap intervals",
        "zh": "各层级覆盖率及 95% 自助法置信区间",
    },
    "ci95": {"en": "95% CI", "zh": "95% 置信区间"},
    "pair_status": {"en": "pair", "zh": "两两比较"},
    "status_higher": {"en": "higher", "zh": "更高"},
    "status_lower": {"en": "lower", "zh": "更低"},
    "status_equal": {"en": "equal", "zh": "相同"},
    "status_undecided": {"en": "undecided (CI includes 0)", "zh": "尚无定论（置信区间含0）"},
    "central_subdistricts": {
        "en": "街道 sub-districts (unit codes 0xx): {n} units",
        "zh": "街道（统计代码 0xx）：{n} 个",
    },
    "persons_unit": {"en": "persons", "zh": "人"},
    "verdict_undecided_small": {
        "en": "undecided: the {tiers} tier holds fewer than {n} resident points",
        "zh": "尚无定论：{tiers}的居民点少于 {n} 个",
    },
    "tier_differences_caption": {
        "en": "Differences in coverage points",
        "zh": "覆盖率差值（百分点）",
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
    "charts_section": {"en": "Charts", "zh": "图表"},
    "partial_prefix": {"en": "PARTIAL: ", "zh": "局部结果："},
    "basis_buildings": {"en": "buildings", "zh": "居住建筑"},
    "basis_landuse_infill": {"en": "residential land infill", "zh": "居住用地补点"},
    "basis_population": {"en": "population layer", "zh": "人口图层"},
    "basis_landuse_grid": {"en": "grid over residential land", "zh": "居住用地网格点"},
    "basis_area_grid": {"en": "grid over the area", "zh": "全域网格点"},
    "caption_tier_map": {
        "en": "Tiers and coverage of all categories",
        "zh": "地区层级与全部类别覆盖",
    },
    "caption_tier_chart": {
        "en": "Coverage by tier with 95% bootstrap intervals",
        "zh": "各层级覆盖率及 95% 自助法置信区间",
    },
    "gap_map_title": {"en": "{area}: gaps in {cat} coverage", "zh": "{area}：{cat}覆盖缺口"},
    "gap_map_units": {"en": "administrative units", "zh": "街道/镇界"},
    "gap_map_facility": {"en": "{cat} facility", "zh": "{cat}设施"},
    "gap_map_clusters": {"en": "gap clusters (ranked)", "zh": "缺口聚类（按序号）"},
    "gap_map_colorbar": {
        "en": "coverage by distance ring (share of residents)",
        "zh": "各距离圈层覆盖率（居民比例）",
    },
    "gaps_cli_title": {"en": "gaps in {area}:", "zh": "{area} 的缺口："},
    "gaps_cli_no_flag": {
        "en": "no gap exceeds the flag thresholds",
        "zh": "没有超过提示阈值的缺口",
    },
    "gaps_cli_gini": {
        "en": "Gini {gini}, Theil {theil} (between rings {between})",
        "zh": "基尼系数 {gini}，泰尔指数 {theil}（圈层间 {between}）",
    },
    "gaps_cli_inequality": {
        "en": "inequality of the distance to the farthest category: {value}",
        "zh": "到最远一类设施步行距离的不均衡：{value}",
    },
    "gaps_cli_report": {
        "en": "gap clusters: {n}; report: {report}",
        "zh": "缺口聚类：{n} 个；报告：{report}",
    },
    # plan curve and map (lifecircle.plot)
    "plan_curve_line": {"en": "best coverage with k new sites", "zh": "新增 k 处设施的最优覆盖率"},
    "plan_sites_reach": {"en": "{n} sites reach the target", "zh": "{n} 处新设施即达到目标"},
    "plan_new_sites_axis": {"en": "new sites (k)", "zh": "新增设施数（k）"},
    "plan_covered_axis": {"en": "residents covered (%)", "zh": "覆盖居民比例（%）"},
    "plan_curve_title": {
        "en": "{cat}: coverage by number of new sites",
        "zh": "{cat}：覆盖率随新增设施数的变化",
    },
    "plan_existing": {"en": "existing {cat} facilities", "zh": "现有{cat}设施"},
    "plan_left": {"en": "residents still not covered", "zh": "仍未覆盖的居民点"},
    "plan_proposed": {"en": "proposed site (rank)", "zh": "建议新址（序号）"},
    "plan_map_title": {"en": "{area}: proposed {cat} sites", "zh": "{area}：{cat}设施建议选址"},
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
