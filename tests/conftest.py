from __future__ import annotations

import json
import os
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
import shapely
from click.testing import CliRunner

from lifecircle.network import WalkNetwork

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"
DATA_DIR = Path(os.environ.get("LIFECIRCLE_DATA_DIR", SHARED))
LUJIAZUI = DATA_DIR / "pudong" / "osm" / "lujiazui.osm"
POIS = DATA_DIR / "pudong" / "pois"


@pytest.fixture(scope="session")
def data_dir() -> Path:
    if not LUJIAZUI.is_file():
        pytest.fail(f"real data not found in {DATA_DIR}: set LIFECIRCLE_DATA_DIR to ../shared/data")
    return DATA_DIR


@pytest.fixture(autouse=True)
def _env(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every test gets the real data folder and the session's shared cache.

    Sharing is safe because a cache folder is keyed by everything that
    changes it and replaced whole (never half-written), so a test sees the
    same data whatever ran before it. A test that tampers with a cache
    (interrupts a build, edits an input in place) takes `private_cache`.
    """
    monkeypatch.setenv("LIFECIRCLE_DATA_DIR", str(DATA_DIR))
    monkeypatch.setenv("LIFECIRCLE_CACHE_DIR", str(_session_cache(tmp_path_factory)))
    monkeypatch.setenv("LIFECIRCLE_OVERPASS_URL", "http://127.0.0.1:9/api")
    monkeypatch.setenv("LIFECIRCLE_NOMINATIM_URL", "http://127.0.0.1:9/")


@pytest.fixture
def private_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A cache folder of this test alone (for tests that interrupt or tamper with builds)."""
    folder = tmp_path / "private-cache"
    monkeypatch.setenv("LIFECIRCLE_CACHE_DIR", str(folder))
    return folder


_CACHE: list[Path] = []


def _session_cache(factory: pytest.TempPathFactory) -> Path:
    if not _CACHE:
        _CACHE.append(factory.mktemp("cache"))
    return _CACHE[0]


@pytest.fixture(scope="session")
def lujiazui_osm(data_dir: Path):  # type: ignore[no-untyped-def]
    from lifecircle.io import read_osm

    return read_osm(LUJIAZUI)


@pytest.fixture(scope="session")
def lujiazui_net(lujiazui_osm):  # type: ignore[no-untyped-def]
    from lifecircle.network import build_walk_network

    return build_walk_network(lujiazui_osm.ways, crs="EPSG:32651")


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


def toy_network(
    nodes: list[tuple[float, float]],
    edges: list[tuple[int, int]],
    *,
    lengths: list[float] | None = None,
) -> WalkNetwork:
    """A hand-made network in a metric CRS; lengths default to straight-line distance."""
    xy = np.array(nodes, dtype=float)
    u = np.array([e[0] for e in edges], dtype=np.int64)
    v = np.array([e[1] for e in edges], dtype=np.int64)
    length = (
        np.hypot(xy[u, 0] - xy[v, 0], xy[u, 1] - xy[v, 1]) if lengths is None else np.array(lengths)
    )
    return WalkNetwork(
        node_osmid=np.arange(1, len(nodes) + 1, dtype=np.int64),
        x=xy[:, 0],
        y=xy[:, 1],
        u=u,
        v=v,
        length_m=length,
        way_id=np.arange(len(edges), dtype=np.int64),
        highway=np.array(["footway"] * len(edges), dtype=object),
        crs="EPSG:32651",
    )


def overpass_json_from_osm(path: Path) -> dict:  # type: ignore[type-arg]
    """Turn a recorded Overpass XML response into the JSON form osmnx asks Overpass for."""
    import osmium

    elements: list[dict] = []  # type: ignore[type-arg]
    for obj in osmium.FileProcessor(str(path)):
        tags = dict(obj.tags)
        if obj.is_node():
            el = {"type": "node", "id": obj.id, "lat": obj.location.lat, "lon": obj.location.lon}
        elif obj.is_way():
            el = {"type": "way", "id": obj.id, "nodes": [n.ref for n in obj.nodes]}
        else:
            el = {
                "type": "relation",
                "id": obj.id,
                "members": [
                    {
                        "type": {"n": "node", "w": "way", "r": "relation"}[m.type],
                        "ref": m.ref,
                        "role": m.role,
                    }
                    for m in obj.members
                ],
            }
        if tags:
            el["tags"] = tags
        elements.append(el)
    return {
        "version": 0.6,
        "generator": "Overpass API (recorded)",
        "osm3s": {"timestamp_osm_base": "2026-08-15T11:23:42Z"},
        "elements": elements,
    }


class ReplayServer:
    """A local HTTP server replaying recorded Overpass and Nominatim responses.

    A response is bytes, a list of ``(needle, bytes)`` (the first needle found in
    the request body decides), or a function of the request body returning
    ``(HTTP status, bytes)``.
    """

    def __init__(
        self,
        responses: dict[
            str, bytes | list[tuple[bytes, bytes]] | Callable[[bytes], tuple[int, bytes]]
        ],
    ) -> None:
        self.responses = responses
        self.requests: list[tuple[str, str, bytes]] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def _reply(self, method: str) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                server.requests.append((method, self.path, body))
                key = self.path.split("?")[0]
                payload = server.responses.get(key)
                code = 200
                if callable(payload):  # answer by request content: (status, bytes)
                    code, payload = payload(body)
                if isinstance(payload, list):  # route by a needle in the request body
                    payload = next((p for needle, p in payload if needle in body), None)
                if payload is None:
                    self.send_response(404)
                    self.end_headers()
                    return
                self.send_response(code)
                ctype = "text/plain" if key.endswith("status") else "application/json"
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def do_GET(self) -> None:
                self._reply("GET")

            def do_POST(self) -> None:
                self._reply("POST")

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> ReplayServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


STATUS = (
    b"Connected as: 1\nCurrent time: 2026-08-15T11:30:00Z\nAnnounced endpoint: none\n"
    b"Rate limit: 2\n2 slots available now.\nCurrently running queries (pid, space limit, "
    b"time limit, start time):\n"
)


@pytest.fixture(scope="session")
def overpass_recording(data_dir: Path) -> bytes:
    return json.dumps(overpass_json_from_osm(LUJIAZUI)).encode()


@pytest.fixture
def replay_server(overpass_recording: bytes) -> Iterator[ReplayServer]:
    with ReplayServer({"/api/status": STATUS, "/api/interpreter": overpass_recording}) as server:
        yield server


def overpass_json_from_boundaries(  # type: ignore[type-arg]
    path: Path,
    name_field: str,
    *,
    admin_level: str = "8",
    boundary: str = "administrative",
    id_offset: int = 0,
) -> dict:
    """Turn admin polygons into an Overpass JSON answer: nodes, closed ways, boundary relations."""
    import geopandas as gpd

    gdf = gpd.read_file(path)
    elements: list[dict] = []  # type: ignore[type-arg]
    nid, wid = 9_000_000_000 + id_offset, 9_100_000_000 + id_offset
    for rid, (name, geom) in enumerate(zip(gdf[name_field], gdf.geometry, strict=True), start=1):
        members = []
        for poly in getattr(geom, "geoms", [geom]):
            refs = []
            for x, y in list(poly.exterior.coords)[:-1]:
                nid += 1
                elements.append({"type": "node", "id": nid, "lat": y, "lon": x})
                refs.append(nid)
            wid += 1
            elements.append({"type": "way", "id": wid, "nodes": [*refs, refs[0]]})
            members.append({"type": "way", "ref": wid, "role": "outer"})
        elements.append(
            {
                "type": "relation",
                "id": 9_200_000_000 + id_offset + rid,
                "members": members,
                "tags": {
                    "type": "boundary",
                    "boundary": boundary,
                    "admin_level": admin_level,
                    "name": name,
                },
            }
        )
    return {
        "version": 0.6,
        "osm3s": {"timestamp_osm_base": "2026-07-21T00:00:00Z"},
        "elements": elements,
    }


def nominatim_answer(west: float, south: float, east: float, north: float) -> bytes:
    """A recorded-style Nominatim /search answer whose polygon is the given box."""
    import shapely

    geom = shapely.geometry.mapping(shapely.box(west, south, east, north))
    return json.dumps(
        [
            {
                "place_id": 1,
                "osm_type": "relation",
                "osm_id": 1,
                "lat": str((south + north) / 2),
                "lon": str((west + east) / 2),
                "boundingbox": [str(south), str(north), str(west), str(east)],
                "class": "boundary",
                "type": "administrative",
                "place_rank": 12,
                "importance": 0.7,
                "addresstype": "city",
                "name": "浦东新区",
                "display_name": "浦东新区, 上海市, 中国",
                "geojson": geom,
            }
        ]
    ).encode()


def care_home() -> gpd.GeoDataFrame:
    """A hand-placed 60 x 40 m care-home campus in Lujiazui (the extract maps none): a polygon,
    so the outline access path is exercised too."""
    centre = (
        gpd.GeoSeries([shapely.Point(121.5035, 31.2335)], crs=4326).to_crs("EPSG:32651").iloc[0]
    )
    x, y = centre.x, centre.y
    return gpd.GeoDataFrame(
        {"category": ["elderly_care"], "subtype": ["nursing_home"], "name": ["test care home"]},
        geometry=[shapely.box(x - 30, y - 20, x + 30, y + 20)],
        crs="EPSG:32651",
    )
