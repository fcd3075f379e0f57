//! Coastlines for the error maps: Natural Earth 1:110m (public domain), embedded as polylines
//! (`assets/coastlines/`, with the script that derived them and the attribution).

use std::sync::OnceLock;

/// A polyline of `(lon, lat)` points, degrees.
pub(crate) type Polyline = Vec<(f64, f64)>;

static TEXT: &str = include_str!("../assets/coastlines/coastlines-110m.txt");

/// The embedded coastlines, longitudes in [-180, 180].
pub(crate) fn coastlines() -> &'static [Polyline] {
    static PARSED: OnceLock<Vec<Polyline>> = OnceLock::new();
    PARSED.get_or_init(|| {
        TEXT.lines()
            .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
            .map(|line| {
                line.split_whitespace()
                    .filter_map(|pair| {
                        let (lon, lat) = pair.split_once(',')?;
                        Some((lon.parse().ok()?, lat.parse().ok()?))
                    })
                    .collect()
            })
            .collect()
    })
}

/// The part of segment `a`–`b` with longitude in `[lo, hi]`, if any.
fn clip(a: (f64, f64), b: (f64, f64), lo: f64, hi: f64) -> Option<((f64, f64), (f64, f64))> {
    let at = |lon: f64| {
        let t = (lon - a.0) / (b.0 - a.0);
        (lon, a.1 + t * (b.1 - a.1))
    };
    let inside = |p: (f64, f64)| p.0 >= lo && p.0 <= hi;
    let (mut p, mut q) = (a, b);
    if !inside(p) && !inside(q) {
        // both outside: visible only when the segment spans the whole range
        let (left, right) = if a.0 <= b.0 { (a, b) } else { (b, a) };
        if left.0 < lo && right.0 > hi {
            return Some(if a.0 <= b.0 {
                (at(lo), at(hi))
            } else {
                (at(hi), at(lo))
            });
        }
        return None;
    }
    if !inside(p) {
        p = at(if p.0 < lo { lo } else { hi });
    }
    if !inside(q) {
        q = at(if q.0 < lo { lo } else { hi });
    }
    Some((p, q))
}

/// The coastlines inside the longitude range `[lon0, lon1]` (any of −180…180, 0…360 or a
/// part): each polyline is shifted by −360°, 0 and +360° and cut at the range's edges.
pub(crate) fn within(lon0: f64, lon1: f64) -> Vec<Polyline> {
    let mut out = Vec::new();
    for line in coastlines() {
        for shift in [-360.0, 0.0, 360.0] {
            let mut current: Polyline = Vec::new();
            for pair in line.windows(2) {
                let (a, b) = (
                    (pair[0].0 + shift, pair[0].1),
                    (pair[1].0 + shift, pair[1].1),
                );
                // a step across the antimeridian (179.9 → −179.9) is not a coast
                let segment = if (b.0 - a.0).abs() > 180.0 {
                    None
                } else {
                    clip(a, b, lon0, lon1)
                };
                match segment {
                    Some((p, q)) => {
                        if current.last() != Some(&p) {
                            if current.len() > 1 {
                                out.push(std::mem::take(&mut current));
                            }
                            current = vec![p];
                        }
                        current.push(q);
                    }
                    None => {
                        if current.len() > 1 {
                            out.push(std::mem::take(&mut current));
                        }
                        current.clear();
                    }
                }
            }
            if current.len() > 1 {
                out.push(current);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_embedded_coastlines_are_the_world() {
        let lines = coastlines();
        assert!(lines.len() > 100, "{}", lines.len());
        let points: Vec<&(f64, f64)> = lines.iter().flatten().collect();
        assert!(points.len() > 5000);
        assert!(
            points
                .iter()
                .all(|p| p.0.abs() <= 180.0 && p.1.abs() <= 90.0)
        );
        // a point near Cape Town, one near Sydney, one in Tierra del Fuego
        for (lon, lat) in [(18.4, -34.3), (151.2, -33.9), (-67.5, -55.5)] {
            assert!(
                points
                    .iter()
                    .any(|p| (p.0 - lon).abs() < 1.5 && (p.1 - lat).abs() < 1.5),
                "no coast near {lon},{lat}"
            );
        }
    }

    #[test]
    fn coastlines_are_shifted_and_cut_to_the_map() {
        for (lo, hi) in [(-180.0, 180.0), (0.0, 360.0), (-2.5, 357.5), (100.0, 160.0)] {
            let lines = within(lo, hi);
            assert!(!lines.is_empty());
            for p in lines.iter().flatten() {
                assert!(
                    p.0 >= lo - 1e-9 && p.0 <= hi + 1e-9,
                    "{p:?} outside {lo}..{hi}"
                );
            }
        }
        // the same coast, whichever longitude convention the grid uses
        let count = |lo: f64, hi: f64| within(lo, hi).iter().map(Vec::len).sum::<usize>();
        let (a, b) = (count(-180.0, 180.0), count(0.0, 360.0));
        assert!(a.abs_diff(b) < a / 50, "{a} vs {b}");
        assert_eq!(
            clip((-10.0, 0.0), (10.0, 10.0), 0.0, 20.0),
            Some(((0.0, 5.0), (10.0, 10.0)))
        );
        assert_eq!(clip((30.0, 0.0), (40.0, 0.0), 0.0, 20.0), None);
    }
}
