//! Writes GFS-like GRIB2 files (simple packing, template 5.0) and their `.idx`, so that a
//! directory wx-data's `LocalGfsSource` reads can be produced from arrays without Python (demo
//! data, tests of the steps). The committed fixtures are written by ecCodes instead
//! (`testdata/gen/make_gfs_fixtures.py`); this writer is checked by decoding its output.
//!
//! Messages carry NCEP identification (centre 7), template 3.0 (regular lat/lon, scanning
//! north→south when the latitudes descend), 4.0, 5.0, a bitmap when values are NaN, and
//! `z` is written as `HGT = z / g`, exactly what the reader expects from NOAA's files.

use super::catalog::MessageRequest;
use super::grib::{GribError, Parameter, Surface};
use super::layout::GfsLayout;
use chrono::{DateTime, Datelike, Timelike, Utc};
use ndarray::ArrayView3;
use std::path::Path;
use wx_model::{Level, Variable};

/// One variable of a cycle for [`write_local_cycle`]: a surface field (`levels` empty, one
/// slice) or one slice per pressure level, on a regular lat/lon grid. wx-data's `Field`
/// converts into it (`CycleField::from(&field)`).
#[derive(Debug, Clone)]
pub struct CycleField<'a> {
    /// The variable.
    pub variable: Variable,
    /// Pressure levels in hPa, in the order of the first axis; empty for a surface field.
    pub levels: &'a [Level],
    /// Latitudes of the rows: a regular axis, descending or ascending (degrees).
    pub lats: &'a [f64],
    /// Longitudes of the columns: a regular ascending axis (degrees).
    pub lons: &'a [f64],
    /// Values `[level, lat, lon]` (`z` in m² s⁻²); NaN is written as missing.
    pub data: ArrayView3<'a, f32>,
}

/// One 2-D field to encode.
#[derive(Debug, Clone)]
pub struct GribFieldSpec<'a> {
    /// Parameter.
    pub parameter: Parameter,
    /// Level (isobaric hPa, height above ground in whole metres, or mean sea level).
    pub surface: Surface,
    /// Reference (cycle) time.
    pub reference_time: DateTime<Utc>,
    /// Forecast hours after the reference time.
    pub forecast_hours: u32,
    /// Latitudes of the rows: a regular axis, descending or ascending (degrees).
    pub lats: &'a [f64],
    /// Longitudes of the columns: a regular ascending axis (degrees).
    pub lons: &'a [f64],
    /// Values row by row, `values[j * lons.len() + i]`; NaN is written as missing (bitmap).
    pub values: &'a [f32],
    /// Decimal scale factor D: values are packed to a precision of 10^-D (coarser if 24 bits
    /// do not span the range).
    pub decimal_scale: i16,
}

fn bad<T>(reason: impl Into<String>) -> Result<T, GribError> {
    Err(GribError {
        reason: reason.into(),
    })
}

/// GRIB2 sign-and-magnitude encoding of a 32-bit value.
fn sm32(v: i64) -> Result<u32, GribError> {
    let m = v.unsigned_abs();
    if m > 0x7fff_ffff {
        return bad(format!("{v} does not fit a GRIB2 signed 32-bit value"));
    }
    Ok(if v < 0 {
        m as u32 | 0x8000_0000
    } else {
        m as u32
    })
}

fn sm16(v: i16) -> u16 {
    let m = v.unsigned_abs();
    if v < 0 { m | 0x8000 } else { m }
}

fn micro(degrees: f64) -> Result<i64, GribError> {
    let v = (degrees * 1e6).round();
    if !v.is_finite() || v.abs() > 1e12 {
        return bad(format!("coordinate {degrees} is not usable"));
    }
    Ok(v as i64)
}

/// The regular step of an axis in micro-degrees (checked to be regular).
fn axis_step(axis: &[f64], what: &str) -> Result<i64, GribError> {
    if axis.is_empty() {
        return bad(format!("empty {what} axis"));
    }
    if axis.len() == 1 {
        return Ok(0);
    }
    let step = micro(axis[1])? - micro(axis[0])?;
    for (k, pair) in axis.windows(2).enumerate() {
        if micro(pair[1])? - micro(pair[0])? != step || step == 0 {
            return bad(format!("{what} axis is not regular at index {}", k + 1));
        }
    }
    Ok(step)
}

/// Encodes one field as a single-field GRIB2 message.
pub fn encode_simple(spec: &GribFieldSpec<'_>) -> Result<Vec<u8>, GribError> {
    let (ni, nj) = (spec.lons.len(), spec.lats.len());
    if ni * nj != spec.values.len() {
        return bad(format!(
            "{} values for a {nj} x {ni} grid",
            spec.values.len()
        ));
    }
    let dlat = axis_step(spec.lats, "latitude")?;
    let dlon = axis_step(spec.lons, "longitude")?;
    if dlon < 0 {
        return bad("longitudes must ascend");
    }
    let scanning: u8 = if dlat > 0 { 0x40 } else { 0x00 };

    // simple packing: Y = V·10^D, X = round((Y − R) / 2^E)
    let d = spec.decimal_scale;
    let ten_d = 10f64.powi(i32::from(d));
    let present: Vec<f64> = spec
        .values
        .iter()
        .filter(|v| !v.is_nan())
        .map(|v| f64::from(*v) * ten_d)
        .collect();
    if present.iter().any(|y| !y.is_finite()) {
        return bad("values must be finite or NaN");
    }
    let (min, max) = present
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), y| {
            (a.min(*y), b.max(*y))
        });
    let mut reference = if present.is_empty() {
        0.0f32
    } else {
        min as f32
    };
    if f64::from(reference) > min {
        reference = f32::from_bits(if reference > 0.0 {
            reference.to_bits() - 1
        } else if reference < 0.0 {
            reference.to_bits() + 1
        } else {
            (-f32::MIN_POSITIVE).to_bits()
        });
    }
    let range = if present.is_empty() {
        0.0
    } else {
        max - f64::from(reference)
    };
    let mut e: i16 = 0;
    while range / 2f64.powi(i32::from(e)) >= f64::from(1u32 << 24) {
        e += 1;
    }
    let scale = 2f64.powi(i32::from(e));
    let ints: Vec<u32> = present
        .iter()
        .map(|y| ((y - f64::from(reference)) / scale).round() as u32)
        .collect();
    let max_int = ints.iter().copied().max().unwrap_or(0);
    let nbits = (32 - max_int.leading_zeros()) as u8;
    let mut packed = vec![0u8; (ints.len() * nbits as usize).div_ceil(8)];
    if nbits > 0 {
        let mut bit = 0usize;
        for x in &ints {
            for b in (0..nbits).rev() {
                if (x >> b) & 1 == 1 {
                    packed[bit / 8] |= 0x80 >> (bit % 8);
                }
                bit += 1;
            }
        }
    }

    let mut body = Vec::new();
    // section 1: identification
    let t = spec.reference_time;
    let mut s1 = vec![0u8; 21];
    s1[..4].copy_from_slice(&21u32.to_be_bytes());
    s1[4] = 1;
    s1[5..7].copy_from_slice(&7u16.to_be_bytes()); // NCEP
    s1[7..9].copy_from_slice(&0u16.to_be_bytes());
    s1[9] = 2; // master tables version
    s1[10] = 1; // local tables version
    s1[11] = 1; // reference time = start of forecast
    s1[12..14].copy_from_slice(&(t.year() as u16).to_be_bytes());
    s1[14] = t.month() as u8;
    s1[15] = t.day() as u8;
    s1[16] = t.hour() as u8;
    s1[17] = t.minute() as u8;
    s1[18] = t.second() as u8;
    s1[19] = 0; // operational
    s1[20] = if spec.forecast_hours == 0 { 0 } else { 1 }; // analysis / forecast
    body.extend_from_slice(&s1);
    // section 3: grid definition, template 3.0
    let mut s3 = vec![0u8; 72];
    s3[..4].copy_from_slice(&72u32.to_be_bytes());
    s3[4] = 3;
    s3[6..10].copy_from_slice(&((ni * nj) as u32).to_be_bytes());
    s3[14] = 6; // spherical earth, radius 6371229 m
    s3[30..34].copy_from_slice(&(ni as u32).to_be_bytes());
    s3[34..38].copy_from_slice(&(nj as u32).to_be_bytes());
    s3[42..46].copy_from_slice(&u32::MAX.to_be_bytes()); // subdivisions: missing (micro-degrees)
    s3[46..50].copy_from_slice(&sm32(micro(spec.lats[0])?)?.to_be_bytes());
    s3[50..54].copy_from_slice(&sm32(micro(spec.lons[0])?)?.to_be_bytes());
    s3[54] = 0x30; // increments given
    s3[55..59].copy_from_slice(&sm32(micro(spec.lats[nj - 1])?)?.to_be_bytes());
    s3[59..63].copy_from_slice(&sm32(micro(spec.lons[ni - 1])?)?.to_be_bytes());
    s3[63..67].copy_from_slice(&(dlon.unsigned_abs() as u32).to_be_bytes());
    s3[67..71].copy_from_slice(&(dlat.unsigned_abs() as u32).to_be_bytes());
    s3[71] = scanning;
    body.extend_from_slice(&s3);
    // section 4: product definition, template 4.0
    let mut s4 = vec![0u8; 34];
    s4[..4].copy_from_slice(&34u32.to_be_bytes());
    s4[4] = 4;
    s4[9] = spec.parameter.category;
    s4[10] = spec.parameter.number;
    s4[11] = if spec.forecast_hours == 0 { 0 } else { 2 };
    s4[13] = 96; // GFS
    s4[17] = 1; // hours
    s4[18..22].copy_from_slice(&spec.forecast_hours.to_be_bytes());
    let (surface_type, surface_scale, surface_value) = match spec.surface {
        Surface::Isobaric(hpa) => (100u8, 0u8, sm32((hpa * 100.0).round() as i64)?),
        Surface::HeightAboveGround(m) if m.fract() == 0.0 => (103, 0, sm32(m as i64)?),
        Surface::MeanSeaLevel => (101, 255, u32::MAX),
        other => return bad(format!("cannot write surface {other}")),
    };
    s4[22] = surface_type;
    s4[23] = surface_scale;
    s4[24..28].copy_from_slice(&surface_value.to_be_bytes());
    s4[28] = 255;
    s4[29] = 255;
    s4[30..34].copy_from_slice(&u32::MAX.to_be_bytes());
    body.extend_from_slice(&s4);
    // section 5: data representation, template 5.0
    let mut s5 = vec![0u8; 21];
    s5[..4].copy_from_slice(&21u32.to_be_bytes());
    s5[4] = 5;
    s5[5..9].copy_from_slice(&(ints.len() as u32).to_be_bytes());
    s5[9..11].copy_from_slice(&0u16.to_be_bytes());
    s5[11..15].copy_from_slice(&reference.to_be_bytes());
    s5[15..17].copy_from_slice(&sm16(e).to_be_bytes());
    s5[17..19].copy_from_slice(&sm16(d).to_be_bytes());
    s5[19] = nbits;
    s5[20] = 0; // floating point
    body.extend_from_slice(&s5);
    // section 6: bitmap
    if ints.len() == spec.values.len() {
        body.extend_from_slice(&6u32.to_be_bytes());
        body.extend_from_slice(&[6, 255]);
    } else {
        let mut bits = vec![0u8; spec.values.len().div_ceil(8)];
        for (k, v) in spec.values.iter().enumerate() {
            if !v.is_nan() {
                bits[k / 8] |= 0x80 >> (k % 8);
            }
        }
        body.extend_from_slice(&((6 + bits.len()) as u32).to_be_bytes());
        body.extend_from_slice(&[6, 0]);
        body.extend_from_slice(&bits);
    }
    // section 7: data
    body.extend_from_slice(&((5 + packed.len()) as u32).to_be_bytes());
    body.push(7);
    body.extend_from_slice(&packed);

    let total = 16 + body.len() + 4;
    let mut message = Vec::with_capacity(total);
    message.extend_from_slice(b"GRIB");
    message.extend_from_slice(&[0, 0, spec.parameter.discipline, 2]);
    message.extend_from_slice(&(total as u64).to_be_bytes());
    message.extend_from_slice(&body);
    message.extend_from_slice(b"7777");
    Ok(message)
}

/// Default decimal scale per parameter (about 1e-3 of typical variability).
fn default_decimal_scale(parameter: Parameter) -> i16 {
    match parameter {
        Parameter::PRMSL => 1,
        Parameter::SPFH => 9,
        Parameter::HGT => 2,
        _ => 3,
    }
}

/// Writes `fields` (surface or multi-level, `z` in m² s⁻²) as the GRIB2 file and `.idx` of
/// cycle `init`, lead `lead_hours` under `dir` in `layout`, one message per level, in the
/// order given. Returns the path of the GRIB2 file. A field whose data shape is not
/// `[levels.len().max(1), lats.len(), lons.len()]` is an error.
pub fn write_local_cycle(
    dir: &Path,
    layout: &GfsLayout,
    init: DateTime<Utc>,
    lead_hours: u32,
    fields: &[CycleField<'_>],
) -> Result<std::path::PathBuf, GribError> {
    let mut file = Vec::new();
    let mut idx = String::new();
    let forecast = if lead_hours == 0 {
        "anl".to_owned()
    } else {
        format!("{lead_hours} hour fcst")
    };
    let mut n = 0;
    for field in fields {
        let expected = [
            field.levels.len().max(1),
            field.lats.len(),
            field.lons.len(),
        ];
        if field.data.shape() != expected {
            return bad(format!(
                "{}: data shape {:?} does not match coordinates {expected:?}",
                field.variable,
                field.data.shape()
            ));
        }
        let levels: Vec<Option<u16>> = if field.levels.is_empty() {
            vec![None]
        } else {
            field.levels.iter().map(|l| Some(*l)).collect()
        };
        for (k, level) in levels.into_iter().enumerate() {
            let req = MessageRequest::new(field.variable, level).ok_or_else(|| GribError {
                reason: format!("{} has no GFS message at level {level:?}", field.variable),
            })?;
            let slice = field.data.index_axis(ndarray::Axis(0), k);
            let values: Vec<f32> = slice
                .iter()
                .map(|v| (f64::from(*v) / req.scale) as f32)
                .collect();
            let message = encode_simple(&GribFieldSpec {
                parameter: req.parameter,
                surface: req.surface,
                reference_time: init,
                forecast_hours: lead_hours,
                lats: field.lats,
                lons: field.lons,
                values: &values,
                decimal_scale: default_decimal_scale(req.parameter),
            })?;
            n += 1;
            idx.push_str(&format!(
                "{n}:{}:d={}:{}:{}:{forecast}:\n",
                file.len(),
                init.format("%Y%m%d%H"),
                req.idx_variable(),
                req.idx_level()
            ));
            file.extend_from_slice(&message);
        }
    }
    let io = |e: std::io::Error| GribError {
        reason: format!("writing under {}: {e}", dir.display()),
    };
    let path = dir.join(layout.key(init, lead_hours));
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(io)?;
    }
    std::fs::write(&path, &file).map_err(io)?;
    std::fs::write(dir.join(layout.idx_key(init, lead_hours)), idx).map_err(io)?;
    Ok(path)
}
