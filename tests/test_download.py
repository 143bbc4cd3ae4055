"""Online downloads against a local replay server: pieces, incomplete answers, resume, limits.

The real download code runs against ``tests.conftest.ReplayServer``; only the
server's answers are made up (from the recorded Lujiazui extract).
"""

from __future__ import annotations

import itertools
import json
import math
import re
from collections.abc import Callable
from pathlib import Path
from urllib.parse import parse_qs

import geopandas as gpd
import pytest
import shapely

from lifecircle import io
from lifecircle.errors import DataError, InputError, LifecircleError
from lifecircle.prepare import AreaRequest, prepare_area
from tests.conftest import LUJIAZUI, STATUS, ReplayServer

BBOX = "121.495,31.228,121.512,31.243"
REMARK = 'runtime error: Query timed out in "query" at line 1 after 181 seconds.'


def _query(body: bytes) -> str:
    return parse_qs(body.decode())["data"][0]


def _piece_km2(body: bytes) -> float:
    """Area of the query's polygon, by the shoelace formula on a local equirectangular plane."""
    coords = [float(v) for v in re.search(r'poly:"([^"]+)"', _query(body)).group(1).split()]  # type: ignore[union-attr]
    lat, lon = coords[0::2], coords[1::2]
    k = math.cos(math.radians(sum(lat) / len(lat)))
    x = [v * 111.32 * k for v in lon]
    y = [v * 110.57 for v in lat]
    return abs(sum(x[i] * y[i + 1] - x[i + 1] * y[i] for i in range(len(x) - 1))) / 2


def _partial(recording: dict) -> bytes:  # type: ignore[type-arg]
    """What Overpass sends when a query times out: HTTP 200, a remark, half of the ways."""
    ways = [e for e in recording["elements"] if e["type"] == "way"]
    dropped = {e["id"] for e in ways[: len(ways) // 2]}
    elements = [e for e in recording["elements"] if e.get("id") not in dropped]
    return json.dumps({**recording, "elements": elements, "remark": REMARK}).encode()


class Overpass:
    """A replayed Overpass: complete answers for pieces up to `max_km2`, timeouts above."""

    def __init__(self, recording: bytes, *, max_km2: float = math.inf) -> None:
        self.full = recording
        self.partial = _partial(json.loads(recording))
        self.max_km2 = max_km2
        self.fail_after: int | None = None  # answer HTTP 400 after this many POSTs
        self.busy: int = 0  # answer 429 to this many POSTs first
        self.posts: list[float] = []
        self.queries: list[str] = []

    def __call__(self, body: bytes) -> tuple[int, bytes]:
        km2 = _piece_km2(body)
        self.posts.append(km2)
        self.queries.append(_query(body))
        if self.busy > 0:
            self.busy -= 1
            return 429, b"Too Many Requests"
        if self.fail_after is not None and len(self.posts) > self.fail_after:
            return 400, b"<html>Error: line 1: parse error</html>"
        return 200, self.partial if km2 > self.max_km2 else self.full


def _online(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, handler: Callable[[bytes], tuple[int, bytes]]
) -> ReplayServer:
    server = ReplayServer({"/api/status": STATUS, "/api/interpreter": handler})
    server.__enter__()
    monkeypatch.setenv("LIFECIRCLE_OVERPASS_URL", server.url + "/api")
    monkeypatch.setenv("LIFECIRCLE_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("LIFECIRCLE_DATA_DIR", str(tmp_path / "nodata"))
    return server


def _raw(tmp_path: Path, name: str) -> Path:
    return tmp_path / "cache" / "raw" / name / "overpass.osm.pbf"


def test_timed_out_piece_is_split_and_fetched_whole(
    overpass_recording: bytes, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """HTTP 200 with a remark and half the ways is a failed piece: split it, never keep it."""
    local = prepare_area(AreaRequest(bbox=BBOX, osm_file=LUJIAZUI, name="local"))
    overpass = Overpass(overpass_recording, max_km2=10.0)  # the 3 pieces of ~20 km² time out
    server = _online(monkeypatch, tmp_path, overpass)
    try:
        online = prepare_area(AreaRequest(bbox=BBOX, name="online"))
    finally:
        server.__exit__()
    # the same network and facilities as the local file the answers were recorded from
    assert online.network.n_nodes == local.network.n_nodes
    assert online.network.n_edges == local.network.n_edges
    assert online.manifest["facilities"] == local.manifest["facilities"]
    # every piece above 10 km² was refused, then asked for again in parts below 10 km²
    # that together cover the downloaded area (the box with its 3 km margin)
    big = [a for a in overpass.posts if a > 10.0]
    small = [a for a in overpass.posts if a <= 10.0]
    assert len(big) >= 1
    area = gpd.GeoSeries([shapely.box(121.495, 31.228, 121.512, 31.243)], crs=4326)
    area_km2 = float(area.to_crs(32651).buffer(3000).area.iloc[0]) / 1e6
    assert sum(small) == pytest.approx(area_km2, rel=0.02)
    assert len(small) >= 4 * len(big)


def test_piece_that_cannot_be_had_fails_in_one_line(
    overpass_recording: bytes, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    overpass = Overpass(overpass_recording, max_km2=0.0)  # every answer times out
    server = _online(monkeypatch, tmp_path, overpass)
    try:
        with pytest.raises(DataError) as info:
            prepare_area(AreaRequest(bbox=BBOX, name="online"))
    finally:
        server.__exit__()
    msg = str(info.value)
    assert "\n" not in msg
    assert "Query timed out" in msg
    assert "--osm-file" in msg
    assert not _raw(tmp_path, "online").exists()
    # split in four while a quarter is >= the minimum piece (1 km²), then stop: ~13 -> ~3 km²
    posts = overpass.posts
    assert 2 <= len(posts) <= 4
    assert all(b < a / 3 for a, b in itertools.pairwise(posts))
    assert posts[-1] / 4 < 1.0 <= posts[-2] / 4


def test_interrupted_download_resumes_without_refetching(
    overpass_recording: bytes, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    overpass = Overpass(overpass_recording)
    overpass.fail_after = 2  # the server breaks down after two pieces
    server = _online(monkeypatch, tmp_path, overpass)
    try:
        with pytest.raises(DataError) as info:
            prepare_area(AreaRequest(bbox=BBOX, name="online"))
        assert "\n" not in str(info.value)
        assert "HTTP" in str(info.value) or "400" in str(info.value)
        assert not _raw(tmp_path, "online").exists()
        first = list(overpass.queries)
        assert len(first) == 3  # two pieces fetched, the third refused
        overpass.fail_after = None
        prepared = prepare_area(AreaRequest(bbox=BBOX, name="online"))
    finally:
        server.__exit__()
    # the second run asks only for the pieces that were missing: the refused one first
    again = overpass.queries[3:]
    assert again[0] == first[2]
    assert not set(again) & set(first[:2])
    assert len(again) == len(set(overpass.queries)) - 2
    assert len(again) >= 1
    assert prepared.network.n_edges > 3000


def test_busy_server_is_retried(
    overpass_recording: bytes, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    overpass = Overpass(overpass_recording)
    overpass.busy = 2
    server = _online(monkeypatch, tmp_path, overpass)
    out = tmp_path / "x.osm.pbf"
    try:
        io.download_osm(
            shapely.box(121.495, 31.228, 121.512, 31.243),
            out,
            cache_folder=tmp_path / "http",
            retry_pause_s=0.0,
        )
    finally:
        server.__exit__()
    assert len(overpass.posts) == 3  # one piece, two 429 answers, then the data
    assert len(io.read_osm(out).ways) == len(io.read_osm(LUJIAZUI).ways)
    status = [p for m, p, _ in server.requests if m == "GET"]
    assert len(status) == 3  # a slot asked for before every POST


def test_continent_sized_area_is_refused_before_any_request(
    overpass_recording: bytes, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    overpass = Overpass(overpass_recording)
    server = _online(monkeypatch, tmp_path, overpass)
    try:
        with pytest.raises(InputError, match="20,000 km² of one city"):  # a continent: any run
            prepare_area(AreaRequest(bbox="70,15,135,55", name="asia"))
        with pytest.raises(InputError) as info:  # 8,400 km²: fine from a file, too big to download
            prepare_area(AreaRequest(bbox="121,31,122,31.8", name="big"))
        msg = str(info.value)
        assert "\n" not in msg
        assert re.search(r"\d{1,3}(,\d{3})+ km²", msg)  # the size, in km²
        assert "--osm-file" in msg
        assert "5,000 km²" in msg
        # the limit is a setting: lowered, a district-sized box is refused too
        monkeypatch.setenv("LIFECIRCLE_OVERPASS_MAX_KM2", "10")
        with pytest.raises(InputError, match="more than the 10 km²"):
            prepare_area(AreaRequest(bbox=BBOX, name="online"))
        monkeypatch.setenv("LIFECIRCLE_OVERPASS_MAX_KM2", "ten")
        with pytest.raises(InputError, match="LIFECIRCLE_OVERPASS_MAX_KM2"):
            prepare_area(AreaRequest(bbox=BBOX, name="online"))
    finally:
        server.__exit__()
    assert overpass.posts == []
    assert server.requests == []


def test_programming_errors_are_not_reported_as_network_failures(tmp_path: Path) -> None:
    """A wrong argument raises its own error, not "Overpass download failed, check the network"."""
    with pytest.raises(Exception) as info:  # noqa: PT011
        io.download_osm(None, tmp_path / "x.osm.pbf", cache_folder=tmp_path)  # type: ignore[arg-type]
    assert not isinstance(info.value, LifecircleError)
    assert "Overpass download failed" not in str(info.value)


def test_unreachable_server_fails_in_one_line(tmp_path: Path) -> None:
    # the autouse fixture points Overpass at port 9 (nothing listens there)
    with pytest.raises(DataError) as info:
        io.download_osm(
            shapely.box(121.495, 31.228, 121.512, 31.243),
            tmp_path / "x.osm.pbf",
            cache_folder=tmp_path,
        )
    msg = str(info.value)
    assert "\n" not in msg
    assert msg.startswith("Overpass download failed (ConnectionError")
    assert "--osm-file" in msg


# --------------------------------------------------------------------------- the query


def _filters(query: str) -> list[list[tuple[str, str | None]]]:
    """The tag filters of each ``nwr``/``node`` statement: ``[(key, regex or None), ...]``."""
    out = []
    for statement in re.findall(r"(?:nwr|node|way|relation)((?:\[[^\]]*\])+)\(poly:", query):
        clauses = []
        for key, op, value in re.findall(r'\["?([^"\]~=!]+)"?(?:(!~|~|=)"([^"]*)")?\]', statement):
            if op == "!~":
                clauses.append(("!" + key, value))
            else:
                clauses.append((key, f"^{re.escape(value)}$" if op == "=" else value or None))
        out.append(clauses)
    return out


def _selected(tags: dict[str, str], query: str) -> bool:
    """Whether a feature with `tags` is selected by one of the query's tag-only statements."""
    for clauses in _filters(query):
        if any("!" in k for k, _ in clauses):
            continue
        if all(k in tags and (rx is None or re.search(rx, tags[k])) for k, rx in clauses):
            return True
    return False


def test_query_fetches_every_facility_a_local_extract_yields(lujiazui_osm) -> None:  # type: ignore[no-untyped-def]
    """Online data must hold what local files hold: every feature the tag table classifies."""
    from lifecircle.facilities import facilities_from_osm

    query = io.build_overpass_query("31.2 121.5 31.3 121.5 31.3 121.6", "[out:json]")
    assert 'node["entrance"](poly:' in query
    feats = lujiazui_osm.features
    found = facilities_from_osm(feats)
    keys = {
        f"{t}/{i}": tags
        for t, i, tags in zip(feats["osm_type"], feats["osm_id"], feats["tags"], strict=True)
    }
    assert len(found) >= 10
    missing = [sid for sid in found["source_id"] if not _selected(keys[sid], query)]
    assert missing == []
    # tag-table rows the Lujiazui extract happens not to hold (the query follows the table, so
    # whether e.g. tourism=attraction is fetched is the table's decision, not the query's)
    for tags in (
        {"tourism": "museum", "name": "上海科技馆"},
        {"leisure": "sports_centre", "name": "航头镇社区文化活动中心"},
        {"amenity": "school;kindergarten"},
        {"healthcare": "centre"},
        {"social_facility": "group_home", "social_facility:for": "senior"},
    ):
        assert _selected(tags, query), tags
    for tags in (
        {"shop": "supermarket"},
        {"amenity": "driving_school"},
        {"amenity": "bus_station"},
    ):
        assert not _selected(tags, query), tags


def test_no_private_osmnx_function_is_called() -> None:
    """osmnx's private modules are touched in one place only (io._network_errors: error types)."""
    import inspect

    import osmnx._errors

    from lifecircle import io as io_module

    source = Path(inspect.getsourcefile(io_module)).read_text("utf-8")  # type: ignore[arg-type]
    uses = re.findall(r"osmnx\._\w+|from osmnx import _\w+|\b_overpass\.\w+", source)
    assert uses == ["osmnx._errors"]
    # the wrapper fails loudly if osmnx renames its error types
    errors = io_module._network_errors()
    assert osmnx._errors.InsufficientResponseError in errors
    assert osmnx._errors.ResponseStatusCodeError in errors
    for path in Path(inspect.getsourcefile(io_module)).parent.glob("*.py"):  # type: ignore[arg-type]
        if path.name != "io.py":
            assert not re.search(r"osmnx\._|from osmnx import _", path.read_text("utf-8")), path


def test_geocoder_without_answer_fails_in_one_line(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    with ReplayServer({"/search": b"[]"}) as server:
        monkeypatch.setenv("LIFECIRCLE_NOMINATIM_URL", server.url + "/")
        with pytest.raises(DataError) as info:
            io.geocode_boundary("nowhere at all", cache_folder=tmp_path)
    msg = str(info.value)
    assert "\n" not in msg
    assert "nowhere at all" in msg
    assert "--boundary" in msg


def test_admin_units_answer_with_remark_is_not_kept(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, data_dir: Path
) -> None:
    """Admin units use the same pieces: a timed-out answer fails, never half the units."""
    from tests.conftest import overpass_json_from_boundaries

    towns = overpass_json_from_boundaries(
        data_dir / "pudong" / "boundaries" / "pudong_36_streets_towns_osm_wgs84.geojson",
        "official_control_name_2023",
    )
    towns["remark"] = REMARK
    answer = json.dumps(towns).encode()
    with ReplayServer({"/api/status": STATUS, "/api/interpreter": answer}) as server:
        monkeypatch.setenv("LIFECIRCLE_OVERPASS_URL", server.url + "/api")
        with pytest.raises(DataError, match="Query timed out"):
            io.download_admin_units(
                shapely.box(121.49, 31.22, 121.52, 31.25), cache_folder=tmp_path
            )
