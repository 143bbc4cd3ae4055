from __future__ import annotations

import geopandas as gpd
import pytest
import shapely

from lifecircle.errors import CRSError, InputError
from lifecircle.io import read_table
from lifecircle.zones import (
    classify_unit,
    label_points,
    prepare_user_zones,
    ring_polygons,
    unit_table,
)
from tests.conftest import DATA_DIR

AREA = shapely.box(0, 0, 10_000, 10_000)


def test_pudong_units_are_classified() -> None:
    units = unit_table(read_table(DATA_DIR / "pudong" / "admin" / "pudong_streets_2023.csv"))
    counts = units["kind"].value_counts().to_dict()
    assert counts == {"town": 24, "subdistrict": 12, "farm": 3, "development_zone": 3}
    assert classify_unit("陆家嘴街道") == "subdistrict"
    assert classify_unit("三林镇") == "town"


def test_user_zones_with_rings() -> None:
    zones = gpd.GeoDataFrame(
        {"name": ["dz"]}, geometry=[shapely.box(1000, 1000, 2000, 2000)], crs="EPSG:32651"
    )
    out = prepare_user_zones(zones, area=AREA, crs="EPSG:32651", ring_m=500)
    assert out["zone"].tolist() == ["dz", "dz (ring 0.5 km)"]
    # ring of a 1 km square buffered by 500 m: four 1000 x 500 strips and four quarter discs
    assert out.geometry.iloc[1].area == pytest.approx(4 * 1000 * 500 + 3.14159 * 500**2, rel=2e-3)
    pts = gpd.GeoDataFrame(
        geometry=[shapely.Point(1500, 1500), shapely.Point(2200, 1500), shapely.Point(9000, 9000)],
        crs="EPSG:32651",
    )
    inner = out.loc[out["kind"] == "zone"]
    ring = out.loc[out["kind"] == "ring"]
    assert label_points(pts, inner).tolist()[:1] == ["dz"]
    assert label_points(pts, ring).tolist()[1] == "dz (ring 0.5 km)"


def test_user_zone_errors_and_repair() -> None:
    with pytest.raises(CRSError, match="no CRS"):
        prepare_user_zones(
            gpd.GeoDataFrame(geometry=[shapely.box(0, 0, 1, 1)]), area=AREA, crs="EPSG:32651"
        )
    far = gpd.GeoDataFrame(geometry=[shapely.box(0, 0, 1, 1)], crs=4326)  # off Africa, not Shanghai
    with pytest.raises(InputError, match="no zone overlaps"):
        prepare_user_zones(far, area=AREA, crs="EPSG:32651")
    bowtie = shapely.Polygon([(1000, 1000), (2000, 2000), (2000, 1000), (1000, 2000)])
    assert not bowtie.is_valid
    with pytest.warns(RuntimeWarning, match="repaired 1 invalid"):
        out = prepare_user_zones(
            gpd.GeoDataFrame(geometry=[bowtie], crs="EPSG:32651"), area=AREA, crs="EPSG:32651"
        )
    assert out.geometry.is_valid.all()
    assert out.geometry.iloc[0].area == pytest.approx(500_000)


def test_rings_clip_to_area() -> None:
    rings = ring_polygons(shapely.Point(0, 0), (0, 3, 6), AREA, crs="EPSG:32651")
    assert rings["zone"].tolist() == ["0-3 km", "3-6 km"]
    assert rings.geometry.iloc[0].area == pytest.approx(3.1416 * 3000**2 / 4, rel=0.01)


def test_chinese_labels_render_with_the_cjk_font(tmp_path) -> None:  # type: ignore[no-untyped-def]
    import matplotlib.pyplot as plt
    import numpy as np
    from PIL import Image

    from lifecircle.plot import cjk_font

    font = cjk_font()
    assert font is not None, "install fonts-noto-cjk (make sysdeps)"
    fig, ax = plt.subplots(figsize=(2, 1))
    ax.set_axis_off()
    ax.text(0.5, 0.5, "陆家嘴街道", fontproperties=font, fontsize=20, ha="center", va="center")
    fig.savefig(tmp_path / "label.png")  # a missing glyph would warn, and warnings are errors
    plt.close(fig)
    ink = np.asarray(Image.open(tmp_path / "label.png").convert("L")) < 128
    assert ink.sum() > 200  # the characters were drawn, not empty boxes of a fallback font
