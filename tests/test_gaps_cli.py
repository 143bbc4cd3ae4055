from __future__ import annotations

import json
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from click.testing import CliRunner

from lifecircle.cli import main
from tests.conftest import DATA_DIR, POIS, _session_cache, nominatim_answer

POI_ARGS = [
    "--pois",
    str(POIS / "shanghai_school.csv"),
    "--pois",
    str(POIS / "shanghai_hospital.csv"),
]


@pytest.fixture(scope="module")
def gap_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("gaps")
    # a "development zone" over the southern half of Lujiazui, compared with a 500 m ring
    zone = gpd.GeoDataFrame(
        {"name": ["south"]}, geometry=[shapely.box(121.500, 31.225, 121.512, 31.234)], crs=4326
    )
    zone.to_file(out / "zones.geojson", driver="GeoJSON")
    # Lujiazui maps no elderly-care facility of GB 50180 (the old name rules took the association
    # office 陆家嘴街道老年协会 for one): a stand-in care home at that office's point keeps the
    # elderly_care category measurable in these gap outputs
    (out / "care.csv").write_text(
        "name,type,lat,lon\n测试养老院,养老院,31.238518749999997,121.50812091657659\n"
    )
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("LIFECIRCLE_DATA_DIR", str(DATA_DIR))
        mp.setenv("LIFECIRCLE_CACHE_DIR", str(_session_cache(tmp_path_factory)))
        mp.setenv("LIFECIRCLE_OVERPASS_URL", "http://127.0.0.1:9/api")
        result = CliRunner().invoke(
            main,
            [
                "gaps",
                "--district",
                "pudong",
                *POI_ARGS,
                "--pois",
                str(out / "care.csv"),
                "--rings",
                "0,0.5,1,1.5,2,3",
                "--zones",
                str(out / "zones.geojson"),
                "--zone-ring-m",
                "500",
                "--out",
                str(out / "o"),
                "--lang",
                "en",
                "--lang",
                "zh",
            ],
        )
    assert result.exit_code == 0, result.output
    assert "Gini" in result.output
    return out / "o"


def test_gaps_outputs(gap_run: Path) -> None:
    for name in (
        "gaps.json",
        "zone_measures.csv",
        "gap_clusters.csv",
        "gap_clusters.gpkg",
        "gaps_report.html",
        "gaps_report.md",
        "gap_map_all_categories.png",
        "gap_map_all_categories.pdf",
        "gap_map_elderly_care.png",
    ):
        assert (gap_run / name).stat().st_size > 100, name
    assert (gap_run / "gap_map_health.pdf").read_bytes()[:4] == b"%PDF"
    s = json.loads((gap_run / "gaps.json").read_text())
    rings = [z for z in s["zones"]["rings"] if z["category"] == "all_categories"]
    assert len(rings) >= 3
    g = s["gradient"]["elderly_care"]
    assert -1 <= g["spearman_rho"] <= 1
    assert isinstance(g["flag"], bool)
    ineq = s["inequality"]["categories"]["all_categories"]
    assert 0 < ineq["gini"] < 1
    assert ineq["theil_between"] + ineq["theil_within"] == pytest.approx(ineq["theil"], abs=1e-3)
    admin = {z["zone"] for z in s["zones"]["admin"]}
    assert admin == {"陆家嘴街道", "潍坊新村街道"}
    assert {z["unit_kind"] for z in s["zones"]["admin"]} == {"subdistrict"}
    assert len(s["admin_units_without_residents"]) == 34
    assert "洋泾街道" in s["admin_units_without_network"]
    comp = [c for c in s["user_zone_comparison"] if c["category"] == "all_categories"]
    assert comp
    assert comp[0]["zone"] == "south"
    clusters = s["clusters"]
    assert clusters
    assert clusters[0]["rank"] == 1
    assert [c["weight"] for c in clusters] == sorted((c["weight"] for c in clusters), reverse=True)
    assert s["flags"]
    md = (gap_run / "gaps_report.md").read_text()
    assert "## Gap clusters" in md
    assert "![" in md
    html = (gap_run / "gaps_report.html").read_text()
    assert html.count("data:image/png;base64,") == 15  # 5 gap maps, 8 charts, tier map and chart
    assert "© OpenStreetMap contributors" in html


def test_html_report_renders_in_headless_chromium(gap_run: Path, tmp_path: Path) -> None:
    from PIL import Image
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = "/usr/bin/chromium"
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={tmp_path / 'profile'}",
        "--window-size=1200,1600",
    ):
        opts.add_argument(flag)
    driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=opts)
    try:
        driver.get((gap_run / "gaps_report.html").as_uri())
        images = driver.execute_script(
            "return Array.from(document.images).map(i => [i.complete, i.naturalWidth]);"
        )
        assert len(images) == 15  # 5 gap maps, 8 charts, the tier map and chart
        assert all(done and width > 100 for done, width in images), images
        assert "Gap clusters" in driver.find_element("tag name", "body").text
        shot = tmp_path / "report.png"
        driver.save_screenshot(str(shot))
    finally:
        driver.quit()
    pixels = np.asarray(Image.open(shot).convert("L"), dtype=float)
    assert pixels.std() > 10  # not a blank page


def test_bad_zones_files(runner: CliRunner, tmp_path: Path) -> None:
    far = gpd.GeoDataFrame(geometry=[shapely.box(10, 10, 11, 11)], crs=4326)
    far.to_file(tmp_path / "far.geojson", driver="GeoJSON")
    result = runner.invoke(
        main,
        [
            "gaps",
            "--district",
            "pudong",
            "--zones",
            str(tmp_path / "far.geojson"),
            "--out",
            str(tmp_path / "o"),
        ],
    )
    assert result.exit_code == 1
    assert "no zone overlaps the district" in result.output
    assert "Traceback" not in result.output
    assert not (tmp_path / "o" / "gaps.json").exists()
    bad = runner.invoke(main, ["gaps", "--district", "pudong", "--rings", "0,x"])
    assert bad.exit_code == 1
    assert "--rings" in bad.output


def test_admin_units_downloaded_through_osmnx_replay(
    overpass_recording: bytes, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Online units: town level only, though Overpass also answers district and city outlines."""
    from lifecircle.pipeline import GapOptions, run_gaps
    from lifecircle.prepare import AreaRequest
    from tests.conftest import STATUS, ReplayServer, overpass_json_from_boundaries

    boundaries = DATA_DIR / "pudong" / "boundaries"
    towns = overpass_json_from_boundaries(
        boundaries / "pudong_36_streets_towns_osm_wgs84.geojson", "official_control_name_2023"
    )
    # the district (admin_level 6) and the city (4) also cover Lujiazui; a census-like
    # boundary with admin_level 8 but not administrative must not count either
    outline = gpd.read_file(boundaries / "pudong_36_streets_towns_osm_wgs84.geojson")
    bigger = gpd.GeoDataFrame(
        {"name": ["浦东新区", "上海市", "统计区"]},
        geometry=[
            outline.union_all().convex_hull,
            shapely.box(120.8, 30.6, 122.2, 31.9),
            shapely.box(121.49, 31.22, 121.52, 31.25),
        ],
        crs=4326,
    )
    for i, (level, kind) in enumerate(
        [("6", "administrative"), ("4", "administrative"), ("8", "census")]
    ):
        bigger.iloc[[i]].to_file(tmp_path / f"b{i}.geojson", driver="GeoJSON")
        extra = overpass_json_from_boundaries(
            tmp_path / f"b{i}.geojson",
            "name",
            admin_level=level,
            boundary=kind,
            id_offset=(i + 1) * 10_000_000,
        )
        towns["elements"] += extra["elements"]
    with ReplayServer(
        {
            "/api/status": STATUS,
            "/api/interpreter": [
                (b"admin_level", json.dumps(towns).encode()),
                (b"highway", overpass_recording),
            ],
            "/search": nominatim_answer(121.45, 31.10, 121.70, 31.30),
        }
    ) as server:
        monkeypatch.setenv("LIFECIRCLE_OVERPASS_URL", server.url + "/api")
        monkeypatch.setenv("LIFECIRCLE_NOMINATIM_URL", server.url + "/")
        monkeypatch.setenv("LIFECIRCLE_CACHE_DIR", str(tmp_path / "cache"))
        monkeypatch.setenv("LIFECIRCLE_DATA_DIR", str(tmp_path / "nodata"))
        # the extract maps no elderly-care facility of GB 50180 (see tests/test_facilities.py)
        with pytest.warns(RuntimeWarning, match="no elderly_care facilities"):
            result = run_gaps(
                AreaRequest(district="pudong"),
                gap_options=GapOptions(pdf=False),
                out_dir=tmp_path / "out",
            )
        posts = [b for m, _, b in server.requests if m == "POST"]
    assert any(b"admin_level" in b for b in posts)
    assert (tmp_path / "cache" / "raw" / "pudong" / "admin_units.geojson").is_file()
    assert result.admin is not None
    names = set(result.admin["zone"])
    assert not names & {"浦东新区", "上海市", "统计区"}
    assert names <= set(outline["official_control_name_2023"])
    assert set(result.residents["admin_unit"].dropna()) == {"陆家嘴街道", "潍坊新村街道"}
    # the replayed boundary is a box that takes in the Bund across the river: residents there
    # are in none of Pudong's units, every other one is in exactly one
    res = result.residents
    pudong = outline.to_crs(res.crs).union_all()
    in_pudong = np.array([pudong.covers(p) for p in res.geometry])
    assert (res["admin_unit"].notna().to_numpy() == in_pudong).all()
    assert 0 < (~in_pudong).sum() < in_pudong.sum()
    kinds = dict(zip(result.admin["zone"], result.admin["kind"], strict=True))
    assert kinds["陆家嘴街道"] == "subdistrict"  # named by the unit list's code 310115005
    assert "陆家嘴街道" not in result.summary["admin_units_without_residents"]
    assert np.isfinite(result.summary["inequality"]["categories"]["school"]["gini"])


# ------------------------------------------------------------------ reports for people (issue 11)

REPORTS = ["gaps_report.md", "gaps_report.html", "gaps_report.zh.md", "gaps_report.zh.html"]


@pytest.mark.parametrize("name", REPORTS)
def test_report_has_no_raw_pandas_values(gap_run: Path, name: str) -> None:
    import re

    text = (gap_run / name).read_text()
    if name.endswith(".html"):
        text = re.sub(r"data:image/png;base64,[^'\"]+", "", text)
    text = re.sub(r"\]\([^)]+\.png\)", "]()", text)  # figure file names
    for raw in ("None", "NaN", "nan", "False", "True", "all_categories", "elderly_care"):
        assert raw not in text, (name, raw)
    assert not re.search(r"\d{4,}\.\d", text), re.search(r".{40}\d{4,}\.\d.{20}", text)
    assert not re.search(r"\d\.\d{4,}", text)


def test_report_headline_and_numbers_for_people(gap_run: Path) -> None:
    from lifecircle.report import fmt_persons

    s = json.loads((gap_run / "gaps.json").read_text())
    cov = s["coverage"]
    md = (gap_run / "gaps_report.md").read_text()
    body = [line for line in md.splitlines()[1:] if line and not line.startswith("#")]
    share = cov["all_categories"]["coverage"] * 100
    assert body[0].startswith(f"{share:.1f}% of residents live within a 15-minute walk (1,000 m)")
    assert "the target is 99%" in body[0]
    total = cov["data"]["residents"]["estimated_residents"]
    assert total == round(cov["data"]["residents"]["total_weight"] / 37.8)
    assert (
        f"about {fmt_persons(cov['all_categories']['estimated_residents_covered'])} of " in body[0]
    )
    assert f"{fmt_persons(total)} estimated residents" in body[0]
    assert "," in fmt_persons(total)
    school = cov["categories"]["school"]["coverage"] * 100
    assert f"| School | {cov['categories']['school']['facilities']} | {school:.1f}% |" in md
    # the ring table gives estimated residents and labels the floor area as such
    ring_header = next(line for line in md.splitlines() if line.startswith("| Distance ring"))
    assert ring_header.startswith(
        "| Distance ring | Estimated residents | Residential floor area (m²) |"
    )
    assert "| yes |" in md or "| no |" in md
    assert "DBSCAN, radius 250 m, min_samples 1" in md


def test_chinese_report(gap_run: Path) -> None:
    md = (gap_run / "gaps_report.zh.md").read_text()
    html = (gap_run / "gaps_report.zh.html").read_text()
    for word in ("养老", "学校", "医疗卫生", "文化", "陆家嘴街道", "潍坊新村街道", "估算常住人口"):
        assert word in md, word
    assert "<html lang='zh-CN'>" in html
    assert md.splitlines()[0].startswith("# 15分钟社区生活圈缺口分析")
    assert "目标为 99%" in md
    assert html.count("data:image/png;base64,") == 15  # 5 gap maps, 8 charts, tier map and chart
    # the Chinese report shows the charts drawn in Chinese, the English one the English charts
    assert "coverage_by_category.zh.png" in md
    assert "](coverage_by_category.png)" not in md
    assert "coverage_by_category.zh.png" not in (gap_run / "gaps_report.md").read_text()


def test_caveats_appear_only_when_they_apply(gap_run: Path) -> None:
    from lifecircle.report import gap_report_sections, render_markdown

    s = json.loads((gap_run / "gaps.json").read_text())
    assert s["coverage"]["data"]["amap_pois"] is True  # Amap CSVs with the default mapping
    for amap in (True, False):
        s["coverage"]["data"]["amap_pois"] = amap
        md = render_markdown("t", gap_report_sections(s, {}, gpd.GeoDataFrame(), []))
        assert ("900-results-per-query" in md) is amap
        assert "No elderly-care facility" not in md  # the stand-in care home is there


def test_lujiazui_residents_are_all_central_city(gap_run: Path) -> None:
    """Every Lujiazui resident lies in a 街道 (unit code 0xx): the other tiers hold no one."""
    s = json.loads((gap_run / "gaps.json").read_text())
    h = s["hierarchy"]
    res = gpd.read_file(gap_run / "residents_tiers.gpkg")
    # independent check: the 36 unit polygons and their official codes
    units = gpd.read_file(
        DATA_DIR / "pudong/boundaries/pudong_36_streets_towns_osm_wgs84.geojson"
    ).to_crs(res.crs)
    joined = gpd.sjoin(res[["geometry"]], units, predicate="intersects", how="left")
    codes = joined.groupby(level=0)["official_control_code_2023"].min().astype(str)
    assert len(codes) == len(res) > 200
    assert codes.str[6:9].astype(int).between(1, 99).all()
    assert (res["tier"] == "central").all()
    assert h["tiers"]["central"]["resident_points"] == len(res)
    assert h["empty_tiers"] == ["suburban_core", "remote"]
    for entry in h["test"].values():
        assert entry["verdict"] == "not testable"
        assert entry["differences"] == []
    # persons: floor area / 37.8 m² per person (the estimated residents of the report)
    assert h["tiers"]["central"]["persons"] == pytest.approx(res["weight"].sum() / 37.8, rel=1e-6)
    report = (gap_run / "gaps_report.md").read_text()
    assert "The suburban-core and remote tiers hold no residents" in report
    assert "School: central city" in report
    for name in ("tier_map.png", "tier_chart.png", "tier_measures.csv", "degurba_grid.gpkg"):
        assert (gap_run / name).stat().st_size > 100, name
    # the Chinese report shows Chinese tier figures and method text (they were the English ones)
    zh = (gap_run / "gaps_report.zh.md").read_text()
    assert "(tier_map.zh.png)" in zh
    assert "(tier_chart.zh.png)" in zh
    assert (gap_run / "tier_chart.zh.png").stat().st_size > 100
    assert "Tiers: central city" not in zh
    assert "中心城区：街道（统计代码 0xx）：12 个" in zh
    table = pd.read_csv(gap_run / "tier_measures.csv")
    central = table.loc[(table["tier"] == "central") & (table["category"] == "school")]
    school = s["coverage"]["categories"]["school"]["coverage"]
    assert float(central["coverage"].iloc[0]) == pytest.approx(school, abs=1e-6)


def test_gaps_refuses_contradictory_density_thresholds(runner: CliRunner) -> None:
    result = runner.invoke(main, ["gaps", "--district", "pudong", "--cluster-density-km2", "2000"])
    assert result.exit_code == 1
    assert "--cluster-density-km2 2000 exceeds --centre-density-km2 1500" in result.output
    assert "Traceback" not in result.output


def test_chinese_first_gaps_names_the_report_it_wrote(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    """``--lang zh`` alone writes gaps_report.zh.html: the terminal names that file, in Chinese."""
    out = tmp_path_factory.mktemp("gaps_zh") / "o"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("LIFECIRCLE_DATA_DIR", str(DATA_DIR))
        mp.setenv("LIFECIRCLE_CACHE_DIR", str(_session_cache(tmp_path_factory)))
        mp.setenv("LIFECIRCLE_OVERPASS_URL", "http://127.0.0.1:9/api")
        result = CliRunner().invoke(
            main,
            [
                "gaps",
                "--district",
                "pudong",
                "--pois",
                str(POIS / "shanghai_school.csv"),
                "--category",
                "school",
                "--no-pdf",
                "--lang",
                "zh",
                "--out",
                str(out),
            ],
        )
    assert result.exit_code == 0, result.output
    line = next(x for x in result.output.splitlines() if "报告：" in x)
    named = Path(line.split("报告：", 1)[1].strip())
    assert named == out / "gaps_report.zh.html"
    assert named.is_file()
    assert not (out / "gaps_report.html").exists()
    assert "gaps in" not in result.output
    assert "中心城区" in result.output  # the tier verdicts in Chinese


def test_chinese_report_and_table_leave_no_english_behind(gap_run: Path) -> None:
    """The persons basis, residents basis, area, tier captions and the partial flag in Chinese."""
    from lifecircle.report import format_coverage_table

    md = (gap_run / "gaps_report.zh.md").read_text()
    for english in (
        "residential floor area",  # the tier section's persons basis
        "（buildings）",  # the residents' basis
        "Tiers and coverage of all categories",  # tier map and chart captions
        "Coverage by tier",
        "分析范围 pudong",  # the registry key instead of the district's name
    ):
        assert english not in md, english
    assert "人口：居住建筑面积 ÷ 人均 37.8 平方米" in md
    assert "（居住建筑）" in md
    assert "分析范围 浦东新区：" in md
    assert "各层级覆盖率及 95% 自助法置信区间" in md
    cov = json.loads((gap_run / "gaps.json").read_text())["coverage"]
    table = format_coverage_table(cov, lang="zh")
    assert cov["data"]["partial"] is True
    assert "PARTIAL" not in table
    assert "局部结果：" in table
    assert "范围 浦东新区" in table
    assert "buildings" not in table
    assert "PARTIAL: " in format_coverage_table(cov, lang="en")  # English unchanged


def test_each_report_shows_gap_maps_in_its_language(gap_run: Path) -> None:
    zh = (gap_run / "gaps_report.zh.md").read_text()
    en = (gap_run / "gaps_report.md").read_text()
    for cat in ("school", "health", "elderly_care", "culture", "all_categories"):
        assert (gap_run / f"gap_map_{cat}.zh.png").read_bytes()[:4] == b"\x89PNG"
        assert f"](gap_map_{cat}.zh.png)" in zh
        assert f"](gap_map_{cat}.png)" not in zh
        assert f"](gap_map_{cat}.png)" in en


def test_category_table_people_are_summed_by_hand_from_the_resident_layer(gap_run: Path) -> None:
    """Each row's estimated residents covered = sum of floor area / 37.8 over covered points."""
    from lifecircle.i18n import category_label
    from lifecircle.report import fmt_persons

    res = gpd.read_file(gap_run / "residents_tiers.gpkg")
    persons = res["weight"].to_numpy(dtype=float) / 37.8  # by hand, not the persons column
    md = (gap_run / "gaps_report.md").read_text()
    for cat in ("school", "health", "elderly_care", "culture", "all_categories"):
        covered = res[f"covered_{cat}"].to_numpy(dtype=bool)
        label = category_label("all" if cat == "all_categories" else cat)
        row = next(line for line in md.splitlines() if line.startswith(f"| {label} |"))
        cells = [c.strip() for c in row.strip("|").split("|")]
        share = persons[covered].sum() / persons.sum()
        assert cells[2] == f"{share * 100:.1f}%", cat
        assert cells[3] == fmt_persons(persons[covered].sum()), cat
        assert cells[3] != fmt_persons(persons[~covered].sum()), cat
