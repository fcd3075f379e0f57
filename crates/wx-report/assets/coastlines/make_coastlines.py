#!/usr/bin/env python3
"""Derives coastlines-110m.txt from Natural Earth 1:110m land, as packaged by the npm package
world-atlas (TopoJSON, land-110m.json).

    python3 make_coastlines.py            # fetches world-atlas@2.0.2 with `npm pack`
    python3 make_coastlines.py land-110m.json

Output: one polyline per line, "lon,lat lon,lat ..." in degrees (2 decimals), longitudes in
[-180, 180]. The arcs of the land polygons are decoded (TopoJSON delta + quantisation) and cut
where a polygon edge is not a coast: along the antimeridian (the cut through Chukotka and
Antarctica) and along the bottom of Antarctica. Standard library only.
"""

import json
import os
import subprocess
import sys
import tarfile
import tempfile

VERSION = "2.0.2"
HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "coastlines-110m.txt")


def fetch():
    tmp = tempfile.mkdtemp()
    subprocess.run(["npm", "pack", f"world-atlas@{VERSION}"], cwd=tmp, check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    with tarfile.open(os.path.join(tmp, f"world-atlas-{VERSION}.tgz")) as tar:
        return json.load(tar.extractfile("package/land-110m.json"))


def decode_arcs(topology):
    (sx, sy), (tx, ty) = topology["transform"]["scale"], topology["transform"]["translate"]
    arcs = []
    for arc in topology["arcs"]:
        x = y = 0
        points = []
        for dx, dy in arc:
            x += dx
            y += dy
            points.append((x * sx + tx, y * sy + ty))
        arcs.append(points)
    return arcs


def artificial(a, b, south):
    """An edge that is no coast: on the antimeridian, or the bottom edge of Antarctica."""
    on_antimeridian = abs(a[0]) > 179.99 and abs(b[0]) > 179.99
    on_bottom = a[1] < south + 0.01 and b[1] < south + 0.01
    return on_antimeridian or on_bottom


def coastlines(topology):
    arcs = decode_arcs(topology)
    south = min(p[1] for arc in arcs for p in arc)
    lines = []
    for arc in arcs:
        current = [arc[0]]
        for a, b in zip(arc, arc[1:]):
            if artificial(a, b, south):
                if len(current) > 1:
                    lines.append(current)
                current = [b]
            else:
                current.append(b)
        if len(current) > 1:
            lines.append(current)
    return lines


def main():
    if len(sys.argv) > 1:
        with open(sys.argv[1]) as f:
            topology = json.load(f)
    else:
        topology = fetch()
    lines = coastlines(topology)
    with open(OUT, "w") as f:
        f.write("# Coastlines from Natural Earth 1:110m land (public domain), via the npm package\n")
        f.write(f"# world-atlas {VERSION} (ISC); made by make_coastlines.py. One polyline per line:\n")
        f.write("# lon,lat pairs in degrees. See NOTICE.txt.\n")
        for line in lines:
            f.write(" ".join(f"{lon:.2f},{lat:.2f}" for lon, lat in line) + "\n")
    print(f"{OUT}: {len(lines)} polylines, {sum(len(l) for l in lines)} points")


if __name__ == "__main__":
    main()
