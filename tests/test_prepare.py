from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
import shapely

from lifecircle.areas import boundary_to_wgs84
from lifecircle.errors import CRSError
from lifecircle.io import read_raster_cells
from lifecircle.prepare import AreaRequest, prepare_area
from tests.conftest import LUJIAZUI

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
