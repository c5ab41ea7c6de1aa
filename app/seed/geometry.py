"""The demo street and its exact tiling: street → 6 communities → 48 grid
branches → 150 grids.

How the tiling is exact:

1. A street outline is drawn in local metres around 22.77 N 113.93 E: a
   star-shaped polygon whose radius is a sum of a few random harmonics plus
   smoothed noise, scaled to 30.11 km².
2. Top down, each parent is cut into its children by a Voronoi diagram of
   seed points inside it (two Lloyd steps, so the cells are even but not a
   honeycomb), each cell clipped to the parent. This gives the shapes, in
   floating point, where neighbours of different parents need not share
   vertices exactly.
3. So the final polygons are not these: the boundaries of all 150 grid cells
   are converted to degrees, noded together once on a fixed precision grid
   (`GRID_SIZE`, ~1 cm) and polygonised into faces. The faces are disjoint
   and cover the street, and two faces share an edge exactly, vertex for
   vertex. Each face goes to the grid cell it overlaps most; a grid is the
   union of its faces, a branch the union of its grids' faces, and so on up
   to the street.

Every area is thus a union of faces of one planar partition: siblings cannot
overlap, leave a gap or disagree on a shared edge, and each parent is exactly
the union of its children, whatever the seed.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import shapely
from shapely.geometry import MultiPoint, MultiPolygon, Polygon
from shapely.geometry.base import BaseGeometry

from app.models.enums import AreaLevel
from app.seed.names import (
    COMMUNITY_NAMES,
    ESTATE_HEADS,
    ESTATE_KINDS,
    ESTATE_MIDDLES,
    STREET_CODE,
    STREET_NAME,
)

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

SRID = 4326
# Coordinates are snapped to 1e-7 degrees (about 1 cm) so shared edges coincide.
GRID_SIZE = 1e-7

CENTRE_LNG = 113.93
CENTRE_LAT = 22.77
STREET_AREA_M2 = 30.11e6  # the real Guangming Street: 30.11 km²

COMMUNITIES = len(COMMUNITY_NAMES)  # 6
BRANCHES_PER_COMMUNITY = 8  # 48 grid branches
GRIDS = 150  # 3 or 4 per branch: the 6 largest branches get a fourth
GRIDS_PER_BRANCH = 3

_LLOYD_STEPS = 2
_SPLIT_ATTEMPTS = 40


def _metres_per_degree(lat: float) -> tuple[float, float]:
    """(metres per degree of longitude, of latitude) on WGS 84 at `lat`."""
    phi = math.radians(lat)
    per_lat = (
        111_132.92 - 559.82 * math.cos(2 * phi) + 1.175 * math.cos(4 * phi)
    ) - 0.0023 * math.cos(6 * phi)
    per_lng = 111_412.84 * math.cos(phi) - 93.5 * math.cos(3 * phi) + 0.118 * math.cos(5 * phi)
    return per_lng, per_lat


M_PER_DEG_LNG, M_PER_DEG_LAT = _metres_per_degree(CENTRE_LAT)


def to_degrees(x: FloatArray, y: FloatArray) -> tuple[FloatArray, FloatArray]:
    """Local metres (east, north of the centre) to longitude, latitude."""
    return CENTRE_LNG + x / M_PER_DEG_LNG, CENTRE_LAT + y / M_PER_DEG_LAT


def offset_degrees(
    lng: FloatArray, lat: FloatArray, east_m: FloatArray, north_m: FloatArray
) -> tuple[FloatArray, FloatArray]:
    """Points moved by a few hundred metres (a flat approximation is exact enough)."""
    return lng + east_m / M_PER_DEG_LNG, lat + north_m / M_PER_DEG_LAT


def _smooth_noise(rng: np.random.Generator, n: int, width: int) -> FloatArray:
    """Circular noise smoothed by a moving average of `width` samples."""
    raw = rng.normal(size=n)
    kernel = np.ones(width) / width
    padded = np.concatenate([raw[-width:], raw, raw[:width]])
    smooth = np.convolve(padded, kernel, mode="same")[width:-width]
    result: FloatArray = smooth / (smooth.std() or 1.0)
    return result


def street_outline(rng: np.random.Generator, vertices: int = 240) -> Polygon:
    """An irregular, star-shaped outline in local metres, of STREET_AREA_M2."""
    theta = np.linspace(0.0, 2 * math.pi, vertices, endpoint=False)
    radius = np.ones(vertices)
    for k in range(2, 8):
        amplitude = rng.uniform(0.04, 0.16) / math.sqrt(k - 1)
        radius += amplitude * np.cos(k * theta + rng.uniform(0, 2 * math.pi))
    radius += 0.035 * _smooth_noise(rng, vertices, 5)
    radius += 0.006 * rng.normal(size=vertices)
    radius = np.clip(radius, 0.45, None)
    stretch = rng.uniform(1.15, 1.45)  # a street is longer one way than the other
    x = radius * np.cos(theta) * stretch
    y = radius * np.sin(theta) / stretch
    angle = rng.uniform(0, math.pi)
    x, y = x * math.cos(angle) - y * math.sin(angle), x * math.sin(angle) + y * math.cos(angle)
    shape = Polygon(np.column_stack([x, y]))
    scale = math.sqrt(STREET_AREA_M2 / shape.area)
    return Polygon(np.column_stack([x * scale, y * scale]))


def _points_in(
    polygon: BaseGeometry, count: int, rng: np.random.Generator
) -> npt.NDArray[np.float64]:
    """`count` uniform random points inside `polygon` (rejection in its box)."""
    minx, miny, maxx, maxy = polygon.bounds
    shapely.prepare(polygon)
    found: list[FloatArray] = []
    have = 0
    while have < count:
        x = rng.uniform(minx, maxx, 4 * count)
        y = rng.uniform(miny, maxy, 4 * count)
        inside = shapely.contains_xy(polygon, x, y)
        chunk = np.column_stack([x[inside], y[inside]])
        found.append(chunk)
        have += len(chunk)
    return np.concatenate(found)[:count]


def _cells(parent: BaseGeometry, points: FloatArray) -> list[BaseGeometry]:
    """The Voronoi cells of `points`, in their order, clipped to `parent`."""
    diagram = shapely.voronoi_polygons(MultiPoint(points), extend_to=parent, ordered=True)
    cells = shapely.get_parts(diagram)
    return list(shapely.intersection(cells, parent))


def split(parent: BaseGeometry, count: int, rng: np.random.Generator) -> list[BaseGeometry]:
    """Cut `parent` into `count` cells, numbered clockwise from the north.

    Redrawn (deterministically) until every cell is a single polygon, which a
    concave stretch of the parent's edge can prevent; after the last attempt a
    cell may be a multipolygon, which is still a valid, gap-free tiling."""
    cells: list[BaseGeometry] = []
    points = np.empty((0, 2))
    for _ in range(_SPLIT_ATTEMPTS):
        points = _points_in(parent, count, rng)
        for _ in range(_LLOYD_STEPS):
            centroids = shapely.get_coordinates(shapely.centroid(_cells(parent, points)))
            inside = shapely.contains_xy(parent, centroids[:, 0], centroids[:, 1])
            points = np.where(inside[:, None], centroids, points)
        cells = _cells(parent, points)
        if all(isinstance(cell, Polygon) and not cell.is_empty for cell in cells):
            break
    centre = parent.centroid
    bearings = np.mod(np.arctan2(points[:, 0] - centre.x, points[:, 1] - centre.y), 2 * math.pi)
    return [cells[i] for i in np.argsort(bearings, kind="stable")]


@dataclass(frozen=True)
class AreaSpec:
    """One area row: `parent` is the index of the parent in District.areas."""

    level: AreaLevel
    code: str
    name: str
    parent: int | None
    boundary: MultiPolygon


@dataclass(frozen=True)
class District:
    areas: tuple[AreaSpec, ...]  # parents before children
    grid_areas: tuple[int, ...]  # index in `areas` of grid number g
    grid_community: tuple[str, ...]  # community name of grid g ("光明社区")
    grid_estates: tuple[tuple[str, ...], ...]  # housing estates of grid g
    grid_weights: FloatArray  # share of the street's area of grid g
    sampler: PointSampler  # uniform points inside grid g

    @property
    def grid_count(self) -> int:
        return len(self.grid_areas)


class PointSampler:
    """Uniform random points inside each of a list of polygons, vectorised.

    Each polygon is cut into triangles (constrained Delaunay); a point picks a
    triangle of its polygon with probability proportional to its area, then a
    uniform point in it whose barycentric weights stay off 0, so no point
    falls on (or, by rounding, just outside) the polygon's edge."""

    def __init__(self, polygons: Sequence[BaseGeometry]) -> None:
        corners: list[FloatArray] = []
        counts: list[int] = []
        for polygon in polygons:
            triangles = shapely.get_parts(shapely.constrained_delaunay_triangles(polygon))
            coords = shapely.get_coordinates(triangles).reshape(len(triangles), 4, 2)[:, :3, :]
            corners.append(coords)
            counts.append(len(triangles))
        tri = np.concatenate(corners)
        self._a = tri[:, 0, :]
        self._ab = tri[:, 1, :] - self._a
        self._ac = tri[:, 2, :] - self._a
        areas = 0.5 * np.abs(self._ab[:, 0] * self._ac[:, 1] - self._ab[:, 1] * self._ac[:, 0])
        self._cumulative = np.cumsum(areas)
        ends = np.cumsum(counts)
        self._first = ends - np.asarray(counts)
        self._last = ends - 1
        before = np.concatenate([[0.0], self._cumulative])[self._first]
        self._before = before
        self._total = self._cumulative[self._last] - before

    def sample(self, rng: np.random.Generator, owners: IntArray) -> tuple[FloatArray, FloatArray]:
        """One point inside polygon owners[i] for each i: (x, y) arrays."""
        n = len(owners)
        target = self._before[owners] + rng.random(n) * self._total[owners]
        index = np.searchsorted(self._cumulative, target, side="right")
        index = np.clip(index, self._first[owners], self._last[owners])
        root = np.sqrt(np.clip(rng.random(n), 1e-6, 1 - 1e-6))
        share = np.clip(rng.random(n), 1e-6, 1 - 1e-6)
        u = root * (1 - share)
        v = root * share
        x = self._a[index, 0] + u * self._ab[index, 0] + v * self._ac[index, 0]
        y = self._a[index, 1] + u * self._ab[index, 1] + v * self._ac[index, 1]
        return x, y


def _to_degrees(geometry: BaseGeometry) -> BaseGeometry:
    def convert(coords: FloatArray) -> FloatArray:
        lng, lat = to_degrees(coords[:, 0], coords[:, 1])
        return np.column_stack([lng, lat])

    return shapely.transform(geometry, convert)


def _multi(geometry: BaseGeometry) -> MultiPolygon:
    parts = [part for part in shapely.get_parts(geometry) if isinstance(part, Polygon)]
    multi = shapely.set_srid(MultiPolygon(parts), SRID)
    if not multi.is_valid or multi.is_empty:
        raise RuntimeError("the seeder built an invalid area boundary")
    result: MultiPolygon = multi
    return result


def _faces(cells: Sequence[BaseGeometry]) -> tuple[npt.NDArray[np.object_], IntArray]:
    """Node the cells' boundaries on the precision grid, polygonise them, and
    give each face to the cell it overlaps most: (faces, owner cell of each)."""
    lines = shapely.boundary(np.asarray(cells, dtype=object))
    noded = shapely.union_all(lines, grid_size=GRID_SIZE)
    faces = shapely.get_parts(shapely.polygonize(shapely.get_parts(noded)))
    tree = shapely.STRtree(cells)
    face_index, cell_index = tree.query(faces, predicate="intersects")
    overlap = shapely.area(shapely.intersection(faces[face_index], tree.geometries[cell_index]))
    owner = np.full(len(faces), -1, dtype=np.int64)
    best = np.zeros(len(faces))
    for f, c, a in zip(face_index.tolist(), cell_index.tolist(), overlap.tolist(), strict=True):
        if a > best[f]:
            owner[f], best[f] = c, a
    for f in np.flatnonzero(owner < 0).tolist():  # a sliver outside every cell
        owner[f] = int(tree.query_nearest(faces[f])[0])
    return faces, owner


def _estates(rng: np.random.Generator, count: int) -> tuple[str, ...]:
    names: list[str] = []
    while len(names) < count:
        head = ESTATE_HEADS[int(rng.integers(len(ESTATE_HEADS)))]
        middle = ESTATE_MIDDLES[int(rng.integers(len(ESTATE_MIDDLES)))]
        kind = ESTATE_KINDS[int(rng.integers(len(ESTATE_KINDS)))]
        name = head + middle + kind
        if head != middle and name not in names:
            names.append(name)
    return tuple(names)


def build_district(seed: int) -> District:
    """The demo street for `seed`: the same seed always gives the same district."""
    rng = np.random.default_rng([seed, 0x6D61])

    street = street_outline(rng)
    communities = split(street, COMMUNITIES, rng)
    branches: list[tuple[int, BaseGeometry]] = []  # (community number, shape)
    for c, community in enumerate(communities):
        branches += [(c, shape) for shape in split(community, BRANCHES_PER_COMMUNITY, rng)]
    extra = GRIDS - GRIDS_PER_BRANCH * len(branches)
    largest = set(
        np.argsort([-shape.area for _, shape in branches], kind="stable")[:extra].tolist()
    )
    grid_cells: list[BaseGeometry] = []
    grid_branch: list[int] = []
    for b, (_, shape) in enumerate(branches):
        count = GRIDS_PER_BRANCH + (1 if b in largest else 0)
        for cell in split(shape, count, rng):
            grid_cells.append(_to_degrees(cell))
            grid_branch.append(b)

    faces, owner = _faces(grid_cells)
    branch_of = np.asarray(grid_branch)[owner]
    community_of = np.asarray([c for c, _ in branches])[branch_of]

    def union(mask: npt.NDArray[np.bool_]) -> MultiPolygon:
        return _multi(shapely.union_all(faces[mask], grid_size=GRID_SIZE))

    areas: list[AreaSpec] = [
        AreaSpec(AreaLevel.street, STREET_CODE, STREET_NAME, None, union(owner >= 0))
    ]
    grid_areas: list[int] = []
    grid_community: list[str] = []
    grid_polygons: list[MultiPolygon] = []
    b = 0
    g = 0
    for c in range(COMMUNITIES):
        community_name = f"{COMMUNITY_NAMES[c]}社区"
        c_code = f"{STREET_CODE}-C{c + 1}"
        areas.append(
            AreaSpec(AreaLevel.community, c_code, community_name, 0, union(community_of == c))
        )
        c_index = len(areas) - 1
        for j in range(BRANCHES_PER_COMMUNITY):
            b_code = f"{c_code}-B{j + 1}"
            b_name = f"{community_name}第{j + 1}网格党支部"
            areas.append(
                AreaSpec(AreaLevel.grid_branch, b_code, b_name, c_index, union(branch_of == b))
            )
            b_index = len(areas) - 1
            k = 0
            while g < len(grid_branch) and grid_branch[g] == b:
                k += 1
                shape = union(owner == g)
                areas.append(
                    AreaSpec(
                        AreaLevel.grid,
                        f"{b_code}-G{k}",
                        f"{community_name}第{j + 1}-{k}网格",
                        b_index,
                        shape,
                    )
                )
                grid_areas.append(len(areas) - 1)
                grid_community.append(community_name)
                grid_polygons.append(shape)
                g += 1
            b += 1

    grid_area = np.asarray([p.area for p in grid_polygons])
    if abs(grid_area.sum() - areas[0].boundary.area) > 1e-9 * areas[0].boundary.area:
        raise RuntimeError("the seeder's grids do not tile the street")
    return District(
        areas=tuple(areas),
        grid_areas=tuple(grid_areas),
        grid_community=tuple(grid_community),
        grid_estates=tuple(_estates(rng, int(rng.integers(3, 7))) for _ in grid_polygons),
        grid_weights=grid_area / grid_area.sum(),
        sampler=PointSampler(grid_polygons),
    )
