"""Issue 12: the faster cache and snapping give exactly the answers of the direct computation."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from lifecircle.network import WalkNetwork, network_csr, network_from_tables, network_tables
from lifecircle.pipeline import CoverageOptions, compute_coverage, scenario_area
from lifecircle.prepare import AreaRequest, prepare_area
from lifecircle.snapping import snap_residents
from tests.conftest import care_home


def test_network_tables_round_trip_is_exact(lujiazui_net: WalkNetwork) -> None:
    nodes, edges = network_tables(lujiazui_net)
    assert edges["u"].dtype == np.int32  # compact positions; coordinates stay float64
    back = network_from_tables(nodes, edges, crs=lujiazui_net.crs)
    for name in ("node_osmid", "x", "y", "u", "v", "length_m", "way_id"):
        np.testing.assert_array_equal(getattr(back, name), getattr(lujiazui_net, name))
    assert back.highway.tolist() == lujiazui_net.highway.tolist()


def test_csr_matches_a_dictionary_of_shortest_parallel_edges(lujiazui_net: WalkNetwork) -> None:
    """The one-key sort and the direct indptr give scipy's matrix of the shortest edges."""
    net = replace(lujiazui_net)  # a fresh object: nothing remembered
    best: dict[tuple[int, int], float] = {}
    for a, b, w in zip(net.u.tolist(), net.v.tolist(), net.length_m.tolist(), strict=True):
        for key in ((a, b), (b, a)):
            best[key] = min(best.get(key, np.inf), w)
    rows, cols = np.array(list(best)).T
    want = sp.csr_matrix((list(best.values()), (rows, cols)), shape=(net.n_nodes,) * 2)
    got = network_csr(net)
    assert (got != want).nnz == 0
    assert got.nnz == len(best)  # zero-length edges stay explicit entries
    assert network_csr(net) is got  # computed once per network


@pytest.mark.filterwarnings("ignore:no elderly_care facilities:RuntimeWarning")
def test_cached_resident_snap_gives_identical_coverage(private_cache: Path) -> None:
    """A run from the cache (stored snap) equals one that snaps the residents again."""
    req = AreaRequest(district="pudong")
    prepare_area(req)  # build
    cached = prepare_area(req)  # load
    assert cached.resident_snap is not None
    fresh = snap_residents(cached.network, cached.residents)
    pd.testing.assert_frame_equal(
        cached.resident_snap, fresh, check_names=False, check_index_type=False
    )
    area = scenario_area(cached, add=care_home())
    opts = CoverageOptions(isochrones=False)
    with_cache = compute_coverage(area, opts)
    without = compute_coverage(replace(area, resident_snap=None), opts)
    cols = [c for c in without.residents.columns if c.startswith(("dist_", "covered_"))]
    assert len(cols) >= 8
    pd.testing.assert_frame_equal(with_cache.residents[cols], without.residents[cols])
    assert with_cache.summary["categories"] == without.summary["categories"]
    # other limits: the stored snap is not used
    assert area.resident_snap_for(150.0, 1000.0) is None
