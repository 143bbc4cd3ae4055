from __future__ import annotations

import json
import os
import signal
import threading
import time
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

from lifecircle.batch import parse_spec, run_batch
from lifecircle.cli import main
from lifecircle.errors import InputError
from tests.conftest import LUJIAZUI

SPEC = f"""
[[areas]]
name = "lujiazui"
district = "pudong"

[[areas]]
name = "nowhere"                  # no street inside: every job of this area fails
bbox = "0.0,0.0,0.01,0.01"
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
    with pytest.raises(InputError, match="unknown scenario key 'minuts'"):
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
    areas, _ = parse_spec(
        {
            "areas": [{"name": "x", "bbox": "1,2,3,4", "osm_file": "a.osm"}],
            "scenarios": [{"name": "a"}],
        },
        base=tmp_path,
    )
    assert areas[0].request.osm_file == tmp_path / "a.osm"


def test_batch_runs_skips_and_records_failures(tmp_path: Path) -> None:
    spec = tmp_path / "batch.toml"
    spec.write_text(SPEC)
    out = tmp_path / "out"
    seen: list[str] = []
    result = run_batch(spec, out, workers=2, progress=lambda row: seen.append(row["scenario"]))
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
    failed = s.loc[s["area"] == "nowhere"]
    assert failed["status"].tolist() == ["error"] * 3
    assert failed["error"].str.contains("no walkable street").all()
    for name in ("coverage.json", "gaps.json", "gaps_report.html", "job.json"):
        assert (out / "lujiazui" / "15min" / name).is_file()
    assert pd.read_parquet(out / "summary.parquet")["status"].tolist() == s["status"].tolist()
    assert (out / "summary.csv").is_file()

    stamp = (out / "lujiazui" / "10min" / "job.json").stat().st_mtime_ns
    again = run_batch(spec, out, workers=1)
    assert again.skipped == 3  # the ok jobs are unchanged
    assert again.ran == 3  # the failed ones are tried again
    assert (out / "lujiazui" / "10min" / "job.json").stat().st_mtime_ns == stamp
    assert again.summary["status"].tolist() == s["status"].tolist()

    # an interrupted batch loses nothing: a job without job.json is redone, the rest skipped
    (out / "lujiazui" / "shanghai" / "job.json").unlink()
    third = run_batch(spec, out, workers=1)
    assert (third.ran, third.skipped) == (4, 2)  # the interrupted job and the 3 failed ones
    assert third.summary["status"].tolist() == s["status"].tolist()


def test_killed_worker_does_not_lose_the_batch(tmp_path: Path) -> None:
    from distributed import Client, LocalCluster

    scenarios = "\n".join(
        f'[[scenarios]]\nname = "m{m}"\nminutes = {m}\nisochrones = true\n'
        for m in (8, 10, 12, 15, 18, 20)
    )
    spec = tmp_path / "batch.toml"
    spec.write_text('[[areas]]\nname = "lujiazui"\ndistrict = "pudong"\n\n' + scenarios)
    out = tmp_path / "out"
    with (
        LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0"
        ) as cluster,
        Client(cluster) as client,
    ):
        holder: dict[str, object] = {}
        thread = threading.Thread(
            target=lambda: holder.update(
                result=run_batch(spec, out, scheduler=cluster.scheduler_address)
            )
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
    assert 1 <= done_at_kill < 6  # the kill came in the middle of the batch
    assert result.summary["status"].tolist() == ["ok"] * 6  # type: ignore[attr-defined]
    assert json.loads((out / "lujiazui" / "m20" / "job.json").read_text())["status"] == "ok"


def test_batch_cli(runner: CliRunner, tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("[[areas]\n")
    result = runner.invoke(main, ["batch", str(bad), "--out", str(tmp_path / "o")])
    assert result.exit_code == 1
    assert "cannot parse batch spec" in result.output


def test_example_spec_runs_from_the_cli(runner: CliRunner, tmp_path: Path) -> None:
    spec = Path(__file__).resolve().parents[1] / "examples" / "batch_pudong.toml"
    out = tmp_path / "out"
    result = runner.invoke(main, ["batch", str(spec), "--out", str(out), "--workers", "2"])
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
    profile.write_text("category,subtype,minutes\nschool,*,15\n")
    spec = {
        "areas": [{"district": "pudong"}],
        "scenarios": [{"name": "a", "profile": str(profile)}],
    }
    keys = [_key_of(spec, tmp_path)]
    assert _key_of(spec, tmp_path) == keys[0]  # stable

    profile.write_text("category,subtype,minutes\nschool,*,10\n")  # a user profile's contents
    keys.append(_key_of(spec, tmp_path))
    assert keys[-1] not in keys[:-1]
    with (data / "pudong" / "admin" / "pudong_streets_2023.csv").open("a") as fh:
        fh.write("310115999,新街道\n")  # the district's unit list in the data folder
    keys.append(_key_of(spec, tmp_path))
    assert keys[-1] not in keys[:-1]
    zones = data / "pudong" / "boundaries" / "pudong_4_towns_osm_wgs84.geojson"
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
    env = {"LIFECIRCLE_CACHE_DIR": str(private_cache)}
    plain, schools, again = (prepare_task(a, env) for a in areas)
    assert not isinstance(plain, str)
    assert not isinstance(schools, str)
    assert not isinstance(again, str)
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
