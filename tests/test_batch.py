from __future__ import annotations

import json
import os
import re
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

from lifecircle import settings
from lifecircle.batch import parse_spec, run_batch
from lifecircle.cli import main
from lifecircle.errors import InputError
from tests.conftest import LUJIAZUI


@pytest.fixture(scope="module")
def cluster() -> Iterator[str]:
    """One local cluster of two worker processes for the module (starting one takes seconds).

    Its workers are spawned before any test's environment is set: they see
    the test's data and cache folders only through the settings a batch
    passes to its tasks.
    """
    from distributed import LocalCluster

    with LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0"
    ) as local:
        yield local.scheduler_address


@pytest.fixture(scope="module")
def threaded() -> Iterator[str]:
    """One in-process worker running two tasks at a time in threads (sees monkeypatches)."""
    from distributed import LocalCluster

    with LocalCluster(
        n_workers=1, threads_per_worker=2, processes=False, dashboard_address=":0"
    ) as local:
        yield local.scheduler_address


SPEC = f"""
[[areas]]
name = "lujiazui"
district = "pudong"

[[areas]]
name = "nowhere"                  # no street inside: every job of this area fails
bbox = [0.0, 0.0, 0.01, 0.01]     # the natural TOML form of a bbox
osm_file = "{LUJIAZUI}"

[[scenarios]]
name = "15min"

[[scenarios]]
name = "10min"
minutes = 10

[[scenarios]]
name = "shanghai"
profile = "shanghai"
"""


def test_spec_errors(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="unknown key 'minuts'"):
        parse_spec(
            {"areas": [{"district": "pudong"}], "scenarios": [{"name": "a", "minuts": 5}]},
            base=tmp_path,
        )
    with pytest.raises(InputError, match="needs at least one"):
        parse_spec({"areas": [{"district": "pudong"}]}, base=tmp_path)
    with pytest.raises(InputError, match="names must be unique"):
        parse_spec(
            {"areas": [{"district": "pudong"}], "scenarios": [{"name": "a"}, {"name": "a"}]},
            base=tmp_path,
        )
    (tmp_path / "a.osm").write_text("<osm/>")
    areas, _ = parse_spec(
        {
            "areas": [{"name": "x", "bbox": "121.49,31.22,121.52,31.245", "osm_file": "a.osm"}],
            "scenarios": [{"name": "a"}],
        },
        base=tmp_path,
    )
    assert areas[0].request.osm_file == tmp_path / "a.osm"


# (entries of the spec file, what the one-line error must say)
BAD_SPECS = [
    (
        '[[scenarios]]\nname = "a"\nminutes = "fifteen"',
        r"scenarios #1 'a', minutes: must be a number, got 'fifteen'",
    ),
    ('[[scenarios]]\nname = "a"\nminutes = "15"', r"minutes: must be a number, got '15'"),
    ('[[scenarios]]\nname = "a"\nminutes = nan', r"minutes: must be a finite number"),
    ('[[scenarios]]\nname = "a"\nspeed_kmh = 0', r"speed_kmh: must be greater than 0"),
    ('[[scenarios]]\nname = "a"\nmax_snap_m = -1', r"max_snap_m: must be greater than 0"),
    (
        '[[scenarios]]\nname = "a"\ntarget = 99',
        r"target: must be less than or equal to 1, got 99 \(0.99",
    ),
    ('[[scenarios]]\nname = "a"\ncategories = "shops"', r"categories: unknown category 'shops'"),
    ('[[scenarios]]\nname = "a"\ncategories = []', r"categories: "),
    ('[[scenarios]]\nname = "a"\nisochrones = "yes"', r"isochrones: must be true or false"),
    ('[[scenarios]]\nname = "a"\nrings = [0, 3, 3]', r"rings: must be two or more increasing"),
    ('[[scenarios]]\nname = "a"\nprofile = "shanghia"', r"profile: unknown profile 'shanghia'"),
    ('[[scenarios]]\nname = "a"\nprofile = "mine.csv"', r"profile: file .*mine.csv does not exist"),
    ('[[scenarios]]\nname = "a/b"', r"name: 'a/b' cannot be a folder name"),
    (
        '[[scenarios]]\nname = "a"\nfloor_area_per_person_m2 = 0',
        r"floor_area_per_person_m2: must be greater than 0",
    ),
    (
        '[[scenarios]]\nname = "a"\nfloor_area_per_person_m2 = nan',
        r"floor_area_per_person_m2: must be a finite number",
    ),
    ('[[scenarios]]\nname = "a"\npopulation_total = -5', r"population_total: "),
    ('[[scenarios]]\nname = "a"\nlang = "fr"', r"lang\[0\]: "),
    (
        '[[scenarios]]\nname = "a"\nminuts = 10',
        r"scenarios #1 'a', minuts: unknown key 'minuts': use ",
    ),
    ("[[scenarios]]\nminutes = 10", r"scenarios #1, name: is required"),
    ('[[scenario]]\nname = "a"', r"scenario: unknown key 'scenario': use areas, scenarios"),
]
BAD_AREAS = [
    ('areas = ["pudong"]', r"areas #1: must be a table with keys among .*district"),
    (
        '[[areas]]\ndistrict = "pudongg"',
        r"areas #1 'pudongg', district: unknown district 'pudongg'",
    ),
    (
        '[[areas]]\nname = "x"\nbbox = [121.49, 31.22, 121.52]',
        r"areas #1 'x', bbox: \[121.49, 31.22, 121.52\] is not \[W, S, E, N\]",
    ),
    (
        '[[areas]]\nname = "x"\nbbox = [31.22, 121.49, 31.245, 121.52]',
        r"bbox: .* latitude first: give longitude first",
    ),
    (
        '[[areas]]\nname = "x"\nbbox = ["121.49", 31.22, 121.52, 31.245]',
        r"bbox: must be \[W, S, E, N\] in degrees",
    ),
    (
        '[[areas]]\ndistrict = "pudong"\nbbox = [121.49, 31.22, 121.52, 31.245]',
        r"areas #1 'pudong': give exactly one of district, boundary or bbox \(got district and",
    ),
    (
        "[[areas]]\nbbox = [121.49, 31.22, 121.52, 31.245]",
        r"areas #1: an area without a district needs a name",
    ),
    (
        '[[areas]]\ndistrict = "pudong"\nmargin_m = -1',
        r"margin_m: must be greater than or equal to 0",
    ),
    (
        '[[areas]]\ndistrict = "pudong"\npois = "$NO_SUCH_VAR/x.csv"',
        r"pois\[0\].path: file .*x.csv does not exist: set NO_SUCH_VAR or check",
    ),
    (
        '[[areas]]\ndistrict = "pudong"\npois = [{path = "p.csv", crs = "WGS84"}]',
        r"pois\[0\].crs: must be 'wgs84', 'gcj02' or 'bd09', got 'WGS84'",
    ),
    (
        '[[areas]]\ndistrict = "pudong"\npois = [{path = "p.csv", colour = "red"}]',
        r"pois\[0\].colour: unknown key 'colour': use crs, field",
    ),
    (
        '[[areas]]\ndistrict = "pudong"\nosm_file = "missing.osm"',
        r"osm_file: file .*missing.osm does not exist",
    ),
    (
        '[[areas]]\ndistrict = "pudong"\n\n[[areas]]\nname = "pudong"\n'
        'bbox = "121.49,31.22,121.52,31.245"',
        r"area names must be unique .* 'pudong' repeats",
    ),
]


@pytest.mark.parametrize(("entries", "expected"), BAD_SPECS + BAD_AREAS)
def test_bad_spec_refused_in_one_line_naming_file_entry_and_field(
    runner: CliRunner, tmp_path: Path, entries: str, expected: str
) -> None:
    """Every spec mistake stops the batch before any job, in one line (no traceback)."""
    (tmp_path / "p.csv").write_text("lon,lat,name,type\n121.5,31.23,a,school\n")
    areas = '[[areas]]\ndistrict = "pudong"\n'
    scenarios = '[[scenarios]]\nname = "a"\n'
    has_areas = "areas" in entries
    text = entries + "\n\n" + scenarios if has_areas else areas + "\n" + entries
    spec = tmp_path / "spec.toml"
    spec.write_text(text)
    out = tmp_path / "out"
    result = runner.invoke(main, ["batch", str(spec), "--out", str(out)])
    assert result.exit_code == 1, result.output
    line = result.output.strip()
    assert "\n" not in line
    assert "Traceback" not in line
    assert line.startswith(f"Error: {spec}"), line
    assert re.search(expected, line), line
    assert not out.exists()  # refused before any job ran


def test_natural_spec_forms_are_accepted(tmp_path: Path) -> None:
    """A list bbox, a single category, a single POI file and rings as text."""
    import tomllib

    (tmp_path / "p.csv").write_text("lon,lat,name,type\n121.5,31.23,a,school\n")
    text = f"""
[[areas]]
name = "box"
bbox = [121.49, 31.22, 121.52, 31.245]
osm_file = "{LUJIAZUI}"
pois = "p.csv"

[[scenarios]]
name = "care"
categories = "elderly_care"
rings = "0,1,2"
minutes = 10
max_snap_m = 150
"""
    areas, scenarios = parse_spec(tomllib.loads(text), base=tmp_path)
    # the same cache key as the CLI's --bbox 121.49,31.22,121.52,31.245
    assert areas[0].request.bbox == "121.49,31.22,121.52,31.245"
    assert areas[0].request.pois[0].path == tmp_path / "p.csv"
    assert areas[0].request.offline
    assert scenarios[0].options.categories == ("elderly_care",)
    assert scenarios[0].options.ring_edges_km == (0.0, 1.0, 2.0)
    assert scenarios[0].options.minutes == 10.0
    assert scenarios[0].options.max_snap_m == 150.0
    assert scenarios[0].options.langs == ("en",)
    assert (
        scenarios[0].options.floor_area_per_person_m2 == settings.DEFAULT_FLOOR_AREA_PER_PERSON_M2
    )
    assert scenarios[0].options.population_total is None
    text = text.replace("max_snap_m = 150", 'lang = ["zh", "en"]\npopulation_total = 120000')
    _, scenarios = parse_spec(tomllib.loads(text), base=tmp_path)
    assert scenarios[0].options.langs == ("zh", "en")
    assert scenarios[0].options.population_total == 120000.0
    # an area's margin is the CLI's (3,000 m), not a batch-only value
    assert areas[0].request.margin_m == settings.DEFAULT_MARGIN_M


def test_batch_runs_skips_and_records_failures(tmp_path: Path, cluster: str) -> None:
    spec = tmp_path / "batch.toml"
    spec.write_text(SPEC)
    out = tmp_path / "out"
    seen: list[str] = []
    result = run_batch(
        spec, out, scheduler=cluster, progress=lambda row: seen.append(row["scenario"])
    )
    s = result.summary
    assert len(s) == 6
    assert len(seen) == 6
    ok = s.loc[s["area"] == "lujiazui"]
    assert ok["status"].tolist() == ["ok", "ok", "ok"]
    by_name = ok.set_index("scenario")["coverage_health"]
    assert (by_name[["15min", "10min"]] > 0).all()
    # the shanghai profile counts community health centres only; the OSM extract maps none
    assert by_name["shanghai"] == 0.0
    # a shorter walk never covers more people
    by = ok.set_index("scenario")
    assert by.loc["10min", "coverage_all"] <= by.loc["15min", "coverage_all"]
    # the settlement hierarchy: Lujiazui is all central city, so the ordering is not testable
    assert (ok["tier_order_school"] == "not testable").all()
    assert (ok["empty_tiers"] == "suburban_core,remote").all()
    assert (ok["coverage_health_central"] - ok["coverage_health"]).abs().max() < 1e-6
    assert ok["coverage_health_remote"].isna().all()
    failed = s.loc[s["area"] == "nowhere"]
    assert failed["status"].tolist() == ["error"] * 3
    assert failed["error"].str.contains("no walkable street").all()
    for name in ("coverage.json", "gaps.json", "gaps_report.html", "job.json"):
        assert (out / "lujiazui" / "15min" / name).is_file()
    assert pd.read_parquet(out / "summary.parquet")["status"].tolist() == s["status"].tolist()
    assert (out / "summary.csv").is_file()

    stamp = (out / "lujiazui" / "10min" / "job.json").stat().st_mtime_ns
    again = run_batch(spec, out, scheduler=cluster)
    assert again.skipped == 3  # the ok jobs are unchanged
    assert again.ran == 3  # the failed ones are tried again
    assert (out / "lujiazui" / "10min" / "job.json").stat().st_mtime_ns == stamp
    assert again.summary["status"].tolist() == s["status"].tolist()

    # an interrupted batch loses nothing: a job without job.json is redone, the rest skipped
    (out / "lujiazui" / "shanghai" / "job.json").unlink()
    third = run_batch(spec, out, scheduler=cluster)
    assert (third.ran, third.skipped) == (4, 2)  # the interrupted job and the 3 failed ones
    assert third.summary["status"].tolist() == s["status"].tolist()


def test_killed_worker_does_not_lose_the_batch(tmp_path: Path, cluster: str) -> None:
    from distributed import Client

    scenarios = "\n".join(f'[[scenarios]]\nname = "m{m}"\nminutes = {m}\n' for m in (8, 10, 12, 15))
    spec = tmp_path / "batch.toml"
    spec.write_text('[[areas]]\nname = "lujiazui"\ndistrict = "pudong"\n\n' + scenarios)
    out = tmp_path / "out"
    with Client(cluster) as client:
        holder: dict[str, object] = {}
        thread = threading.Thread(
            target=lambda: holder.update(result=run_batch(spec, out, scheduler=cluster))
        )
        thread.start()
        deadline = time.time() + 120
        while not list(out.glob("*/*/job.json")) and time.time() < deadline:
            time.sleep(0.1)
        done_at_kill = len(list(out.glob("*/*/job.json")))
        pids = client.run(os.getpid)
        os.kill(next(iter(pids.values())), signal.SIGKILL)
        thread.join(timeout=300)
    result = holder["result"]
    assert 1 <= done_at_kill < 4  # the kill came in the middle of the batch
    assert result.summary["status"].tolist() == ["ok"] * 4  # type: ignore[attr-defined]
    assert json.loads((out / "lujiazui" / "m15" / "job.json").read_text())["status"] == "ok"


def test_batch_cli(runner: CliRunner, tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("[[areas]\n")
    result = runner.invoke(main, ["batch", str(bad), "--out", str(tmp_path / "o")])
    assert result.exit_code == 1
    assert "cannot parse batch spec" in result.output


def test_example_spec_runs_from_the_cli(runner: CliRunner, tmp_path: Path, cluster: str) -> None:
    spec = Path(__file__).resolve().parents[1] / "examples" / "batch_pudong.toml"
    out = tmp_path / "out"
    result = runner.invoke(main, ["batch", str(spec), "--out", str(out), "--scheduler", cluster])
    assert result.exit_code == 0, result.output
    assert "4 jobs: 4 run, 0 skipped (unchanged), 0 failed" in result.output
    summary = pd.read_csv(out / "summary.csv")
    assert summary["scenario"].tolist() == [
        "15min-default",
        "10min",
        "shanghai-tiers",
        "slow-walkers",
    ]
    assert (summary["status"] == "ok").all()


def test_yaml_spec_and_facility_changes(tmp_path: Path) -> None:
    import geopandas as gpd
    import shapely

    from lifecircle.facilities import change_facilities
    from lifecircle.io import read_spec

    (tmp_path / "care.geojson").write_text('{"type": "FeatureCollection", "features": []}')
    (tmp_path / "drop.csv").write_text("source_id\nway/2\n")
    (tmp_path / "spec.yaml").write_text(
        "areas:\n  - district: pudong\nscenarios:\n  - name: more-care\n"
        "    add_facilities: care.geojson\n    remove_facilities: drop.csv\n"
    )
    areas, scenarios = parse_spec(read_spec(tmp_path / "spec.yaml"), base=tmp_path)
    assert areas[0].name == "pudong"
    assert scenarios[0].add_facilities == tmp_path / "care.geojson"
    current = gpd.GeoDataFrame(
        {
            "category": ["school", "health"],
            "subtype": ["primary", "clinic"],
            "name": ["a", "b"],
            "source": "osm",
            "source_id": ["way/1", "way/2"],
        },
        geometry=[shapely.Point(0, 0), shapely.Point(10, 0)],
        crs="EPSG:32651",
    )
    add = gpd.GeoDataFrame(
        {"category": ["elderly_care"], "name": ["新养老院"]},
        geometry=[shapely.Point(121.5, 31.2)],
        crs=4326,
    )
    out = change_facilities(current, add=add, remove=pd.DataFrame({"source_id": ["way/2"]}))
    assert out["category"].tolist() == ["school", "elderly_care"]
    assert out.crs == current.crs
    assert out["source"].tolist() == ["osm", "scenario"]
    assert len(current) == 2  # the input is not changed
    with pytest.raises(InputError, match="unknown category 'shops'"):
        change_facilities(current, add=add.assign(category="shops"))


def test_scenario_with_added_facilities_runs_in_a_batch(tmp_path: Path) -> None:
    """Also the default path: a LocalCluster of its own (dashboard on a free port)."""
    import geopandas as gpd
    import shapely

    # an elderly-care centre in the middle of the uncovered Lujiazui housing (gap cluster 1)
    gpd.GeoDataFrame(
        {"category": ["elderly_care"], "subtype": ["day_care"], "name": ["new"]},
        geometry=[shapely.Point(121.5075, 31.2305)],
        crs=4326,
    ).to_file(tmp_path / "care.geojson", driver="GeoJSON")
    spec = tmp_path / "spec.toml"
    spec.write_text(
        '[[areas]]\nname = "lujiazui"\ndistrict = "pudong"\n\n'
        '[[scenarios]]\nname = "now"\ncategories = ["elderly_care"]\n\n'
        '[[scenarios]]\nname = "plus-one"\ncategories = ["elderly_care"]\n'
        'add_facilities = "care.geojson"\n'
    )
    s = run_batch(spec, tmp_path / "out", workers=1).summary.set_index("scenario")
    assert s.loc["plus-one", "coverage_elderly_care"] > s.loc["now", "coverage_elderly_care"]


def _key_of(spec: dict, base: Path) -> str:  # type: ignore[type-arg]
    from lifecircle.batch import job_key

    areas, scenarios = parse_spec(spec, base=base)
    return job_key(areas[0], scenarios[0])


def test_job_key_covers_every_input_of_a_result(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Packaged tables, profile files and the district's data-folder files are hashed."""
    import shutil

    from lifecircle import io
    from tests.conftest import DATA_DIR

    data = tmp_path / "data"
    shutil.copytree(DATA_DIR / "pudong" / "boundaries", data / "pudong" / "boundaries")
    shutil.copytree(DATA_DIR / "pudong" / "admin", data / "pudong" / "admin")
    (data / "pudong" / "osm").mkdir()
    (data / "pudong" / "osm" / "lujiazui.osm").symlink_to(LUJIAZUI)
    monkeypatch.setenv("LIFECIRCLE_DATA_DIR", str(data))
    profile = tmp_path / "profile.csv"
    profile.write_text("category,tier,subtypes,minutes,required,source\nschool,any,*,15,yes,x\n")
    spec = {
        "areas": [{"district": "pudong"}],
        "scenarios": [{"name": "a", "profile": str(profile)}],
    }
    keys = [_key_of(spec, tmp_path)]
    assert _key_of(spec, tmp_path) == keys[0]  # stable

    # a user profile's contents
    profile.write_text("category,tier,subtypes,minutes,required,source\nschool,any,*,10,yes,x\n")
    keys.append(_key_of(spec, tmp_path))
    assert keys[-1] not in keys[:-1]
    with (data / "pudong" / "admin" / "pudong_streets_2023.csv").open("a") as fh:
        fh.write("310115999,新街道\n")  # the district's unit list in the data folder
    keys.append(_key_of(spec, tmp_path))
    assert keys[-1] not in keys[:-1]
    zones = data / "pudong" / "boundaries" / "pudong_36_streets_towns_osm_wgs84.geojson"
    zones.write_bytes(zones.read_bytes() + b"\n")  # its zone file
    keys.append(_key_of(spec, tmp_path))
    assert keys[-1] not in keys[:-1]
    boundary = data / "pudong" / "boundaries" / "pudong_310115_datav_gcj02.json"
    boundary.write_bytes(boundary.read_bytes() + b"\n")  # its boundary file
    keys.append(_key_of(spec, tmp_path))
    assert keys[-1] not in keys[:-1]

    real = io.read_package_file

    def edited(relative: str) -> bytes:
        data = real(relative)
        return data + b"# edited\n" if relative == "data/facility_tags.csv" else data

    monkeypatch.setattr(io, "read_package_file", edited)  # the packaged tag table
    keys.append(_key_of(spec, tmp_path))
    assert keys[-1] not in keys[:-1]

    def edited_mapping(relative: str) -> bytes:
        data = real(relative)
        return data + b"# edited\n" if relative == "data/poi_mappings/amap.csv" else data

    monkeypatch.setattr(io, "read_package_file", edited_mapping)  # the packaged POI mapping
    keys.append(_key_of(spec, tmp_path))
    assert keys[-1] not in keys[:-1]
    assert len(set(keys)) == len(keys)


def test_areas_naming_one_district_with_different_pois_do_not_share_a_cache(
    tmp_path: Path, private_cache: Path
) -> None:
    from lifecircle.batch import prepare_task
    from tests.conftest import POIS

    spec = {
        "areas": [
            {"name": "osm-only", "district": "pudong"},
            {"name": "schools", "district": "pudong", "pois": [str(POIS / "shanghai_school.csv")]},
            {"name": "osm-again", "district": "pudong"},
        ],
        "scenarios": [{"name": "a"}],
    }
    areas, _ = parse_spec(spec, base=tmp_path)
    run_settings = settings.Settings.from_environment()
    plain, schools, again = (prepare_task(a, run_settings) for a in areas)
    from lifecircle.batch import Failure

    assert not isinstance(plain, Failure)
    assert not isinstance(schools, Failure)
    assert not isinstance(again, Failure)
    assert plain.folder != schools.folder
    assert again.folder == plain.folder
    assert (schools.facilities["source"] != "osm").sum() > 100
    assert (again.facilities["source"] == "osm").all()
    assert len(again.facilities) == len(plain.facilities)
    # the second plain area reused the first one's cache: the POI build did not replace it
    assert again.manifest["created"] == plain.manifest["created"]
    assert (plain.folder / "manifest.json").stat().st_mtime_ns == (
        again.folder / "manifest.json"
    ).stat().st_mtime_ns


def _fake_pipeline(
    monkeypatch: pytest.MonkeyPatch, seen: dict[str, object], *, meet: int = 1
) -> None:
    """Replace the pipeline steps a batch task calls by fast fakes that record their settings.

    `run_fetch` fails with a pandas-style ValueError for a bbox area, waits
    until `meet` tasks are inside it (so they hold their settings at the same
    time) and records the data folder it sees; `run_coverage` raises a
    KeyError for a 11-minute scenario.
    """
    from types import SimpleNamespace

    from lifecircle import batch

    barrier = threading.Barrier(meet, timeout=30)

    def run_fetch(req: object) -> object:
        if getattr(req, "bbox", None):
            raise ValueError("cannot reindex on an axis with duplicate labels")
        barrier.wait()
        seen[str(settings.cache_dir())] = settings.data_dir()
        return SimpleNamespace(data_dir=settings.data_dir())

    def run_coverage(req: object, options: object, **kw: object) -> object:
        if getattr(options, "minutes", None) == 11:
            raise KeyError("population")
        summary = {"categories": {"health": {"coverage": 0.5, "meets_target": False}}}
        return SimpleNamespace(summary=summary, residents=None)

    monkeypatch.setattr(batch, "run_fetch", run_fetch)
    monkeypatch.setattr(batch, "run_coverage", run_coverage)
    monkeypatch.setattr(batch, "run_gaps", lambda *a, **kw: SimpleNamespace(summary={}))


def test_any_job_error_is_recorded_and_the_batch_completes(
    tmp_path: Path, threaded: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A non-lifecircle exception in a job or in its area's preparation fails only that row."""
    _fake_pipeline(monkeypatch, {})
    spec = tmp_path / "spec.toml"
    spec.write_text(
        '[[areas]]\nname = "good"\ndistrict = "pudong"\n\n'
        '[[areas]]\nname = "bad"\nbbox = [121.49, 31.22, 121.52, 31.245]\n'
        f'osm_file = "{LUJIAZUI}"\n\n'
        '[[scenarios]]\nname = "fine"\n\n[[scenarios]]\nname = "broken"\nminutes = 11\n'
    )
    out = tmp_path / "out"
    s = run_batch(spec, out, scheduler=threaded).summary.set_index(["area", "scenario"])
    assert s["status"].to_dict() == {
        ("good", "fine"): "ok",
        ("good", "broken"): "error",
        ("bad", "fine"): "error",
        ("bad", "broken"): "error",
    }
    assert s.loc[("good", "fine"), "coverage_health"] == 0.5
    assert s.loc[("good", "broken"), "error"] == (
        "unexpected KeyError: 'population' (traceback in job.json)"
    )
    # a failing area fails each of its scenarios with the area's error
    for scenario in ("fine", "broken"):
        assert s.loc[("bad", scenario), "error"] == (
            "preparing the area: unexpected ValueError: cannot reindex on an axis with "
            "duplicate labels (traceback in job.json)"
        )
    assert pd.read_csv(out / "summary.csv")["status"].tolist() == ["ok", "error", "error", "error"]
    record = json.loads((out / "good" / "broken" / "job.json").read_text())
    assert record["status"] == "error"
    assert "KeyError: 'population'" in record["traceback"]
    assert "in run_coverage" in record["traceback"]


def test_concurrent_tasks_each_see_their_own_settings(
    tmp_path: Path, threaded: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two batches with different data folders on one threaded worker at the same time.

    Their prepare tasks run in two threads of one process and are both
    inside their task when they read the settings (a barrier holds them);
    the process environment says a third folder.
    """
    seen: dict[str, object] = {}
    _fake_pipeline(monkeypatch, seen, meet=2)
    monkeypatch.setenv("LIFECIRCLE_DATA_DIR", str(tmp_path / "environment"))
    spec = tmp_path / "spec.toml"
    spec.write_text('[[areas]]\nname = "a"\ndistrict = "pudong"\n\n[[scenarios]]\nname = "s"\n')
    results: dict[str, object] = {}

    def batch_in(name: str) -> None:
        mine = settings.Settings(data_dir=tmp_path / f"data-{name}", cache_dir=tmp_path / name)
        with settings.using(mine):
            results[name] = run_batch(spec, tmp_path / f"out-{name}", scheduler=threaded)

    # daemon threads: a batch that never returns fails this test instead of hanging pytest's exit
    threads = [threading.Thread(target=batch_in, args=(n,), daemon=True) for n in ("one", "two")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert [t.is_alive() for t in threads] == [False, False], (results, seen)
    assert seen == {
        str(tmp_path / "one"): tmp_path / "data-one",
        str(tmp_path / "two"): tmp_path / "data-two",
    }
    for name in ("one", "two"):  # same spec, same job hash: still two tasks, two outputs
        assert results[name].summary["status"].tolist() == ["ok"]  # type: ignore[attr-defined]
        assert (tmp_path / f"out-{name}" / "a" / "s" / "job.json").is_file()
    assert settings.data_dir() == tmp_path / "environment"  # the environment is untouched


def test_settings_are_local_to_a_thread_and_restored(tmp_path: Path) -> None:
    barrier = threading.Barrier(2, timeout=10)
    seen: dict[str, object] = {}

    def task(name: str) -> None:
        with settings.using(settings.Settings(data_dir=tmp_path / name)):
            barrier.wait()
            seen[name] = settings.data_dir()

    threads = [threading.Thread(target=task, args=(n,)) for n in ("a", "b")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert seen == {"a": tmp_path / "a", "b": tmp_path / "b"}

    def failing() -> None:
        with settings.using(settings.Settings(data_dir=tmp_path / "c")):
            assert settings.data_dir() == tmp_path / "c"
            raise RuntimeError

    with pytest.raises(RuntimeError):
        failing()
    assert settings.data_dir() == Path(os.environ["LIFECIRCLE_DATA_DIR"])  # restored


def test_batch_exits_non_zero_when_a_job_failed(tmp_path: Path) -> None:
    """Review of issue 9: `batch` exited 0 with failed jobs; the summary is still written."""
    from click.testing import CliRunner

    from lifecircle.cli import main
    from tests.conftest import LUJIAZUI

    spec = tmp_path / "spec.toml"
    spec.write_text(
        f'[[areas]]\nname = "nowhere"\nbbox = [121.40, 31.10, 121.42, 31.12]\n'
        f'osm_file = "{LUJIAZUI}"\n\n[[scenarios]]\nname = "a"\n'
    )
    out = tmp_path / "out"
    result = CliRunner().invoke(main, ["batch", str(spec), "--out", str(out), "--workers", "1"])
    assert result.exit_code == 1
    assert "1 of 1 jobs failed" in result.output
    assert "Traceback" not in result.output
    assert (out / "summary.csv").is_file()
