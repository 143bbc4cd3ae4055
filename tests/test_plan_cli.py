"""`lifecircle plan` end to end: its figures are what `coverage --add-facilities` computes."""

from __future__ import annotations

import json
from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
import shapely
from click.testing import CliRunner

from lifecircle.cli import main

AREA = ["--district", "pudong", "--category", "elderly_care"]
pytestmark = pytest.mark.filterwarnings("ignore:no elderly_care facilities:RuntimeWarning")


@pytest.fixture(scope="module")
def planned(tmp_path_factory: pytest.TempPathFactory, data_dir: Path) -> Path:
    out = tmp_path_factory.mktemp("plan") / "out"
    args = ["plan", *AREA, "--candidate-spacing-m", "150", "--max-sites", "3", "--out", str(out)]
    result = CliRunner().invoke(main, [*args, "--lang", "en", "--lang", "zh"])
    assert result.exit_code == 0, result.output
    return out


def test_plan_is_reproduced_by_coverage_with_the_sites_added(planned: Path, tmp_path: Path) -> None:
    plan = json.loads((planned / "plan.json").read_text())["categories"]["elderly_care"]
    assert plan["coverage_now"] == 0.0  # Lujiazui maps no elderly care (issue 8)
    assert plan["target_reachable"] is True
    assert plan["coverage_reached"] >= 0.99
    assert plan["solution"]["proven_optimal"] is True
    sites = gpd.read_file(planned / "sites.gpkg")
    assert len(sites) == plan["sites_needed"] >= 1
    assert sites["rank"].tolist() == list(range(1, len(sites) + 1))
    assert sites["cumulative_coverage"].iloc[-1] == pytest.approx(plan["coverage_reached"])
    assert (sites["unit"].astype(str).str.endswith(("街道", "镇"))).all()
    out = tmp_path / "cov"
    args = ["coverage", *AREA, "--no-isochrones", "--no-map", "--out", str(out)]
    result = CliRunner().invoke(main, [*args, "--add-facilities", str(planned / "sites.gpkg")])
    assert result.exit_code == 0, result.output
    cov = json.loads((out / "coverage.json").read_text())["categories"]["elderly_care"]
    assert cov["coverage"] == pytest.approx(plan["coverage_reached"], abs=1e-6)
    assert cov["facilities"] == len(sites)


def test_curve_rises_to_the_target_and_outputs_are_written(planned: Path) -> None:
    summary = json.loads((planned / "plan.json").read_text())
    plan = summary["categories"]["elderly_care"]
    curve = [c["coverage"] for c in plan["curve"]]
    assert curve == sorted(curve)
    n = plan["sites_needed"]
    # fewer sites than needed cannot reach the target (the curve is maximal coverage)
    assert all(c < 0.99 for c in curve[: n - 1])
    assert curve[n - 1] >= 0.99
    for name in ("plan_curve_elderly_care.png", "plan_map_elderly_care.png", "candidates.gpkg"):
        assert (planned / name).is_file()
    assert sorted(summary["outputs"]) == sorted(p.name for p in planned.iterdir())


def test_user_polygon_candidates_and_an_unreachable_target(data_dir: Path, tmp_path: Path) -> None:
    # two parcels in Lujiazui: not enough to reach 99% of residents within 1,000 m
    pts = gpd.GeoSeries(
        [shapely.Point(121.5035, 31.2335), shapely.Point(121.4990, 31.2400)], crs=4326
    ).to_crs("EPSG:32651")
    parcels = gpd.GeoDataFrame(
        {"name": ["parcel A", "parcel B"]},
        geometry=[shapely.box(p.x - 40, p.y - 30, p.x + 40, p.y + 30) for p in pts],
        crs="EPSG:32651",
    )
    cand = tmp_path / "parcels.gpkg"
    parcels.to_file(cand)
    out = tmp_path / "out"
    args = ["plan", *AREA, "--candidates", str(cand), "--max-sites", "2", "--out", str(out)]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    plan = json.loads((out / "plan.json").read_text())["categories"]["elderly_care"]
    assert plan["target_reachable"] is False
    assert "cannot be reached" in plan["note"]
    assert "target out of reach" in result.output
    assert plan["candidates"] == 2
    sites = gpd.read_file(out / "sites.gpkg")
    # each site is planned at the point of its parcel's outline nearest to a street
    dist = [parcels.geometry.boundary.distance(g).min() for g in sites.geometry]
    assert np.allclose(dist, 0.0, atol=1e-6)
    out2 = tmp_path / "cov"
    args = ["coverage", *AREA, "--no-isochrones", "--no-map", "--out", str(out2)]
    result = CliRunner().invoke(main, [*args, "--add-facilities", str(out / "sites.gpkg")])
    assert result.exit_code == 0, result.output
    cov = json.loads((out2 / "coverage.json").read_text())["categories"]["elderly_care"]
    assert cov["coverage"] == pytest.approx(plan["coverage_reached"], abs=1e-6)


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--max-sites", "-1"], "--max-sites"),
        (["--time-limit-s", "0"], "--time-limit-s"),
        (["--candidate-spacing-m", "nan"], "--candidate-spacing-m"),
        (["--tier", "no_such_tier"], "--tier"),
    ],
)
def test_bad_plan_options_are_refused_in_one_line(
    extra: list[str], message: str, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    result = CliRunner().invoke(main, ["plan", *AREA, "--out", str(out), *extra])
    assert result.exit_code != 0
    assert message in result.output
    assert "Traceback" not in result.output
    assert len(result.output.strip().splitlines()) == 1
    assert not out.exists()


def test_add_facilities_needs_a_category_and_an_out_folder(tmp_path: Path) -> None:
    layer = gpd.GeoDataFrame(geometry=[shapely.Point(121.5, 31.23)], crs=4326)
    path = tmp_path / "x.gpkg"
    layer.to_file(path)
    out = tmp_path / "out"
    result = CliRunner().invoke(
        main, ["coverage", *AREA, "--out", str(out), "--add-facilities", str(path)]
    )
    assert result.exit_code != 0
    assert "category" in result.output
    assert not (out / "coverage.json").exists()
    result = CliRunner().invoke(main, ["coverage", *AREA, "--add-facilities", str(path)])
    assert result.exit_code != 0
    assert "--out" in result.output


def test_a_batch_scenario_can_ask_for_a_plan(data_dir: Path, tmp_path: Path) -> None:
    """`plan = true` in a batch scenario writes the plan beside coverage and gaps (issue 10)."""
    from lifecircle import settings
    from lifecircle.batch import job_task, parse_spec, plan_jobs, prepare_task

    spec = {
        "areas": [{"district": "pudong"}],
        "scenarios": [
            {"name": "care", "categories": "elderly_care", "plan": True, "plan_max_sites": 2}
        ],
    }
    areas, scenarios = parse_spec(spec, base=tmp_path)
    assert scenarios[0].plan is True
    (job,) = plan_jobs(areas, scenarios, tmp_path / "out")
    run = settings.Settings.from_environment().resolved()
    prepared = prepare_task(areas[0], run)
    row = job_task(prepared, job, run)
    assert row["status"] == "ok", row["error"]
    plan = json.loads((job.folder / "plan.json").read_text())["categories"]["elderly_care"]
    assert row["sites_needed_elderly_care"] == plan["sites_needed"] >= 1
    assert {"coverage.json", "gaps.json", "plan.json", "sites.gpkg"} <= {
        p.name for p in job.folder.iterdir()
    }
    # the flag is part of the job's hash: the same scenario without a plan is another job
    (no_plan,) = plan_jobs(
        areas, parse_spec({**spec, "scenarios": [{"name": "care"}]}, base=tmp_path)[1], tmp_path
    )
    assert no_plan.key != job.key
    bad = {**spec, "scenarios": [{"name": "x", "plan": "yes"}]}
    with pytest.raises(ValueError, match="plan"):
        parse_spec(bad, base=tmp_path)


def test_the_chinese_plan_report_shows_chinese_figures(planned: Path) -> None:
    """Each language's report embeds its own curve and map (issue 11 review: zh showed English)."""
    zh = (planned / "plan_report.zh.md").read_text(encoding="utf-8")
    en = (planned / "plan_report.md").read_text(encoding="utf-8")
    for kind in ("curve", "map"):
        assert f"plan_{kind}_elderly_care.zh.png" in zh
        assert f"](plan_{kind}_elderly_care.png)" not in zh
        assert f"plan_{kind}_elderly_care.png" in en
        assert (planned / f"plan_{kind}_elderly_care.zh.png").read_bytes()[:4] == b"\x89PNG"


def test_plan_curve_words_follow_the_language() -> None:
    from lifecircle.plot import plot_plan_curve

    curve = [0.5, 0.9, 0.996]
    _fig, ax = plot_plan_curve("elderly_care", 0.0, curve, 0.99, sites_needed=3, lang="zh")
    assert ax.get_title() == "养老：覆盖率随新增设施数的变化"
    assert ax.get_xlabel() == "新增设施数（k）"
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert legend == ["新增 k 处设施的最优覆盖率", "目标"]
    assert ax.texts[0].get_text() == "3 处新设施即达到目标"
    # the curve starts at today's coverage and the target line sits at the target
    assert ax.lines[0].get_ydata().tolist() == pytest.approx([0.0, 50.0, 90.0, 99.6])
    assert ax.lines[1].get_ydata()[0] == pytest.approx(99.0)
