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

import numpy as np
import numpy.typing as npt
import pandas as pd
import scipy.sparse as sp

from lifecircle.network import WalkNetwork, min_per_pair, network_csr

logger = logging.getLogger(__name__)

FloatArray = npt.NDArray[np.float64]


def _dijkstra_py(
    indptr: npt.NDArray[np.integer],
    indices: npt.NDArray[np.integer],
    weights: FloatArray,
    source: int,
    limit: float,
) -> FloatArray:  # pragma: no cover - compiled by numba in bounded_dijkstra
    """Dijkstra from `source` with a binary heap (lazy deletion); ``inf`` beyond `limit`."""
    n = indptr.shape[0] - 1
    dist = np.full(n, np.inf)
    done = np.zeros(n, dtype=np.bool_)
    keys = np.empty(indices.shape[0] + 1, dtype=np.float64)  # one push per relaxed edge
    items = np.empty(indices.shape[0] + 1, dtype=np.int64)
    dist[source] = 0.0
    keys[0], items[0], size = 0.0, source, 1
    while size > 0:
        d, u = keys[0], items[0]
        size -= 1
        if size > 0:  # the last item sifts down from the root
            key, item, i = keys[size], items[size], 0
            while True:
                c = 2 * i + 1
                if c >= size:
                    break
                if c + 1 < size and keys[c + 1] < keys[c]:
                    c += 1
                if keys[c] < key:
                    keys[i], items[i], i = keys[c], items[c], c
                else:
                    break
            keys[i], items[i] = key, item
        if done[u]:
            continue
        done[u] = True
        for e in range(indptr[u], indptr[u + 1]):
            w = indices[e]
            nd = d + weights[e]
            if done[w] or nd >= dist[w] or nd > limit:
                continue
            dist[w] = nd
            i = size  # sift up
            size += 1
            while i > 0:
                p = (i - 1) // 2
                if keys[p] > nd:
                    keys[i], items[i], i = keys[p], items[p], p
                else:
                    break
            keys[i], items[i] = nd, w
    return dist


def bounded_dijkstra(graph: sp.csr_matrix, source: int, limit_m: float) -> FloatArray:
    """Return the shortest distance from `source` to every node, ``inf`` beyond `limit_m`.

    The same answer as scipy's ``dijkstra(graph, directed=True, indices=source,
    limit=limit_m)``, bit for bit (``tests/test_access.py``; a negative or NaN limit
    raises ``ValueError``, as scipy does for a negative one), from a compiled loop
    that releases the GIL, so the searches of several facility groups run on two
    threads at once (scipy's holds the GIL).
    """
    if not limit_m >= 0:  # also NaN
        msg = f"limit must be >= 0 m, got {limit_m}"
        raise ValueError(msg)
    from lifecircle.fields import compiled

    kernel = compiled(_dijkstra_py)
    return np.asarray(
        kernel(
            graph.indptr,
            graph.indices,
            graph.data.astype(np.float64, copy=False),
            int(source),
            float(limit_m),
        ),
        dtype=np.float64,
    )


@dataclass
class Router:
    """A network ready for repeated multi-source searches (``csr``: nodes x nodes)."""

    net: WalkNetwork
    csr: sp.csr_matrix

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
            np.concatenate([which, which]),
            np.concatenate([net.u[e], net.v[e]]),
            np.concatenate([offset + along, offset + (net.length_m[e] - along)]),
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
        n = self.net.n_nodes
        if not (sources["edge"].to_numpy() >= 0).any():
            return np.full(n, np.inf)
        graph = self.with_sources(sources)
        dist = bounded_dijkstra(graph, n, limit_m)
        return np.asarray(dist[:n], dtype=np.float64)

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
