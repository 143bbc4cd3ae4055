from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from lifecircle.cli import main
from tests.conftest import LUJIAZUI, POIS

POI_ARGS = [
    "--pois",
    str(POIS / "shanghai_school.csv"),
    "--pois",
    str(POIS / "shanghai_hospital.csv"),
]


def test_fetch_pudong_summary(runner: CliRunner) -> None:
    result = runner.invoke(main, ["fetch", "--district", "pudong", *POI_ARGS])
    assert result.exit_code == 0, result.output
    out = result.output
    assert "network: 6,0" in out
    assert "components" in out
    assert "school" in out
    assert "imported" in out
    assert "basis buildings" in out
    assert "km² of 1,210.4 km²" in out


def test_coverage_pudong_end_to_end(runner: CliRunner, tmp_path: Path) -> None:
    out = tmp_path / "out"
    args = ["coverage", "--district", "pudong", *POI_ARGS, "--out", str(out)]
    result = runner.invoke(main, args)
    assert result.exit_code == 0, result.output
    assert "PARTIAL" in result.output
    assert "Meets target" in result.output  # a yes/no column, no "BELOW"/"False"
    assert "False" not in result.output
    summary = json.loads((out / "coverage.json").read_text())
    p = summary["parameters"]
    assert (p["threshold_m"], p["target"], p["minutes"], p["speed_kmh"]) == (
        1000.0,
        0.99,
        15.0,
        4.0,
    )
    for cat in ("school", "health", "elderly_care", "culture"):
        c = summary["categories"][cat]
        assert 0 <= c["coverage"] <= 1
        assert c["meets_target"] is (c["coverage"] >= 0.99)
        assert c["gap_points"] == pytest.approx(max(0, 99 - 100 * c["coverage"]), abs=1e-3)
        # Lujiazui maps no elderly-care facility of GB 50180 (its one candidate, 陆家嘴街道老年协会,
        # is an association office: see tests/test_facilities.py) and the Amap lists hold none
        assert (c["facilities"] == 0) if cat == "elderly_care" else (c["facilities"] >= 1)
    assert summary["all_categories"]["coverage"] <= min(
        summary["categories"][c]["coverage"] for c in summary["categories"]
    )
    data = summary["data"]
    assert data["partial"] is True
    assert data["analysed_area_km2"] < 10 < data["district_area_km2"]
    assert data["residents"]["basis"] == "buildings"
    assert data["osm"]["osm_base"] == "2026-08-15T11:23:42Z"
    assert summary["lifecircle_version"]
    assert next(r["zone"] for r in summary["zones"]["rings"]) == "0-3 km"
    for name in ("coverage_map.png", "isochrones.gpkg", "residents_coverage.gpkg"):
        assert (out / name).stat().st_size > 1000
    # refuses to clobber without --overwrite
    again = runner.invoke(main, args)
    assert again.exit_code == 1
    assert "--overwrite" in again.output
    assert runner.invoke(main, [*args, "--overwrite", "--no-isochrones"]).exit_code == 0


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--district", "atlantis"], "unknown district 'atlantis'"),
        (["--district", "pudong", "--target", "1.5"], "--target must be in (0, 1]"),
        (["--district", "pudong", "--minutes", "0"], "--minutes must be a finite number > 0"),
        (["--district", "pudong", "--profile", "nowhere"], "unknown standard profile"),
        (["--bbox", "1,2,3"], "W,S,E,N"),
        (["--district", "pudong", "--osm-file", "/nonexistent.osm.pbf"], "does not exist"),
    ],
)
def test_bad_input_is_one_line(runner: CliRunner, args: list[str], message: str) -> None:
    result = runner.invoke(main, ["coverage", *args, "--no-map", "--no-isochrones"])
    assert result.exit_code == 1
    assert message in result.output
    assert "Traceback" not in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_unknown_category_is_refused(runner: CliRunner) -> None:
    result = runner.invoke(main, ["coverage", "--district", "pudong", "--category", "shops"])
    assert result.exit_code == 2
    assert "shops" in result.output


def test_malformed_osm_file_leaves_no_output(runner: CliRunner, tmp_path: Path) -> None:
    bad = tmp_path / "bad.osm"
    bad.write_text("<osm><way id='1'><nd ref=")
    out = tmp_path / "out"
    result = runner.invoke(
        main,
        [
            "coverage",
            "--bbox",
            "121.49,31.22,121.51,31.24",
            "--osm-file",
            str(bad),
            "--out",
            str(out),
        ],
    )
    assert result.exit_code == 1
    assert "bad.osm" in result.output
    assert not out.exists()  # not even an empty folder


def test_unwritable_output(runner: CliRunner, tmp_path: Path, private_cache: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    result = runner.invoke(
        main,
        [
            "coverage",
            "--district",
            "pudong",
            "--osm-file",
            str(LUJIAZUI),
            "--out",
            str(blocker / "out"),
        ],
    )
    assert result.exit_code == 1
    assert "writable folder" in result.output
    assert "Traceback" not in result.output
    assert len(result.output.strip().splitlines()) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file"]  # nothing written


def test_no_facilities_of_a_category_warns_and_reports_zero(
    runner: CliRunner, tmp_path: Path
) -> None:
    tags = tmp_path / "tags.csv"
    tags.write_text("category,subtype,key,value,name_pattern\nschool,school,amenity,school,\n")
    result = runner.invoke(
        main,
        [
            "coverage",
            "--district",
            "pudong",
            "--tags",
            str(tags),
            "--out",
            str(tmp_path / "o"),
            "--no-map",
            "--no-isochrones",
        ],
    )
    assert result.exit_code == 0, result.output
    assert "Warning: no elderly_care facilities" in result.output
    summary = json.loads((tmp_path / "o" / "coverage.json").read_text())
    assert summary["categories"]["elderly_care"]["coverage"] == 0.0


def test_districts_command(runner: CliRunner) -> None:
    result = runner.invoke(main, ["districts"])
    assert "pudong" in result.output
    assert "浦东新区" in result.output


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def test_rerun_without_isochrones_removes_the_old_ones(runner: CliRunner, tmp_path: Path) -> None:
    """Issue 8.5: an output folder holds exactly one run's files."""
    out = tmp_path / "out"
    args = ["coverage", "--district", "pudong", "--out", str(out), "--no-map"]
    assert runner.invoke(main, args).exit_code == 0
    assert (out / "isochrones.gpkg").is_file()
    result = runner.invoke(main, [*args, "--overwrite", "--no-isochrones", "--minutes", "10"])
    assert result.exit_code == 0, result.output
    summary = json.loads((out / "coverage.json").read_text())
    assert summary["parameters"]["minutes"] == 10
    assert sorted(p.name for p in out.iterdir()) == sorted(summary["outputs"])
    assert sorted(summary["outputs"]) == [
        "coverage.json",
        "facilities_reach.gpkg",
        "residents_coverage.gpkg",
    ]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]  # no staging left beside it


def test_run_that_dies_after_its_first_write_leaves_the_folder_as_it_was(
    runner: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A run killed half-way (here: the disk fills after its first file) changes nothing."""
    from lifecircle import io

    out = tmp_path / "out"
    args = ["coverage", "--district", "pudong", "--out", str(out), "--no-map"]
    assert runner.invoke(main, args).exit_code == 0
    before = _snapshot(out)
    assert set(before) == {
        "coverage.json",
        "residents_coverage.gpkg",
        "facilities_reach.gpkg",
        "isochrones.gpkg",
        "category_isochrones.gpkg",
    }
    real = io.save_gdf
    written: list[str] = []

    def dies_after_first(gdf: object, path: Path, **kw: object) -> Path:
        if written:
            raise OSError(28, "No space left on device")
        written.append(Path(path).name)
        return real(gdf, path, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(io, "save_gdf", dies_after_first)
    result = runner.invoke(main, [*args, "--overwrite", "--minutes", "10"])
    assert result.exit_code != 0
    assert written == ["residents_coverage.gpkg"]  # the run did write its first file
    assert _snapshot(out) == before  # same names, same bytes
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]
    monkeypatch.undo()
    # and a completed rerun replaces the whole set
    assert runner.invoke(main, [*args, "--overwrite", "--minutes", "10"]).exit_code == 0
    after = json.loads((out / "coverage.json").read_text())
    assert after["parameters"]["minutes"] == 10
    assert _snapshot(out)["residents_coverage.gpkg"] != before["residents_coverage.gpkg"]


def test_minutes_with_a_tiered_profile_is_refused(runner: CliRunner, tmp_path: Path) -> None:
    out = tmp_path / "out"
    args = ["coverage", "--district", "pudong", "--profile", "shanghai", "--minutes", "20"]
    result = runner.invoke(main, [*args, "--out", str(out), "--no-map", "--no-isochrones"])
    assert result.exit_code == 1
    lines = result.output.strip().splitlines()
    assert len(lines) == 1
    assert "--minutes 20 does not apply to profile shanghai" in lines[0]
    assert "drop --minutes" in lines[0]
    assert "Traceback" not in result.output
    assert not out.exists() or not any(out.iterdir())


def test_shanghai_tiers_follow_the_walking_speed(runner: CliRunner, tmp_path: Path) -> None:
    import geopandas as gpd
    import numpy as np

    out = tmp_path / "out"
    args = ["coverage", "--district", "pudong", "--profile", "shanghai", "--speed-kmh", "3"]
    result = runner.invoke(main, [*args, "--out", str(out), "--no-map", "--no-isochrones"])
    assert result.exit_code == 0, result.output
    # the table header states the thresholds applied, not the global 1000 m
    headline, header = result.output.splitlines()[:2]
    assert "each tier's walk (tiers of 5-15 min (250-750 m) at 3 km/h)" in headline
    assert header.startswith("Coverage within tiers of 5-15 min (250-750 m) at 3 km/h")
    assert (
        "  School: kindergarten 5 min (250 m), primary 10 min (500 m), secondary 15 min (750 m)"
        in (result.output)
    )
    assert "1000 m" not in result.output
    summary = json.loads((out / "coverage.json").read_text())
    p = summary["parameters"]
    assert p["threshold_m"] is None
    assert p["threshold_label"] == "tiers of 5-15 min (250-750 m) at 3 km/h"
    pinned = [
        (
            t["category"],
            t["tier"],
            tuple(t["subtypes"]),
            t["minutes"],
            t["threshold_m"],
            t["required"],
        )
        for t in p["thresholds"]
    ]
    assert pinned == [
        ("school", "kindergarten", ("kindergarten",), 5.0, 250.0, True),
        ("school", "primary", ("primary",), 10.0, 500.0, True),
        ("school", "secondary", ("secondary",), 15.0, 750.0, True),
        ("health", "community_health_centre", ("community_health_centre",), 15.0, 750.0, True),
        ("health", "hospital_or_clinic", ("hospital", "clinic"), 15.0, 750.0, False),
        ("elderly_care", "day_care", ("day_care",), 5.0, 250.0, True),
        ("elderly_care", "service_centre", ("service_centre",), 5.0, 250.0, False),
        ("elderly_care", "nursing_home", ("nursing_home", "care_home"), 15.0, 750.0, True),
        (
            "culture",
            "cultural_centre",
            ("community_centre", "arts_centre", "library"),
            15.0,
            750.0,
            True,
        ),
        (
            "culture",
            "venues",
            ("theatre", "tourism_museum", "tourism_gallery"),
            15.0,
            750.0,
            False,
        ),
    ]
    assert all("GB 50180-2018" in t["source"] for t in p["thresholds"] if t["required"])
    # the school figure, recomputed from the written residents at 250/500/750 m
    res = gpd.read_file(out / "residents_coverage.gpkg")
    w = res["weight"].to_numpy(dtype=float)
    met = (
        (res["status"] == "ok").to_numpy()
        & (res["dist_school_kindergarten_m"].to_numpy(dtype=float) <= 250)
        & (res["dist_school_primary_m"].to_numpy(dtype=float) <= 500)
        & (res["dist_school_secondary_m"].to_numpy(dtype=float) <= 750)
    )
    assert summary["categories"]["school"]["coverage"] == pytest.approx(
        w[met].sum() / w.sum(), abs=1e-6
    )
    tiers = {t["tier"]: t for t in summary["categories"]["school"]["thresholds"]}
    kinder = (res["status"] == "ok").to_numpy() & (
        res["dist_school_kindergarten_m"].to_numpy(dtype=float) <= 250
    )
    assert tiers["kindergarten"]["coverage"] == pytest.approx(w[kinder].sum() / w.sum(), abs=1e-6)
    assert np.isfinite(res["dist_school_m"].to_numpy(dtype=float)).any()


def test_cli_defaults_are_the_library_defaults() -> None:
    import re

    from lifecircle import cli, coverage, facilities, gaps, isochrones, settings, snapping, zones
    from lifecircle.pipeline import CoverageOptions, GapOptions
    from lifecircle.prepare import AreaRequest, PoiSource

    # the library's modules and dataclasses use the settings constants ...
    cov, gap, area, poi = CoverageOptions(), GapOptions(), AreaRequest(), PoiSource(Path())
    assert facilities.CATEGORIES == settings.CATEGORIES == cov.categories
    assert coverage.PROFILES == settings.PROFILES
    assert (cov.minutes, cov.speed_kmh, cov.target, cov.profile) == (
        settings.DEFAULT_MINUTES,
        settings.DEFAULT_SPEED_KMH,
        settings.DEFAULT_TARGET,
        settings.DEFAULT_PROFILE,
    )
    assert cov.max_snap_m == snapping.DEFAULT_MAX_SNAP_M == settings.DEFAULT_MAX_SNAP_M
    assert cov.ring_edges_km == settings.DEFAULT_RING_EDGES_KM
    assert cov.isochrone_buffer_m == isochrones.DEFAULT_BUFFER_M
    assert isochrones.DEFAULT_BUFFER_M == settings.DEFAULT_ISOCHRONE_BUFFER_M
    assert gap.lag_points == gaps.DEFAULT_LAG_POINTS == settings.DEFAULT_LAG_POINTS
    assert gap.cluster_eps_m == gaps.DEFAULT_CLUSTER_EPS_M == settings.DEFAULT_CLUSTER_EPS_M
    assert gap.zone_ring_m == zones.DEFAULT_ZONE_RING_M == settings.DEFAULT_ZONE_RING_M
    assert area.margin_m == settings.DEFAULT_MARGIN_M
    assert area.population_column == settings.DEFAULT_POPULATION_COLUMN
    assert (poi.datum, poi.lon_col, poi.lat_col, poi.name_col, poi.category_field) == (
        settings.DEFAULT_POI_DATUM,
        settings.DEFAULT_POI_LON_COL,
        settings.DEFAULT_POI_LAT_COL,
        settings.DEFAULT_POI_NAME_COL,
        settings.DEFAULT_POI_CATEGORY_FIELD,
    )
    # ... and so do the CLI's options
    params = {p.name: p.default for p in main.commands["gaps"].params}
    params.update({p.name: p.default for p in main.commands["coverage"].params})
    assert (params["minutes"], params["speed_kmh"], params["target"], params["profile"]) == (
        cov.minutes,
        cov.speed_kmh,
        cov.target,
        cov.profile,
    )
    assert params["max_snap_m"] == cov.max_snap_m
    assert tuple(float(v) for v in params["rings"].split(",")) == cov.ring_edges_km
    assert params["isochrone_buffer_m"] == cov.isochrone_buffer_m
    assert (params["lag_points"], params["cluster_eps_m"], params["zone_ring_m"]) == (
        gap.lag_points,
        gap.cluster_eps_m,
        gap.zone_ring_m,
    )
    assert (params["margin_m"], params["population_column"]) == (
        area.margin_m,
        area.population_column,
    )
    assert (params["pois_crs"], params["pois_lon"], params["pois_lat"]) == (
        poi.datum,
        poi.lon_col,
        poi.lat_col,
    )
    assert (params["pois_name"], params["pois_field"]) == (poi.name_col, poi.category_field)
    # none is repeated as a literal in the CLI's source
    source = Path(cli.__file__).read_text("utf-8")
    assert re.findall(r"default=[-\d.\"']+[\w]", source) == []


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_map_title_states_the_tiers(tmp_path: Path) -> None:
    import matplotlib.pyplot as plt

    from lifecircle.pipeline import CoverageOptions, run_coverage
    from lifecircle.plot import plot_coverage_map
    from lifecircle.prepare import AreaRequest

    options = CoverageOptions(profile="shanghai", speed_kmh=3.0, make_map=False, isochrones=False)
    result = run_coverage(AreaRequest(district="pudong"), options, out_dir=tmp_path / "o")
    assert result.prepared is not None
    fig, ax = plot_coverage_map(result.prepared, result.residents, None, result.summary)
    title = ax.get_title()
    plt.close(fig)
    assert "residents within tiers of 5-15 min (250-750 m) at 3 km/h of every category" in title
    assert "1000 m" not in title
