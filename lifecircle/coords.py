"""Chinese map datums: GCJ-02 and BD-09 to WGS-84, vectorised.

Chinese web maps (Amap/Gaode, Tencent, DataV) publish coordinates in GCJ-02,
Baidu in BD-09. Both are deterministic, non-invertible-in-closed-form
obfuscations of WGS-84 that shift points by several hundred metres. The
forward transforms are public; here they are inverted by fixed-point
iteration, which converges to well under a millimetre inside China. Outside
mainland China's bounding box the forward transform is the identity, and so is
the inverse.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
Datum = Literal["wgs84", "gcj02", "bd09"]
DATUMS: tuple[Datum, ...] = ("wgs84", "gcj02", "bd09")

_A = 6378245.0  # Krasovsky 1940 semi-major axis used by GCJ-02
_EE = 0.00669342162296594323  # its squared eccentricity
_X_PI = np.pi * 3000.0 / 180.0


def _in_china(lon: FloatArray, lat: FloatArray) -> npt.NDArray[np.bool_]:
    return (lon >= 72.004) & (lon <= 137.8347) & (lat >= 0.8293) & (lat <= 55.8271)


def _offset_lat(x: FloatArray, y: FloatArray) -> FloatArray:
    ret = -100.0 + 2.0 * x + 3.0 * y + 0.2 * y * y + 0.1 * x * y + 0.2 * np.sqrt(np.abs(x))
    ret += (20.0 * np.sin(6.0 * x * np.pi) + 20.0 * np.sin(2.0 * x * np.pi)) * 2.0 / 3.0
    ret += (20.0 * np.sin(y * np.pi) + 40.0 * np.sin(y / 3.0 * np.pi)) * 2.0 / 3.0
    ret += (160.0 * np.sin(y / 12.0 * np.pi) + 320.0 * np.sin(y * np.pi / 30.0)) * 2.0 / 3.0
    return ret


def _offset_lon(x: FloatArray, y: FloatArray) -> FloatArray:
    ret = 300.0 + x + 2.0 * y + 0.1 * x * x + 0.1 * x * y + 0.1 * np.sqrt(np.abs(x))
    ret += (20.0 * np.sin(6.0 * x * np.pi) + 20.0 * np.sin(2.0 * x * np.pi)) * 2.0 / 3.0
    ret += (20.0 * np.sin(x * np.pi) + 40.0 * np.sin(x / 3.0 * np.pi)) * 2.0 / 3.0
    ret += (150.0 * np.sin(x / 12.0 * np.pi) + 300.0 * np.sin(x / 30.0 * np.pi)) * 2.0 / 3.0
    return ret


def wgs84_to_gcj02(lon: npt.ArrayLike, lat: npt.ArrayLike) -> tuple[FloatArray, FloatArray]:
    """Convert WGS-84 longitudes and latitudes to GCJ-02 (the forward transform).

    Parameters
    ----------
    lon, lat
        Coordinates in degrees (scalars or arrays of equal shape).

    Returns
    -------
    lon, lat
        GCJ-02 coordinates; points outside China are returned unchanged.

    Examples
    --------
    >>> lon, lat = wgs84_to_gcj02(116.404, 39.915)
    >>> round(float(lon), 8), round(float(lat), 8)
    (116.4102445, 39.91640428)
    """
    x = np.asarray(lon, dtype=np.float64)
    y = np.asarray(lat, dtype=np.float64)
    dlat = _offset_lat(x - 105.0, y - 35.0)
    dlon = _offset_lon(x - 105.0, y - 35.0)
    radlat = y / 180.0 * np.pi
    magic = 1.0 - _EE * np.sin(radlat) ** 2
    sqrtmagic = np.sqrt(magic)
    dlat = (dlat * 180.0) / ((_A * (1.0 - _EE)) / (magic * sqrtmagic) * np.pi)
    dlon = (dlon * 180.0) / (_A / sqrtmagic * np.cos(radlat) * np.pi)
    inside = _in_china(x, y)
    return np.where(inside, x + dlon, x), np.where(inside, y + dlat, y)


def gcj02_to_bd09(lon: npt.ArrayLike, lat: npt.ArrayLike) -> tuple[FloatArray, FloatArray]:
    """Convert GCJ-02 coordinates to BD-09 (Baidu's forward transform).

    Examples
    --------
    >>> lon, lat = gcj02_to_bd09(116.404, 39.915)
    >>> round(float(lon), 8), round(float(lat), 8)
    (116.41036949, 39.92133699)
    """
    x = np.asarray(lon, dtype=np.float64)
    y = np.asarray(lat, dtype=np.float64)
    z = np.sqrt(x * x + y * y) + 0.00002 * np.sin(y * _X_PI)
    theta = np.arctan2(y, x) + 0.000003 * np.cos(x * _X_PI)
    return z * np.cos(theta) + 0.0065, z * np.sin(theta) + 0.006


def wgs84_to_bd09(lon: npt.ArrayLike, lat: npt.ArrayLike) -> tuple[FloatArray, FloatArray]:
    """Convert WGS-84 coordinates to BD-09 (via GCJ-02)."""
    return gcj02_to_bd09(*wgs84_to_gcj02(lon, lat))


def _invert(
    forward: Callable[[FloatArray, FloatArray], tuple[FloatArray, FloatArray]],
    lon: npt.ArrayLike,
    lat: npt.ArrayLike,
    *,
    tol_deg: float = 1e-10,
    max_iter: int = 30,
) -> tuple[FloatArray, FloatArray]:
    """Invert `forward` by fixed-point iteration: w <- w - (forward(w) - target)."""
    tx = np.asarray(lon, dtype=np.float64)
    ty = np.asarray(lat, dtype=np.float64)
    wx, wy = tx.copy(), ty.copy()
    for _ in range(max_iter):
        fx, fy = forward(wx, wy)
        ex, ey = fx - tx, fy - ty
        wx = wx - ex
        wy = wy - ey
        if float(np.max(np.abs(ex), initial=0.0)) < tol_deg and (
            float(np.max(np.abs(ey), initial=0.0)) < tol_deg
        ):
            break
    return wx, wy


def gcj02_to_wgs84(lon: npt.ArrayLike, lat: npt.ArrayLike) -> tuple[FloatArray, FloatArray]:
    """Convert GCJ-02 coordinates to WGS-84 (iterative inverse, sub-millimetre).

    Examples
    --------
    >>> lon, lat = gcj02_to_wgs84(116.41024449916938, 39.91640428150164)
    >>> round(float(lon), 9), round(float(lat), 9)
    (116.404, 39.915)
    """
    return _invert(wgs84_to_gcj02, lon, lat)


def bd09_to_wgs84(lon: npt.ArrayLike, lat: npt.ArrayLike) -> tuple[FloatArray, FloatArray]:
    """Convert BD-09 coordinates to WGS-84 (iterative inverse of both steps)."""
    return _invert(wgs84_to_bd09, lon, lat)


def to_wgs84(lon: npt.ArrayLike, lat: npt.ArrayLike, datum: Datum) -> tuple[FloatArray, FloatArray]:
    """Convert coordinates in `datum` ("wgs84", "gcj02" or "bd09") to WGS-84."""
    if datum == "gcj02":
        return gcj02_to_wgs84(lon, lat)
    if datum == "bd09":
        return bd09_to_wgs84(lon, lat)
    return np.asarray(lon, dtype=np.float64), np.asarray(lat, dtype=np.float64)
