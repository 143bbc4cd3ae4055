from __future__ import annotations

import json
from pathlib import Path

import geopandas as gpd
import numpy as np
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
    assert s["admin_units_without_residents"] == ["三林镇", "北蔡镇", "张江镇", "金桥镇"]
    comp = [c for c in s["user_zone_comparison"] if c["category"] == "all_categories"]
    assert comp
    assert comp[0]["zone"] == "south"
    clusters = s["clusters"]
    assert clusters
    assert clusters[0]["rank"] == 1
    assert [c["residents"] for c in clusters] == sorted(
        (c["residents"] for c in clusters), reverse=True
    )
    assert s["flags"]
    md = (gap_run / "gaps_report.md").read_text()
    assert "## Gap clusters" in md
    assert "![" in md
    html = (gap_run / "gaps_report.html").read_text()
    assert html.count("data:image/png;base64,") == 5
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
        assert len(images) == 5
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
    from lifecircle.pipeline import GapOptions, run_gaps
    from lifecircle.prepare import AreaRequest
    from tests.conftest import STATUS, ReplayServer, overpass_json_from_boundaries

    towns = overpass_json_from_boundaries(
        DATA_DIR / "pudong" / "boundaries" / "pudong_4_towns_osm_wgs84.geojson",
        "referenceAdminName",
    )
    with ReplayServer(
        {
            "/api/status": STATUS,
            "/api/interpreter": [
                (b"administrative", json.dumps(towns).encode()),
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
    assert any(b"administrative" in b for b in posts)
    assert (tmp_path / "cache" / "raw" / "pudong" / "admin_units.geojson").is_file()
    assert sorted(result.summary["admin_units_without_residents"]) == sorted(
        ["张江镇", "金桥镇", "三林镇", "北蔡镇"]
    )
    assert np.isfinite(result.summary["inequality"]["categories"]["school"]["gini"])
