from __future__ import annotations

import hashlib
import json
from importlib import resources
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely

from lifecircle.areas import boundary_to_wgs84
from lifecircle.errors import CRSError, OutputError
from lifecircle.io import read_raster_cells
from lifecircle.prepare import AreaRequest, PoiSource, prepare_area
from tests.conftest import LUJIAZUI

CRS = "EPSG:32651"

BBOX = "121.495,31.228,121.512,31.243"


def test_boundary_without_crs_is_refused() -> None:
    gdf = gpd.GeoDataFrame(geometry=[shapely.box(0, 0, 1, 1)])
    with pytest.raises(CRSError, match="no CRS"):
        boundary_to_wgs84(gdf)
    lines = gpd.GeoDataFrame(geometry=[shapely.LineString([(0, 0), (1, 1)])], crs=4326)
    with pytest.raises(ValueError, match="must be polygons"):
        boundary_to_wgs84(lines)


def test_cache_is_reused_then_rebuilt_when_an_input_changes(tmp_path: Path) -> None:
    req = AreaRequest(bbox=BBOX, osm_file=LUJIAZUI, name="cachetest")
    first = prepare_area(req)
    again = prepare_area(req)
    assert again.manifest["created"] == first.manifest["created"]
    tags = tmp_path / "tags.csv"
    tags.write_text("category,subtype,key,value,name_pattern\nschool,school,amenity,school,\n")
    changed = prepare_area(
        AreaRequest(bbox=BBOX, osm_file=LUJIAZUI, name="cachetest", tags_file=tags)
    )
    assert changed.manifest["cache_key"] != first.manifest["cache_key"]
    assert changed.manifest["facilities"]["health"]["total"] == 0


@pytest.mark.filterwarnings("ignore:Use `@` matmul:PendingDeprecationWarning")
def test_population_raster_spread_over_buildings(tmp_path: Path) -> None:
    import rasterio
    from rasterio.transform import from_origin

    path = tmp_path / "pop.tif"
    data = np.array([[1000.0, 0.0], [500.0, 250.0]], dtype="float32")
    with rasterio.open(
        path,
        "w",
        driver="GTiff",
        width=2,
        height=2,
        count=1,
        dtype="float32",
        crs="EPSG:4326",
        transform=from_origin(121.495, 31.243, 0.0085, 0.0075),
    ) as dst:
        dst.write(data, 1)
    cells = read_raster_cells(path)
    assert len(cells) == 3
    assert cells["population"].sum() == 1750.0
    prepared = prepare_area(
        AreaRequest(bbox=BBOX, osm_file=LUJIAZUI, name="poptest", population_file=path)
    )
    res = prepared.residents
    assert res["basis"].iloc[0] == "population+buildings"
    assert res["weight"].sum() == pytest.approx(1750.0, rel=1e-6)


def _build_stamp(prepared: object) -> tuple[int, int]:
    """Identify one build of a cache folder: its manifest's inode and modification time."""
    stat = (prepared.folder / "manifest.json").stat()  # type: ignore[attr-defined]
    return stat.st_ino, stat.st_mtime_ns


AMAP_LISTS = ("shanghai_school.csv", "shanghai_hospital.csv", "shanghai_Theatr_Cinema.csv")


def _fail_on(monkeypatch: pytest.MonkeyPatch, layer: str) -> None:
    """Make the cache writer die when it reaches `layer` (the layers before it are written)."""
    from lifecircle import io

    real, real_table = io.save_gdf, io.save_table

    def dying(gdf: gpd.GeoDataFrame, path: Path, **kw: object) -> Path:
        if Path(path).name == layer:
            raise KeyboardInterrupt  # the user pressed Ctrl-C, or the machine went down
        return real(gdf, path, **kw)  # type: ignore[arg-type]

    def dying_table(table: pd.DataFrame, path: Path) -> Path:
        if Path(path).name == layer:
            raise KeyboardInterrupt
        return real_table(table, path)

    monkeypatch.setattr(io, "save_gdf", dying)
    monkeypatch.setattr(io, "save_table", dying_table)


def test_interrupted_rebuild_with_pois_is_never_reused(
    private_cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 8.4: build without POIs, interrupt a build with the Amap lists, build without again."""
    from lifecircle.prepare import PoiSource
    from tests.conftest import POIS

    plain = AreaRequest(district="pudong", offline=True)
    with_pois = AreaRequest(
        district="pudong", offline=True, pois=tuple(PoiSource(POIS / n) for n in AMAP_LISTS)
    )
    first = prepare_area(plain)
    n_osm = len(first.facilities)
    # the OSM-only count, by hand: facilities whose source is OSM, none imported
    assert n_osm == int((first.facilities["source"] == "osm").sum())
    with pytest.MonkeyPatch.context() as mp:
        _fail_on(mp, "residents.parquet")  # facilities.gpkg with the 1,500+ POIs is already written
        with pytest.raises(KeyboardInterrupt):
            prepare_area(with_pois)
    stamp = _build_stamp(first)
    again = prepare_area(plain)
    assert len(again.facilities) == n_osm
    assert _build_stamp(again) == stamp  # reused, not rebuilt
    assert sorted(again.facilities["source"].unique()) == ["osm"]
    # the interrupted build left nothing half-made behind
    assert not [p for p in (private_cache / "processed").iterdir() if p.name.startswith(".")]
    # and the POI build, when it completes, has its own folder and many more facilities
    full = prepare_area(with_pois)
    assert full.folder != first.folder
    assert len(full.facilities) > 10 * n_osm
    assert len(prepare_area(plain).facilities) == n_osm


def test_interrupted_rebuild_in_the_same_folder_keeps_the_old_cache(
    private_cache: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An input edited in place rebuilds the same folder: a crash keeps the old complete cache."""
    from lifecircle.facilities import default_tag_rules

    tags = tmp_path / "tags.csv"
    school_only = "category,subtype,key,value,name_pattern\nschool,school,amenity,school,\n"
    tags.write_text(school_only)
    req = AreaRequest(bbox=BBOX, osm_file=LUJIAZUI, name="inplace", tags_file=tags)
    first = prepare_area(req)
    stamp = _build_stamp(first)
    assert first.manifest["facilities"]["health"]["total"] == 0
    assert len(first.facilities) == (first.facilities["category"] == "school").sum()
    # the full packaged table finds health facilities on Lujiazui
    full_table = resources.files("lifecircle").joinpath("data/facility_tags.csv").read_text("utf-8")
    assert any(r.category == "health" for r in default_tag_rules())
    tags.write_text(full_table)
    for layer in ("network_nodes.parquet", "residents.parquet", "extent.gpkg"):
        with pytest.MonkeyPatch.context() as mp:
            _fail_on(mp, layer)
            with pytest.raises(KeyboardInterrupt):
                prepare_area(req)
        tags.write_text(school_only)  # back to the inputs of the complete cache
        kept = prepare_area(req)
        assert _build_stamp(kept) == stamp
        assert (kept.facilities["category"] == "health").sum() == 0
        tags.write_text(full_table)
    rebuilt = prepare_area(req)
    assert rebuilt.folder == first.folder
    assert rebuilt.manifest["facilities"]["health"]["total"] > 0
    assert (rebuilt.facilities["category"] == "health").sum() > 0


def test_packaged_tag_table_contents_change_the_cache_key(
    private_cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Editing the packaged tag table (no --tags file) must not reuse a cache built before."""
    from lifecircle import facilities, io

    req = AreaRequest(bbox=BBOX, osm_file=LUJIAZUI, name="packaged")
    first = prepare_area(req)
    assert first.manifest["facilities"]["health"]["total"] > 0
    school_only = "category,subtype,key,value,name_pattern\nschool,school,amenity,school,\n"
    real_csv = facilities._read_package_csv
    real_file = getattr(io, "read_package_file", lambda name: b"")

    def edited_file(relative: str) -> bytes:
        if relative == "data/facility_tags.csv":
            return school_only.encode("utf-8")
        return real_file(relative)

    def edited_csv(name: str) -> str:
        return school_only if name == "facility_tags.csv" else real_csv(name)

    monkeypatch.setattr(io, "read_package_file", edited_file, raising=False)
    monkeypatch.setattr(facilities, "_read_package_csv", edited_csv)
    edited = prepare_area(req)
    assert edited.manifest["cache_key"] != first.manifest["cache_key"]
    assert edited.manifest["facilities"]["health"]["total"] == 0
    assert (edited.facilities["category"] == "school").all()
    package = edited.manifest["inputs"]["package"]
    assert (
        package["data"]["data/facility_tags.csv"]
        == hashlib.sha256(school_only.encode()).hexdigest()
    )
    monkeypatch.undo()
    assert prepare_area(req).manifest["cache_key"] == first.manifest["cache_key"]


def test_district_data_files_are_in_the_cache_key(
    private_cache: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The district's zone file (read from the data folder, not named by the user) is hashed."""
    import shutil

    from tests.conftest import DATA_DIR

    data = tmp_path / "data"
    shutil.copytree(DATA_DIR / "pudong" / "boundaries", data / "pudong" / "boundaries")
    shutil.copytree(DATA_DIR / "pudong" / "admin", data / "pudong" / "admin")
    (data / "pudong" / "osm").mkdir()
    (data / "pudong" / "osm" / "lujiazui.osm").symlink_to(LUJIAZUI)
    monkeypatch.setenv("LIFECIRCLE_DATA_DIR", str(data))
    req = AreaRequest(district="pudong", offline=True)
    first = prepare_area(req)
    zones = data / "pudong" / "boundaries" / "pudong_36_streets_towns_osm_wgs84.geojson"
    towns = gpd.read_file(zones)
    field = "official_control_name_2023"
    towns[field] = towns[field].astype(str) + "-renamed"
    zones.unlink()
    towns.to_file(zones, driver="GeoJSON")
    second = prepare_area(req)
    assert second.manifest["cache_key"] != first.manifest["cache_key"]
    assert second.zones is not None
    assert second.zones["zone"].str.endswith("-renamed").all()
    files = second.manifest["inputs"]["district_files"]
    assert "pudong/boundaries/pudong_36_streets_towns_osm_wgs84.geojson" in files
    assert "pudong/admin/pudong_streets_2023.csv" in files


def test_requests_that_differ_get_their_own_folders(private_cache: Path) -> None:
    from lifecircle.prepare import CACHE_FILES, PoiSource
    from tests.conftest import POIS

    plain = prepare_area(AreaRequest(district="pudong", offline=True))
    assert plain.folder == private_cache / "processed" / "pudong"
    # every file of a cache is a declared cache layer, so output sets never remove one
    assert {p.name for p in plain.folder.iterdir()} <= CACHE_FILES
    school = AreaRequest(
        district="pudong", offline=True, pois=(PoiSource(POIS / "shanghai_school.csv"),)
    )
    hospital = AreaRequest(
        district="pudong", offline=True, pois=(PoiSource(POIS / "shanghai_hospital.csv"),)
    )
    folders = {plain.folder, prepare_area(school).folder, prepare_area(hospital).folder}
    assert len(folders) == 3
    # each stays current: asking again reuses it, nothing was overwritten by the others
    stamps = {req: _build_stamp(prepare_area(req)) for req in (school, hospital)}
    assert _build_stamp(prepare_area(AreaRequest(district="pudong"))) == _build_stamp(plain)
    assert {req: _build_stamp(prepare_area(req)) for req in (school, hospital)} == stamps


def test_build_warnings_are_repeated_when_the_cache_is_reused(
    private_cache: Path, tmp_path: Path
) -> None:
    """Review of issue 9: a warning of the build (here: POI polygons counted at a point) was
    printed only by the run that built the cache; a rerun reusing it was silent."""
    polys = gpd.GeoDataFrame(
        {"name": ["某某小学"], "type": ["科教文化服务;学校;小学"]},
        geometry=[shapely.box(121.500, 31.234, 121.501, 31.235)],
        crs=4326,
    )
    path = tmp_path / "polys.gpkg"
    polys.to_file(path)
    req = AreaRequest(district="pudong", pois=(PoiSource(path),))
    with pytest.warns(RuntimeWarning) as first:
        built = prepare_area(req)
    with pytest.warns(RuntimeWarning) as second:
        again = prepare_area(req)
    assert again.manifest["created"] == built.manifest["created"]  # reused, not rebuilt
    said = {str(w.message) for w in first}
    assert said
    assert said <= {str(w.message) for w in second}
    assert set(built.manifest["warnings"]) == said


def test_network_and_index_built_in_the_background_equal_the_foreground_ones(  # type: ignore[no-untyped-def]
    lujiazui_osm,
) -> None:
    """The network and snap index built in a thread are those built in the foreground."""
    from lifecircle.network import build_walk_network
    from lifecircle.prepare import network_in_background, release_freed_memory
    from lifecircle.snapping import SnapIndex

    clip = shapely.box(121.49, 31.22, 121.52, 31.245)  # part of Lujiazui: some edges dropped
    pending_net, pending_index = network_in_background(lujiazui_osm.ways, crs=CRS, clip=clip)
    net = build_walk_network(lujiazui_osm.ways, crs=CRS, clip=clip)
    got_net = pending_net.result(timeout=120)
    assert got_net.n_edges == net.n_edges > 1000
    for name in ("node_osmid", "x", "y", "u", "v", "length_m", "way_id", "highway"):
        assert np.array_equal(getattr(got_net, name), getattr(net, name)), name
    assert got_net.crs == net.crs
    plain = SnapIndex(net)
    plain_r, plain_f = plain.indexes()
    got = pending_index.result(timeout=120)
    assert got.net is got_net
    got_r, got_f = got.indexes()
    assert np.array_equal(got.labels, plain.labels)
    assert np.array_equal(got.routable, plain.routable)
    assert 0 < int(got.routable.sum()) < net.n_edges  # fragments are left out
    for a, b in ((got_r, plain_r), (got_f, plain_f)):
        assert np.array_equal(a.positions, b.positions)
        assert shapely.to_wkb(a.lines).tolist() == shapely.to_wkb(b.lines).tolist()
    probes = shapely.points(net.x[::20] + 7.0, net.y[::20] - 3.0)
    for a, b in ((got_r, plain_r), (got_f, plain_f)):
        want = b.tree.query_nearest(probes, all_matches=False)
        assert np.array_equal(a.tree.query_nearest(probes, all_matches=False), want)
    release_freed_memory()  # glibc or not, it never raises


def test_a_failed_network_build_in_the_background_raises_in_the_caller() -> None:
    from lifecircle.prepare import network_in_background

    pending_net, pending_index = network_in_background(None, crs=CRS, clip=None)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        pending_net.result(timeout=60)
    with pytest.raises(TypeError):
        pending_index.result(timeout=60)


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # a small bbox lacks categories
def test_a_cache_written_while_coverage_routes_equals_one_written_first(
    private_cache: Path, tmp_path: Path
) -> None:
    """run_coverage writes a new cache on a thread while it routes: the same files, then reused."""
    from lifecircle.pipeline import CoverageOptions, run_coverage
    from lifecircle.prepare import CACHE_FILES

    req = AreaRequest(bbox=BBOX, osm_file=LUJIAZUI, name="background")
    opts = CoverageOptions(isochrones=False, make_map=False)
    result = run_coverage(req, opts, out_dir=tmp_path / "out")
    folder = result.prepared.folder
    assert result.prepared.cache_written is not None  # it was written on the thread
    assert result.prepared.cache_written.done()
    written = {p.name for p in folder.iterdir()}
    assert {n for n in CACHE_FILES if n != "zones.gpkg"} <= written
    again = prepare_area(req)
    assert again.manifest["created"] == result.prepared.manifest["created"]  # reused
    tables = sorted(p.name for p in folder.glob("*.parquet"))
    layers = sorted(p.name for p in folder.glob("*.gpkg"))
    copies = {n: pd.read_parquet(folder / n) for n in tables}
    copies |= {n: gpd.read_file(folder / n) for n in layers}
    manifest = json.loads((folder / "manifest.json").read_text())
    prepare_area(req, rebuild=True)  # written in the foreground
    for name in tables:
        pd.testing.assert_frame_equal(pd.read_parquet(folder / name), copies[name])
    for name in layers:
        pd.testing.assert_frame_equal(gpd.read_file(folder / name), copies[name])
    again_manifest = json.loads((folder / "manifest.json").read_text())
    assert {k: v for k, v in again_manifest.items() if k != "created"} == {
        k: v for k, v in manifest.items() if k != "created"
    }


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # a small bbox lacks categories
def test_a_failed_background_cache_write_fails_the_run_and_leaves_nothing(
    private_cache: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import errno

    from lifecircle import io
    from lifecircle.pipeline import CoverageOptions, run_coverage

    real = io.save_table

    def full_disk(table: pd.DataFrame, path: Path) -> Path:
        if path.name == "network_edges.parquet":
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(table, path)

    monkeypatch.setattr(io, "save_table", full_disk)
    req = AreaRequest(bbox=BBOX, osm_file=LUJIAZUI, name="diskfull")
    out = tmp_path / "out"
    with pytest.raises(OutputError, match="No space left on device; free disk space"):
        run_coverage(req, CoverageOptions(isochrones=False, make_map=False), out_dir=out)
    assert not (out / "coverage.json").exists()
    processed = private_cache / "processed"
    assert not [p for p in processed.iterdir() if p.name.startswith(("diskfull", "."))]
