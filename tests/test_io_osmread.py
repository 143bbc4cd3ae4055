"""read_osm takes the highway ways from libosmium's OPL text: it must give exactly what a
plain per-object pyosmium reader gives (ids, node ids, coordinates, kept tags, features)."""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import numpy as np
import osmium
import pytest
import shapely
from osmium.osm import mutable

from lifecircle import io
from lifecircle.errors import DataError
from lifecircle.network import WALK_EXCLUDE, build_walk_network
from lifecircle.osmdata import ENTRANCE_KEY, FEATURE_KEYS, OSMData
from tests.conftest import LUJIAZUI


def plain_read(path: Path) -> dict[str, Any]:
    """Read an OSM file object by object with pyosmium (the straightforward way)."""
    keys = set(WALK_EXCLUDE) | {"highway"}
    ways: list[tuple[int, list[int], list[float], list[float], dict[str, str]]] = []
    features: list[tuple[str, int, dict[str, str], bytes]] = []
    entrances: list[tuple[int, dict[str, str], float, float]] = []
    wkb = osmium.geom.WKBFactory()
    proc = osmium.FileProcessor(str(path)).with_areas(osmium.filter.KeyFilter(*FEATURE_KEYS))
    for obj in proc.with_filter(osmium.filter.EmptyTagFilter()):
        if obj.is_node() and obj.location.valid():
            tags = dict(obj.tags)
            if ENTRANCE_KEY in tags:
                entrances.append((obj.id, tags, obj.location.lon, obj.location.lat))
            if any(k in tags for k in FEATURE_KEYS):
                features.append(("node", obj.id, tags, bytes.fromhex(wkb.create_point(obj))))
        elif obj.is_way() and "highway" in obj.tags:
            kept = {k: v for k, v in obj.tags if k in keys}
            run: list[tuple[int, float, float]] = []
            for nd in [*obj.nodes, None]:  # None closes the last run
                if nd is not None and nd.location.valid():
                    run.append((nd.ref, nd.location.lon, nd.location.lat))
                    continue
                if len(run) >= 2:
                    refs, lons, lats = zip(*run, strict=True)
                    ways.append((obj.id, list(refs), list(lons), list(lats), kept))
                run = []
        elif obj.is_area():
            try:
                geom = bytes.fromhex(wkb.create_multipolygon(obj))
            except RuntimeError:
                continue
            kind = "way" if obj.from_way() else "relation"
            features.append((kind, obj.orig_id(), dict(obj.tags), geom))
    return {"ways": ways, "features": features, "entrances": entrances}


def assert_same_as_plain(path: Path) -> OSMData:
    got = io.read_osm(path)
    ref = plain_read(path)
    w = got.ways
    assert w.way_ids.tolist() == [r[0] for r in ref["ways"]]
    sizes = [len(r[1]) for r in ref["ways"]]
    assert w.offsets.tolist() == np.concatenate([[0], np.cumsum(sizes)]).tolist()
    assert w.node_ids.tolist() == [n for r in ref["ways"] for n in r[1]]
    # exact equality: the same doubles as pyosmium's Location.lon / lat
    assert w.lon.tolist() == [x for r in ref["ways"] for x in r[2]]
    assert w.lat.tolist() == [y for r in ref["ways"] for y in r[3]]
    assert w.tags == [r[4] for r in ref["ways"]]
    feats = got.features
    assert list(feats["osm_type"]) == [f[0] for f in ref["features"]]
    assert feats["osm_id"].tolist() == [f[1] for f in ref["features"]]
    assert list(feats["tags"]) == [f[2] for f in ref["features"]]
    assert shapely.to_wkb(feats.geometry.to_numpy()).tolist() == [
        shapely.to_wkb(shapely.from_wkb(f[3])) for f in ref["features"]
    ]
    ent = got.entrances
    assert ent["osm_id"].tolist() == [e[0] for e in ref["entrances"]]
    assert list(ent["tags"]) == [e[1] for e in ref["entrances"]]
    assert ent.geometry.x.tolist() == [e[2] for e in ref["entrances"]]
    assert ent.geometry.y.tolist() == [e[3] for e in ref["entrances"]]
    return got


def test_lujiazui_matches_a_plain_pyosmium_reader(data_dir: Path, tmp_path: Path) -> None:
    got = assert_same_as_plain(LUJIAZUI)
    assert len(got.ways) == 1500
    assert len(got.features) > 600
    pbf = tmp_path / "l.osm.pbf"
    with osmium.SimpleWriter(str(pbf)) as writer:
        for obj in osmium.FileProcessor(str(LUJIAZUI)):
            writer.add(obj)
    assert_same_as_plain(pbf)


def tiled_pbf(path: Path) -> Path:
    """A small pbf cut like a tile: some way nodes are not in the file."""
    nodes = {
        1: (121.0, 31.0),
        2: (121.001, 31.0),
        3: (121.0012345, 31.0000001),
        5: (121.003, 31.001),
        6: (121.004, 31.002),
        8: (-0.0000001, -89.9999999),
        9: (179.9999999, 89.9999999),
        10: (121.01, 31.01),
        11: (121.011, 31.01),
        12: (121.011, 31.011),
    }
    node_tags = {
        10: {"building": "yes", "entrance": "main"},
        11: {"amenity": "school", "name": "学校 a,b=c%d @e"},
        12: {"entrance": "yes"},
    }
    ways = [
        (100, [1, 2, 3], {"highway": "footway", "name": "Rua A,=% b"}),
        (101, [4, 1, 2, 7, 3, 5, 6, 99], {"highway": "residential", "foot": "no"}),  # gaps
        (102, [4, 1, 7], {"highway": "service"}),  # one located node: dropped
        (103, [], {"highway": "path"}),
        (104, [8, 9], {"highway": "path", "sidewalk:both": "separate", "name": "小路"}),
        (105, [10, 11, 12, 10], {"building": "school", "amenity": "school"}),
        (106, [5, 6, 5], {"highway": "pedestrian", "area": "yes", "surface": "x y"}),
        (107, [3, 5], {"highway": "footway", "name": "Rua A,=% b"}),  # same kept tags as 100
    ]
    with osmium.SimpleWriter(str(path)) as writer:
        for nid, loc in nodes.items():
            writer.add_node(mutable.Node(id=nid, location=loc, tags=node_tags.get(nid, {})))
        for wid, refs, tags in ways:
            writer.add_way(mutable.Way(id=wid, nodes=refs, tags=tags))
        members = [("w", 105, "outer")]
        writer.add_relation(mutable.Relation(id=200, members=members, tags={"type": "site"}))
    return path


def test_tiled_pbf_with_missing_nodes_matches_a_plain_reader(tmp_path: Path) -> None:
    got = assert_same_as_plain(tiled_pbf(tmp_path / "tile.osm.pbf"))
    w = got.ways
    # hand-checked: way 101 splits into runs 1-2 and 3-5-6; 102 and 103 vanish
    assert w.way_ids.tolist() == [100, 101, 101, 104, 106, 107]
    assert w.node_ids.tolist() == [1, 2, 3, 1, 2, 3, 5, 6, 8, 9, 5, 6, 5, 3, 5]
    assert w.lon[2] == 121.0012345
    assert w.lat[2] == 31.0000001
    assert w.tags[0] == {"highway": "footway"}
    assert w.tags[0] is w.tags[5]
    assert w.tags[1] == {"highway": "residential", "foot": "no"}
    assert w.tags[3] == {"highway": "path", "sidewalk:both": "separate"}
    assert w.tags[4] == {"highway": "pedestrian", "area": "yes"}
    assert got.features["tags"].iloc[1]["name"] == "学校 a,b=c%d @e"
    # node 10 is a feature and an entrance: each table has its own dict
    feature_tags = got.features.loc[got.features["osm_id"] == 10, "tags"].iloc[0]
    entrance_tags = got.entrances.loc[got.entrances["osm_id"] == 10, "tags"].iloc[0]
    assert feature_tags == entrance_tags == {"building": "yes", "entrance": "main"}
    assert feature_tags is not entrance_tags


def test_tagged_nodes_are_read_from_the_opl_text_sorted_or_not() -> None:
    sorted_text = (
        b"n1 Tamenity=school,name=A%20%B%2c%C x121.5 y31.25\n"
        b"n2 Tentrance=yes,amenity=clinic x-0.0000001 y-89.9999999\n"
        b"n3 Tname=no%20%place x y\n"
        b"w7 Thighway=footway Nn1x121.5y31.25,n2x1y2\n"
        b"r5 Ttype=x Mw7@\n"
    )
    feats, ents = io.tagged_nodes_from_opl(sorted_text)
    assert feats["osm_id"].tolist() == [1, 2]  # node 3 has no location
    assert feats["tags"].tolist() == [
        {"amenity": "school", "name": "A B,C"},
        {"entrance": "yes", "amenity": "clinic"},
    ]
    assert feats.geometry.x.tolist() == [121.5, -1e-7]
    assert feats.geometry.y.tolist() == [31.25, -89.9999999]
    assert ents["osm_id"].tolist() == [2]
    # nodes after other objects (an unsorted file) are found too, in file order
    unsorted = b"w7 Thighway=footway Nn1x1y2,n2x1y3\nn9 Tamenity=school x1 y2\nn4 Tname=x x3 y4\n"
    feats, ents = io.tagged_nodes_from_opl(unsorted)
    assert feats["osm_id"].tolist() == [9, 4]
    assert ents.empty
    feats, ents = io.tagged_nodes_from_opl(b"w7 Thighway=footway Nn1x1y2,n2x1y3\n")
    assert feats.empty
    assert ents.empty


def test_opl_escapes_are_decoded_in_kept_tags() -> None:
    text = (
        b"n1 Tamenity=x x1 y2\n"
        b"w7 Thighway=foot%20%way%2c%x%3d%y%25%,foot=n%6f%,name=a Nn1x1.5y-2,n2x-0.0000001y0\n"
        b"w8 T N\n"
        b"w9 Thighway=%8def% Nn3xy,n4x1y2\n"
        b"r5 Ttype=x Mw7@"
    )
    ways = io.highway_ways_from_opl(text)
    assert ways.way_ids.tolist() == [7]
    assert ways.tags == [{"highway": "foot way,x=y%", "foot": "no"}]
    assert ways.lon.tolist() == [1.5, -1e-7]
    assert ways.lat.tolist() == [-2.0, 0.0]


def test_built_network_matches_a_per_edge_build(lujiazui_osm: OSMData) -> None:
    """The vectorised network equals one built way by way, edge by edge."""
    from lifecircle.network import is_walkable

    ways = lujiazui_osm.ways
    net = build_walk_network(ways, crs="EPSG:32651")
    edges = []
    for i, tags in enumerate(ways.tags):
        if not is_walkable(tags):
            continue
        ids = ways.node_ids[ways.offsets[i] : ways.offsets[i + 1]].tolist()
        way = int(ways.way_ids[i])
        edges += [(a, b, way, tags["highway"]) for a, b in itertools.pairwise(ids) if a != b]
    osmid = net.node_osmid
    got = list(
        zip(
            osmid[net.u].tolist(),
            osmid[net.v].tolist(),
            net.way_id.tolist(),
            list(net.highway),
            strict=True,
        )
    )
    assert got == edges
    assert net.n_nodes == len({n for e in edges for n in e[:2]})


@pytest.mark.parametrize("name", ["bad.osm.pbf"])
def test_truncated_pbf_names_the_file(tmp_path: Path, name: str) -> None:
    good = tiled_pbf(tmp_path / "t.osm.pbf").read_bytes()
    bad = tmp_path / name
    bad.write_bytes(good[: len(good) // 2])
    with pytest.raises(DataError, match=name.replace(".", r"\.")):
        io.read_osm(bad)


def test_a_full_temporary_disk_is_named_with_the_fix(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # the highway ways are staged as text in the temporary folder: when writing them fails on a
    # full disk, the error says so (not "check that it is a complete OSM extract")
    import errno
    import shutil
    from collections import namedtuple

    pbf = tmp_path / "tiny.osm.pbf"
    writer = osmium.SimpleWriter(str(pbf))
    writer.add_node(mutable.Node(id=1, location=(121.5, 31.2), tags={"amenity": "school"}))
    writer.close()

    def full_disk(*_args: Any) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(io, "_read_features", full_disk)
    monkeypatch.setattr(shutil, "disk_usage", lambda _p: usage(10, 10, 0))
    with pytest.raises(DataError, match=r"temporary folder .* is full.*TMPDIR"):
        io.read_osm(pbf)


def test_ways_without_their_nodes_name_the_file(tmp_path: Path) -> None:
    # an extract cut without its nodes: no way has a location, so there is no network
    path = tmp_path / "ways_only.osm.pbf"
    with osmium.SimpleWriter(str(path)) as writer:
        writer.add_way(mutable.Way(id=1, nodes=[1, 2, 3], tags={"highway": "footway"}))
        writer.add_way(mutable.Way(id=2, nodes=[3, 4], tags={"highway": "path"}))
    with pytest.raises(DataError, match=r"ways_only\.osm\.pbf holds no highways"):
        io.read_osm(path)
