"""Network walking distance from every origin to the nearest facility of each group.

One multi-source shortest-path search per facility group on the array form
of the network (a compiled Dijkstra with a distance limit, equal bit for bit
to scipy's; the groups run on two threads), no Python loop over nodes.
Facilities and origins sit *on* edges (see
:mod:`lifecircle.snapping`): a virtual source node is joined to both ends of
each facility's edge by the walk from the facility to that end (access leg
plus the part of the edge), and an origin takes the shorter way out of its
own edge. Origin and facility on the same edge also get the direct walk
along it.
"""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd
import scipy.sparse as sp

from lifecircle.errors import DataError
from lifecircle.network import WalkNetwork, min_per_pair, network_csr

logger = logging.getLogger(__name__)

FloatArray = npt.NDArray[np.float64]


def _sift_up_py(
    keys: FloatArray, items: npt.NDArray[np.int64], i: int, key: float, item: int
) -> None:  # pragma: no cover - compiled by numba in dijkstra_kernel
    """Place `item` at `key` in the binary heap, starting at free slot `i`."""
    while i > 0 and keys[(i - 1) // 2] > key:
        keys[i], items[i], i = keys[(i - 1) // 2], items[(i - 1) // 2], (i - 1) // 2
    keys[i], items[i] = key, item


def _sift_down_py(
    keys: FloatArray, items: npt.NDArray[np.int64], size: int
) -> None:  # pragma: no cover - compiled by numba in dijkstra_kernel
    """Move the item at `size` (the old last one) into the root's place and sift it down."""
    key, item, i = keys[size], items[size], 0
    while True:
        c = 2 * i + 1
        if c >= size:
            break
        if c + 1 < size and keys[c + 1] < keys[c]:
            c += 1
        if keys[c] >= key:
            break
        keys[i], items[i], i = keys[c], items[c], c
    keys[i], items[i] = key, item


_sift_up: Any = _sift_up_py  # replaced by the compiled helpers in dijkstra_kernel
_sift_down: Any = _sift_down_py


def _dijkstra_py(
    indptr: npt.NDArray[np.integer],
    indices: npt.NDArray[np.integer],
    weights: FloatArray,
    seeds: npt.NDArray[np.int64],
    seed_m: FloatArray,
    limit: float,
    dist: FloatArray,
    touched: npt.NDArray[np.int64],
    keys: FloatArray,
    items: npt.NDArray[np.int64],
) -> int:  # pragma: no cover - compiled by numba in dijkstra_kernel
    """Dijkstra from `seeds` at `seed_m` (binary heap, lazy deletion), up to `limit`.

    `dist` must be ``inf`` at every node on entry; on return it holds the
    distance of the first ``nt`` nodes of `touched` (the returned count) and
    ``inf`` elsewhere. `keys`/`items` need room for one entry per matrix entry
    plus one per seed. A seed is the relaxation of an edge from outside.
    """
    nt = 0
    size = 0
    for s in range(seeds.shape[0]):
        if seed_m[s] <= limit and seed_m[s] < dist[seeds[s]]:
            if dist[seeds[s]] == np.inf:
                touched[nt] = seeds[s]
                nt += 1
            dist[seeds[s]] = seed_m[s]
            _sift_up(keys, items, size, seed_m[s], seeds[s])
            size += 1
    while size > 0:
        d, x = keys[0], items[0]
        size -= 1
        if size > 0:
            _sift_down(keys, items, size)
        if d > dist[x]:  # a stale entry: x was settled nearer
            continue
        for k in range(indptr[x], indptr[x + 1]):
            y = indices[k]
            nd = d + weights[k]
            if nd >= dist[y] or nd > limit:
                continue
            if dist[y] == np.inf:
                touched[nt] = y
                nt += 1
            dist[y] = nd
            _sift_up(keys, items, size, nd, y)
            size += 1
    return nt


_KERNELS: dict[str, Any] = {}


def dijkstra_kernel() -> Any:
    """Return the compiled :func:`_dijkstra_py` (numba, releases the GIL; compiled once)."""
    from lifecircle.fields import compiled_loops

    helpers = {"_sift_up": _sift_up_py, "_sift_down": _sift_down_py}
    loops = {"dijkstra": _dijkstra_py}
    return (_KERNELS or compiled_loops(_KERNELS, globals(), helpers, loops))["dijkstra"]


def check_weights(lengths_m: FloatArray) -> None:
    """Refuse negative or NaN edge lengths (the compiled search needs lengths >= 0)."""
    bad = ~(np.asarray(lengths_m) >= 0)  # also NaN
    if bad.any():
        msg = (
            f"the walking network has {int(bad.sum())} edge lengths that are negative or missing: "
            "rebuild it (--rebuild) from an OSM extract, or fix the lengths given"
        )
        raise DataError(msg)


def check_limit(limit_m: float) -> None:
    """Refuse a negative or NaN search limit (scipy refuses a negative one; NaN would not bound)."""
    if not limit_m >= 0:
        msg = f"limit must be >= 0 m, got {limit_m}"
        raise ValueError(msg)


def bounded_dijkstra(graph: sp.csr_matrix, source: int, limit_m: float) -> FloatArray:
    """Return the shortest distance from `source` to every node, ``inf`` beyond `limit_m`.

    The same answer as scipy's ``dijkstra(graph, directed=True, indices=source,
    limit=limit_m)``, bit for bit (``tests/test_access.py``; a negative or NaN limit
    raises ``ValueError``, as scipy does for a negative one), from a compiled loop
    that releases the GIL, so the searches of several facility groups run on two
    threads at once (scipy's holds the GIL).
    """
    check_weights(graph.data)
    return seeded_dijkstra(graph, np.array([source], dtype=np.int64), np.zeros(1), limit_m)


def seeded_dijkstra(
    graph: sp.csr_matrix, seeds: npt.NDArray[np.int64], seed_m: FloatArray, limit_m: float
) -> FloatArray:
    """Return the distance to every node from the nearest seed, starting at `seed_m`.

    A seed at ``w`` metres is the edge of a virtual source of weight ``w``:
    the same distances as :func:`bounded_dijkstra` on the matrix with that
    source appended, without copying the matrix.
    """
    check_limit(limit_m)
    n = graph.shape[0]
    dist = np.full(n, np.inf)
    cap = len(graph.indices) + len(seeds)
    dijkstra_kernel()(
        graph.indptr,
        graph.indices,
        graph.data.astype(np.float64, copy=False),
        np.asarray(seeds, dtype=np.int64),
        np.asarray(seed_m, dtype=np.float64),
        float(limit_m),
        dist,
        np.empty(n, dtype=np.int64),
        np.empty(cap, dtype=np.float64),
        np.empty(cap, dtype=np.int64),
    )
    return dist


def edge_seeds(
    net: WalkNetwork, edge: npt.NDArray[np.int64], along_m: FloatArray, offset_m: FloatArray
) -> tuple[npt.NDArray[np.int64], FloatArray]:
    """Return the nodes a point on each `edge` reaches first, and the walk to them.

    A point ``along_m`` metres from ``u`` and ``offset_m`` off the street reaches
    ``u`` after ``offset_m + along_m`` and ``v`` after ``offset_m + (L - along_m)``:
    all the ``u`` ends, then all the ``v`` ends.
    """
    return (
        np.concatenate([net.u[edge], net.v[edge]]),
        np.concatenate([offset_m + along_m, offset_m + (net.length_m[edge] - along_m)]),
    )


@dataclass
class Router:
    """A network ready for repeated multi-source searches (``csr``: nodes x nodes)."""

    net: WalkNetwork
    csr: sp.csr_matrix

    def __post_init__(self) -> None:
        """Refuse lengths the searches cannot use (negative or missing: not a walk)."""
        check_weights(self.net.length_m)
        check_weights(self.csr.data)

    @classmethod
    def from_network(cls, net: WalkNetwork) -> Router:
        """Build the sparse matrix once for all searches."""
        return cls(net=net, csr=network_csr(net))

    def with_sources(self, sources: pd.DataFrame, *, separate: bool = False) -> sp.csr_matrix:
        """Return the matrix with virtual source nodes appended after the network nodes.

        Each virtual node is joined to both ends of its facilities' edges by the
        walk from the facility to that end. With ``separate=False`` one virtual
        node (index ``n_nodes``) stands for all reachable `sources`; with
        ``separate=True`` reachable source ``i`` gets its own node
        ``n_nodes + i``.
        """
        net = self.net
        ok = sources["edge"].to_numpy() >= 0
        e = sources["edge"].to_numpy()[ok]
        along = sources["along_m"].to_numpy()[ok]
        offset = sources["offset_m"].to_numpy()[ok]
        which = np.arange(len(e)) if separate else np.zeros(len(e), dtype=np.int64)
        rows, cols, w = min_per_pair(
            np.concatenate([which, which]), *edge_seeds(net, e, along, offset)
        )
        k = int(which.max()) + 1 if len(which) else 0
        base = self.csr
        size = net.n_nodes + k
        extra_ptr = base.indptr[-1] + np.cumsum(np.bincount(rows, minlength=k))
        indptr = np.concatenate([base.indptr, extra_ptr]).astype(base.indptr.dtype)
        indices = np.concatenate([base.indices, cols]).astype(base.indices.dtype)
        data = np.concatenate([base.data, w])
        return sp.csr_matrix((data, indices, indptr), shape=(size, size))

    def node_distances(self, sources: pd.DataFrame, *, limit_m: float) -> FloatArray:
        """Return the walking distance from the nearest source to every node.

        Parameters
        ----------
        sources
            Snapped sources (``edge``, ``along_m``, ``offset_m``); rows with
            ``edge == -1`` are ignored.
        limit_m
            Search radius; nodes farther away get ``inf``.

        Returns
        -------
        ndarray
            One distance per network node, metres.
        """
        ok = sources["edge"].to_numpy() >= 0
        seeds, seed_m = edge_seeds(
            self.net,
            sources["edge"].to_numpy()[ok],
            sources["along_m"].to_numpy()[ok],
            sources["offset_m"].to_numpy()[ok],
        )
        return seeded_dijkstra(self.csr, seeds, seed_m, limit_m)  # the matrix is not copied

    def point_distances(
        self,
        node_dist: FloatArray,
        origins: pd.DataFrame,
        sources: pd.DataFrame,
        *,
        limit_m: float,
    ) -> FloatArray:
        """Return each origin's distance to the nearest source, given node distances.

        Parameters
        ----------
        node_dist
            Output of :meth:`node_distances` for the same `sources`.
        origins
            Snapped origins; unreachable ones (``edge == -1``) get ``inf``.
        sources
            Snapped sources (for origin and source on the same edge).
        limit_m
            Distances above this become ``inf``.
        """
        net = self.net
        e = origins["edge"].to_numpy()
        ok = e >= 0
        out = np.full(len(origins), np.inf)
        eo = e[ok]
        along = origins["along_m"].to_numpy()[ok]
        offset = origins["offset_m"].to_numpy()[ok]
        via_u = along + node_dist[net.u[eo]]
        via_v = (net.length_m[eo] - along) + node_dist[net.v[eo]]
        best = offset + np.minimum(via_u, via_v)
        # origin and source on the same edge: walk straight along it
        s_ok = sources["edge"].to_numpy() >= 0
        s_edge = sources["edge"].to_numpy()[s_ok]
        order = np.argsort(s_edge, kind="stable")
        s_edge = s_edge[order]
        s_along = sources["along_m"].to_numpy()[s_ok][order]
        s_off = sources["offset_m"].to_numpy()[s_ok][order]
        has_source = np.zeros(net.n_edges, dtype=bool)
        has_source[s_edge] = True
        cand = np.flatnonzero(has_source[eo])  # origins sharing an edge with a source
        lo = np.searchsorted(s_edge, eo[cand], side="left")
        count = np.searchsorted(s_edge, eo[cand], side="right") - lo
        pos = np.repeat(cand, count)
        if len(pos):
            first = np.repeat(lo - (np.cumsum(count) - count), count)
            src = first + np.arange(len(pos))
            direct = offset[pos] + s_off[src] + np.abs(along[pos] - s_along[src])
            np.minimum.at(best, pos, direct)
        best[best > limit_m] = np.inf
        out[ok] = best
        return out

    def distances(
        self, origins: pd.DataFrame, sources: pd.DataFrame, *, limit_m: float
    ) -> FloatArray:
        """Return each origin's walking distance to the nearest source (``inf`` beyond `limit_m`).

        Examples
        --------
        A 100 m street with a facility 10 m from one end and a resident 5 m
        off the street at the other end:

        >>> import numpy as np
        >>> from lifecircle.network import WalkNetwork
        >>> net = WalkNetwork(np.array([1, 2]), np.array([0.0, 100.0]), np.zeros(2),
        ...     np.array([0]), np.array([1]), np.array([100.0]), np.array([7]),
        ...     np.array(["footway"], dtype=object), "EPSG:32651")
        >>> fac = pd.DataFrame({"edge": [0], "along_m": [10.0], "offset_m": [0.0]})
        >>> res = pd.DataFrame({"edge": [0], "along_m": [100.0], "offset_m": [5.0]})
        >>> Router.from_network(net).distances(res, fac, limit_m=1000).tolist()
        [95.0]
        """
        node_dist = self.node_distances(sources, limit_m=limit_m)
        return self.point_distances(node_dist, origins, sources, limit_m=limit_m)


def nearest_distances(
    router: Router,
    origins: pd.DataFrame,
    facilities: pd.DataFrame,
    groups: dict[str, npt.NDArray[np.bool_]],
    *,
    limit_m: float,
) -> pd.DataFrame:
    """Return origin distances to the nearest facility of each group.

    Parameters
    ----------
    router
        Prepared network.
    origins, facilities
        Snapped points (``edge``, ``along_m``, ``offset_m``).
    groups
        Group name -> boolean mask over `facilities` rows.
    limit_m
        Search radius in metres.

    Returns
    -------
    DataFrame
        One column per group (metres, ``inf`` = farther than `limit_m`
        or unreachable), aligned to ``origins.index``.
    """
    columns = {}
    with ThreadPoolExecutor(max_workers=2) as pool:  # the compiled search releases the GIL
        found = {
            name: pool.submit(router.distances, origins, facilities.loc[mask], limit_m=limit_m)
            for name, mask in groups.items()
        }
    for name, mask in groups.items():
        columns[name] = found[name].result()
        logger.info(
            "%s: %d facilities, %d of %d origins within %.0f m",
            name,
            int(mask.sum()),
            int(np.isfinite(columns[name]).sum()),
            len(origins),
            limit_m,
        )
    return pd.DataFrame(columns, index=origins.index)
