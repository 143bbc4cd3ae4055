from __future__ import annotations

import numpy as np
import pytest

from lifecircle.coords import (
    bd09_to_wgs84,
    gcj02_to_bd09,
    gcj02_to_wgs84,
    to_wgs84,
    wgs84_to_bd09,
    wgs84_to_gcj02,
)

# Published reference pairs (the widely used coordtransform implementations) for Tiananmen.
WGS = (116.404, 39.915)
GCJ = (116.41024449916938, 39.91640428150164)
GCJ_TO_BD = (116.41036949371029, 39.92133699351021)


def test_forward_matches_reference_pair() -> None:
    lon, lat = wgs84_to_gcj02(*WGS)
    assert lon == pytest.approx(GCJ[0], abs=1e-12)
    assert lat == pytest.approx(GCJ[1], abs=1e-12)
    blon, blat = gcj02_to_bd09(*WGS)
    assert (blon, blat) == pytest.approx(GCJ_TO_BD, abs=1e-12)


def test_inverse_recovers_wgs84_to_a_millimetre() -> None:
    lon, lat = gcj02_to_wgs84(*GCJ)
    # 1e-8 degree is about 1 mm
    assert lon == pytest.approx(WGS[0], abs=1e-8)
    assert lat == pytest.approx(WGS[1], abs=1e-8)


def test_vectorised_roundtrip_over_shanghai() -> None:
    rng = np.random.default_rng(1)
    lon = rng.uniform(121.0, 122.0, 1000)
    lat = rng.uniform(30.7, 31.9, 1000)
    back_lon, back_lat = gcj02_to_wgs84(*wgs84_to_gcj02(lon, lat))
    metres = np.hypot((back_lon - lon) * 95_000, (back_lat - lat) * 111_000)
    assert metres.max() < 0.001
    b_lon, b_lat = bd09_to_wgs84(*wgs84_to_bd09(lon, lat))
    assert np.hypot((b_lon - lon) * 95_000, (b_lat - lat) * 111_000).max() < 0.001


def test_shift_is_hundreds_of_metres_in_shanghai() -> None:
    lon, lat = wgs84_to_gcj02(121.5, 31.24)
    shift = np.hypot((lon - 121.5) * 95_000, (lat - 31.24) * 111_000)
    assert 300 < shift < 800


def test_no_op_outside_china() -> None:
    lon, lat = gcj02_to_wgs84(np.array([2.35, -0.1]), np.array([48.85, 51.5]))
    assert lon.tolist() == [2.35, -0.1]
    assert lat.tolist() == [48.85, 51.5]
    assert to_wgs84(1.0, 2.0, "wgs84")[0] == 1.0
