//! GRIB2 messages: section structure, multi-field splitting, identification, grid and values.
//!
//! The section walk, the identification (section 0/1/4), the grid (template 3.0) and the bitmap
//! (section 6, including indicator 254 "bitmap defined earlier in this message") are parsed
//! here with checked arithmetic. Only the unpacking of section 7 with the template of section 5
//! is delegated to `gribberish` (templates 5.0, 5.2, 5.3, 5.40, 5.41, 5.42), on exactly the bytes
//! of one field, and its output count is checked against section 5 before the bitmap is applied
//! here. gribberish on its own returns only the first field of a message and pads a short
//! unpack with zeros; neither can happen through this module: [`decode_message`] returns every
//! field of a message, and any inconsistency is a [`GribError`].

use bitvec::order::Msb0;
use bitvec::view::BitView;
use chrono::{DateTime, NaiveDate, TimeDelta, Utc};
use std::fmt;

/// Largest grid decoded (points per field); bounds the memory one message can claim.
pub const MAX_GRID_POINTS: usize = 16 * 1024 * 1024;

/// A GRIB2 message or field that cannot be decoded, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{reason}")]
pub struct GribError {
    /// What is wrong, in words that name the section and the value found.
    pub reason: String,
}

fn err<T>(reason: impl Into<String>) -> Result<T, GribError> {
    Err(GribError {
        reason: reason.into(),
    })
}

/// A parameter, by its GRIB2 code (discipline, parameter category, parameter number).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Parameter {
    /// Discipline (section 0), 0 = meteorological products.
    pub discipline: u8,
    /// Parameter category (section 4).
    pub category: u8,
    /// Parameter number (section 4).
    pub number: u8,
}

impl Parameter {
    /// Temperature, K.
    pub const TMP: Parameter = Parameter::meteo(0, 0);
    /// Specific humidity, kg kg-1.
    pub const SPFH: Parameter = Parameter::meteo(1, 0);
    /// u wind component, m s-1.
    pub const UGRD: Parameter = Parameter::meteo(2, 2);
    /// v wind component, m s-1.
    pub const VGRD: Parameter = Parameter::meteo(2, 3);
    /// Pressure reduced to mean sea level, Pa.
    pub const PRMSL: Parameter = Parameter::meteo(3, 1);
    /// Geopotential height, gpm.
    pub const HGT: Parameter = Parameter::meteo(3, 5);

    const fn meteo(category: u8, number: u8) -> Parameter {
        Parameter {
            discipline: 0,
            category,
            number,
        }
    }

    /// The NCEP/wgrib2 abbreviation used in `.idx` files, for the parameters wx reads.
    pub fn ncep_name(&self) -> Option<&'static str> {
        [
            (Parameter::TMP, "TMP"),
            (Parameter::SPFH, "SPFH"),
            (Parameter::UGRD, "UGRD"),
            (Parameter::VGRD, "VGRD"),
            (Parameter::PRMSL, "PRMSL"),
            (Parameter::HGT, "HGT"),
        ]
        .iter()
        .find(|(p, _)| p == self)
        .map(|(_, n)| *n)
    }
}

impl fmt::Display for Parameter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.ncep_name() {
            Some(name) => f.write_str(name),
            None => write!(
                f,
                "parameter {}/{}/{}",
                self.discipline, self.category, self.number
            ),
        }
    }
}

/// The first fixed surface of a field (code table 4.5), with its value in natural units.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Surface {
    /// Type 100, isobaric surface; the value in hPa.
    Isobaric(f64),
    /// Type 101, mean sea level.
    MeanSeaLevel,
    /// Type 103, specified height above ground; the value in m.
    HeightAboveGround(f64),
    /// Any other type (code, value as scaled in the message).
    Other(u8, Option<f64>),
}

impl fmt::Display for Surface {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Surface::Isobaric(hpa) => write!(f, "{hpa} mb"),
            Surface::MeanSeaLevel => f.write_str("mean sea level"),
            Surface::HeightAboveGround(m) => write!(f, "{m} m above ground"),
            Surface::Other(t, Some(v)) => write!(f, "surface type {t} value {v}"),
            Surface::Other(t, None) => write!(f, "surface type {t}"),
        }
    }
}

/// What a field is: parameter, level, product template, reference and forecast time.
#[derive(Debug, Clone, PartialEq)]
pub struct FieldIdentity {
    /// The parameter.
    pub parameter: Parameter,
    /// The first fixed surface.
    pub surface: Surface,
    /// Product definition template number (0 = analysis or forecast at a point in time).
    pub product_template: u16,
    /// Reference time (section 1), normally the cycle's initialisation time.
    pub reference_time: DateTime<Utc>,
    /// Forecast time after the reference time, in minutes.
    pub forecast_minutes: i64,
}

impl FieldIdentity {
    /// `reference_time + forecast time`.
    pub fn valid_time(&self) -> Option<DateTime<Utc>> {
        self.reference_time
            .checked_add_signed(TimeDelta::try_minutes(self.forecast_minutes)?)
    }
}

impl fmt::Display for FieldIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{} (template 4.{}, reference {}, forecast {} min)",
            self.parameter,
            self.surface,
            self.product_template,
            self.reference_time.format("%Y-%m-%dT%H:%MZ"),
            self.forecast_minutes
        )
    }
}

/// A regular latitude/longitude grid (template 3.0) in the message's scanning order.
#[derive(Debug, Clone, PartialEq)]
pub struct LatLonGrid {
    /// Points along a parallel.
    pub ni: usize,
    /// Points along a meridian.
    pub nj: usize,
    /// Latitudes of the rows, in the order the values are stored (degrees).
    pub lats: Vec<f64>,
    /// Longitudes of the columns, in the order the values are stored (degrees, in [0, 360)
    /// unless the message's own longitudes are negative).
    pub lons: Vec<f64>,
    /// Scanning mode flags (flag table 3.4) as found.
    pub scanning_mode: u8,
}

/// One decoded field.
#[derive(Debug, Clone, PartialEq)]
pub struct DecodedField {
    /// What the field is.
    pub identity: FieldIdentity,
    /// Its grid.
    pub grid: LatLonGrid,
    /// Values row by row (`values[j * ni + i]` at `grid.lats[j]`, `grid.lons[i]`); NaN where
    /// the bitmap marks a point missing.
    pub values: Vec<f32>,
    /// Data representation template number (5.x).
    pub data_template: u16,
}

/// The sections of one field of a message (after resolving repeated and inherited sections).
#[derive(Debug, Clone, Copy)]
pub struct FieldSections<'a> {
    /// Discipline from section 0.
    pub discipline: u8,
    /// Section 1 (identification), whole.
    pub identification: &'a [u8],
    /// Section 3 (grid definition), whole.
    pub grid: &'a [u8],
    /// Section 4 (product definition), whole.
    pub product: &'a [u8],
    /// Section 5 (data representation), whole.
    pub data_representation: &'a [u8],
    /// Section 6 (bitmap) that applies to this field: for indicator 254 the earlier bitmap
    /// section of the same message; `None` when no bitmap applies (indicator 255).
    pub bitmap: Option<&'a [u8]>,
    /// Section 7 (data), whole.
    pub data: &'a [u8],
}

fn be_u16(b: &[u8], at: usize) -> Option<u16> {
    b.get(at..at + 2).map(|s| u16::from_be_bytes([s[0], s[1]]))
}

fn be_u32(b: &[u8], at: usize) -> Option<u32> {
    b.get(at..at + 4)
        .map(|s| u32::from_be_bytes([s[0], s[1], s[2], s[3]]))
}

fn be_u64(b: &[u8], at: usize) -> Option<u64> {
    let s = b.get(at..at + 8)?;
    let mut a = [0u8; 8];
    a.copy_from_slice(s);
    Some(u64::from_be_bytes(a))
}

/// A GRIB2 signed 32-bit value: sign bit then magnitude.
fn sign_magnitude(v: u32) -> i64 {
    let magnitude = i64::from(v & 0x7fff_ffff);
    if v & 0x8000_0000 != 0 {
        -magnitude
    } else {
        magnitude
    }
}

/// The byte ranges of the GRIB messages of a file (consecutive messages, nothing between them).
pub fn split_messages(bytes: &[u8]) -> Result<Vec<&[u8]>, GribError> {
    let mut out = Vec::new();
    let mut offset = 0usize;
    while offset < bytes.len() {
        let rest = &bytes[offset..];
        if rest.len() < 16 || &rest[..4] != b"GRIB" {
            return err(format!("no GRIB message starts at byte {offset}"));
        }
        let total = message_length(rest)?;
        if total > rest.len() {
            return err(format!(
                "message at byte {offset} declares {total} bytes but only {} remain",
                rest.len()
            ));
        }
        out.push(&rest[..total]);
        offset += total;
    }
    Ok(out)
}

/// The total length section 0 declares (GRIB2 only).
fn message_length(bytes: &[u8]) -> Result<usize, GribError> {
    if bytes.len() < 16 || &bytes[..4] != b"GRIB" {
        return err("not a GRIB message (no `GRIB` marker)");
    }
    if bytes[7] != 2 {
        return err(format!(
            "GRIB edition {} is not supported (GRIB2 only)",
            bytes[7]
        ));
    }
    let total = be_u64(bytes, 8).unwrap_or(0);
    usize::try_from(total)
        .ok()
        .filter(|t| *t >= 16 + 4)
        .ok_or_else(|| GribError {
            reason: format!("section 0 declares an impossible message length {total}"),
        })
}

/// Walks the sections of exactly one GRIB2 message and returns the sections of each field.
///
/// Follows the GRIB2 rules for repetition: after section 7 a message may continue with section
/// 2, 3 or 4; sections 1–3 stay in force until replaced; a bitmap indicator 254 re-uses the
/// most recent bitmap of the same message. The message must be exactly `bytes` (the length in
/// section 0 equals `bytes.len()`) and end with `7777`.
pub fn split_fields(bytes: &[u8]) -> Result<Vec<FieldSections<'_>>, GribError> {
    let total = message_length(bytes)?;
    if total != bytes.len() {
        return err(format!(
            "section 0 declares {total} bytes but the message has {}",
            bytes.len()
        ));
    }
    if &bytes[total - 4..] != b"7777" {
        return err("the message does not end with section 8 (`7777`)");
    }
    let discipline = bytes[6];
    let end = total - 4;
    let mut offset = 16usize;
    let mut last_number = 0u8;
    let mut identification: Option<&[u8]> = None;
    let mut grid: Option<&[u8]> = None;
    let mut product: Option<&[u8]> = None;
    let mut representation: Option<&[u8]> = None;
    let mut bitmap: Option<Option<&[u8]>> = None;
    let mut last_bitmap: Option<&[u8]> = None;
    let mut fields = Vec::new();
    while offset < end {
        let (Some(len), Some(&number)) = (be_u32(bytes, offset), bytes.get(offset + 4)) else {
            return err(format!("truncated section header at byte {offset}"));
        };
        let len = len as usize;
        let min_len = match number {
            1 => 21,
            3 => 14,
            4 => 9,
            5 => 11,
            6 => 6,
            _ => 5,
        };
        if len < min_len || len > end - offset {
            return err(format!(
                "section {number} at byte {offset} declares length {len}, outside {min_len}..={}",
                end - offset
            ));
        }
        let section = &bytes[offset..offset + len];
        let in_order = match number {
            1 => last_number == 0,
            2 => last_number == 1 || last_number == 7,
            3 => matches!(last_number, 1 | 2 | 7),
            4 => matches!(last_number, 3 | 7),
            5 => last_number == 4,
            6 => last_number == 5,
            7 => last_number == 6,
            _ => false,
        };
        if !in_order {
            return err(format!(
                "section {number} at byte {offset} follows section {last_number}; \
                 not a valid GRIB2 section sequence"
            ));
        }
        match number {
            1 => identification = Some(section),
            2 => {}
            3 => grid = Some(section),
            4 => product = Some(section),
            5 => representation = Some(section),
            6 => {
                bitmap = Some(match section[5] {
                    255 => None,
                    0 => {
                        last_bitmap = Some(section);
                        Some(section)
                    }
                    254 => match last_bitmap {
                        Some(previous) => Some(previous),
                        None => {
                            return err(format!(
                                "field {} uses bitmap indicator 254 (bitmap defined earlier) \
                                 but no earlier bitmap exists in this message",
                                fields.len() + 1
                            ));
                        }
                    },
                    other => {
                        return err(format!(
                            "field {} uses predefined bitmap {other}, which is not supported",
                            fields.len() + 1
                        ));
                    }
                })
            }
            7 => {
                let (Some(id), Some(gd), Some(pd), Some(rep), Some(bm)) =
                    (identification, grid, product, representation, bitmap)
                else {
                    return err("a data section is not preceded by sections 1, 3, 4, 5 and 6");
                };
                fields.push(FieldSections {
                    discipline,
                    identification: id,
                    grid: gd,
                    product: pd,
                    data_representation: rep,
                    bitmap: bm,
                    data: section,
                });
                product = None;
                representation = None;
            }
            _ => unreachable!("section numbers are checked by in_order"),
        }
        last_number = number;
        offset += len;
    }
    if last_number != 7 {
        return err(format!(
            "the message ends after section {last_number}, not after a data section"
        ));
    }
    Ok(fields)
}

impl FieldSections<'_> {
    /// Parses the identity of the field (sections 0, 1, 4).
    pub fn identity(&self) -> Result<FieldIdentity, GribError> {
        let id = self.identification;
        let (Some(year), Some(&month), Some(&day), Some(&hour), Some(&minute), Some(&second)) = (
            be_u16(id, 12),
            id.get(14),
            id.get(15),
            id.get(16),
            id.get(17),
            id.get(18),
        ) else {
            return err("section 1 is too short for a reference time");
        };
        let reference_time = NaiveDate::from_ymd_opt(i32::from(year), month.into(), day.into())
            .and_then(|d| d.and_hms_opt(hour.into(), minute.into(), second.into()))
            .map(|t| t.and_utc())
            .ok_or_else(|| GribError {
                reason: format!(
                    "section 1 reference time {year:04}-{month:02}-{day:02} \
                     {hour:02}:{minute:02}:{second:02} is not a valid date"
                ),
            })?;
        let p = self.product;
        let template = be_u16(p, 7).unwrap_or(u16::MAX);
        // Octets 10-28 are laid out alike in templates 4.0-4.15 (parameter, time, surface).
        if template > 15 {
            return err(format!(
                "product definition template 4.{template} is not supported"
            ));
        }
        if p.len() < 34 {
            return err(format!(
                "section 4 (template 4.{template}) has {} bytes, fewer than the 34 it needs",
                p.len()
            ));
        }
        let parameter = Parameter {
            discipline: self.discipline,
            category: p[9],
            number: p[10],
        };
        let unit = p[17];
        let value = sign_magnitude(be_u32(p, 18).unwrap_or(0));
        let minutes_per_unit: i64 = match unit {
            0 => 1,
            1 => 60,
            2 => 24 * 60,
            10 => 3 * 60,
            11 => 6 * 60,
            12 => 12 * 60,
            13 => {
                if value % 60 != 0 {
                    return err(format!("forecast time {value} s is not whole minutes"));
                }
                return self.identity_with(parameter, template, reference_time, value / 60);
            }
            other => {
                return err(format!(
                    "forecast time unit {other} (code table 4.4) is not supported"
                ));
            }
        };
        self.identity_with(
            parameter,
            template,
            reference_time,
            value * minutes_per_unit,
        )
    }

    fn identity_with(
        &self,
        parameter: Parameter,
        product_template: u16,
        reference_time: DateTime<Utc>,
        forecast_minutes: i64,
    ) -> Result<FieldIdentity, GribError> {
        let p = self.product;
        let surface_type = p[22];
        let scale = p[23];
        let scaled = be_u32(p, 24).unwrap_or(u32::MAX);
        let value = if scale == 255 || scaled == u32::MAX {
            None
        } else {
            // GRIB2 signed octets are sign-and-magnitude, not two's complement.
            let factor = if scale & 0x80 != 0 {
                -i32::from(scale & 0x7f)
            } else {
                i32::from(scale)
            };
            Some(sign_magnitude(scaled) as f64 / 10f64.powi(factor))
        };
        let surface = match (surface_type, value) {
            (100, Some(pa)) => Surface::Isobaric(pa / 100.0),
            (101, _) => Surface::MeanSeaLevel,
            (103, Some(m)) => Surface::HeightAboveGround(m),
            (t, v) => Surface::Other(t, v),
        };
        Ok(FieldIdentity {
            parameter,
            surface,
            product_template,
            reference_time,
            forecast_minutes,
        })
    }

    /// Parses the grid (template 3.0 regular latitude/longitude only).
    pub fn grid(&self) -> Result<LatLonGrid, GribError> {
        let g = self.grid;
        let template = be_u16(g, 12).unwrap_or(u16::MAX);
        if template != 0 {
            return err(format!(
                "grid definition template 3.{template} is not supported (regular lat/lon 3.0 only)"
            ));
        }
        if g.len() < 72 {
            return err(format!(
                "section 3 (template 3.0) has {} bytes, fewer than 72",
                g.len()
            ));
        }
        if g[10] != 0 {
            return err("a quasi-regular grid (list of numbers of points) is not supported");
        }
        let u = |at: usize| be_u32(g, at).unwrap_or(0);
        let points = u(6) as usize;
        let ni = u(30) as usize;
        let nj = u(34) as usize;
        let count = ni.saturating_mul(nj);
        if ni == 0 || nj == 0 || count != points || count > MAX_GRID_POINTS {
            return err(format!(
                "grid of {ni} x {nj} points with {points} data points declared is not usable \
                 (at most {MAX_GRID_POINTS} points)"
            ));
        }
        let basic_angle = u(38);
        let subdivisions = u(42);
        let unit = if basic_angle == 0 || basic_angle == u32::MAX {
            1e-6
        } else if subdivisions == 0 || subdivisions == u32::MAX {
            return err("grid basic angle without subdivisions");
        } else {
            f64::from(basic_angle) / f64::from(subdivisions)
        };
        let la1 = sign_magnitude(u(46));
        let lo1 = sign_magnitude(u(50));
        let la2 = sign_magnitude(u(55));
        let lo2 = sign_magnitude(u(59));
        let di = u(63);
        let dj = u(67);
        let scanning_mode = g[71];
        if scanning_mode & 0x30 != 0 {
            return err(format!(
                "scanning mode {scanning_mode:#04x} (column-major or alternating rows) is not supported"
            ));
        }
        let i_negative = scanning_mode & 0x80 != 0;
        let j_positive = scanning_mode & 0x40 != 0;
        let full_circle = (360.0 / unit).round() as i64;
        if full_circle < 360 {
            return err(format!(
                "grid basic angle {basic_angle} / {subdivisions} gives units coarser than a degree"
            ));
        }
        let step = |first: i64, last: i64, inc: u32, n: usize, positive: bool, what: &str| {
            let sign = if positive { 1 } else { -1 };
            let inc = if inc == u32::MAX || inc == 0 {
                // increment not given: derive it from the first and last point
                if n < 2 {
                    return err(format!("{what} increment missing on a single-point axis"));
                }
                let span = (last - first).abs();
                if span % (n as i64 - 1) != 0 {
                    return err(format!(
                        "{what} increment missing and the span {span} is not a multiple of {}",
                        n - 1
                    ));
                }
                span / (n as i64 - 1)
            } else {
                i64::from(inc)
            };
            Ok(sign * inc)
        };
        let dlat = step(la1, la2, dj, nj, j_positive, "latitude")?;
        let dlon = step(lo1, lo2, di, ni, !i_negative, "longitude")?;
        let lat_last = la1 + dlat * (nj as i64 - 1);
        let lon_last = lo1 + dlon * (ni as i64 - 1);
        // The last point must agree with the declared one (longitudes modulo a full circle),
        // within a thousandth of the increment, else the grid is inconsistent.
        let lat_tolerance = (dlat.abs() / 1000).max(1);
        let lon_tolerance = (dlon.abs() / 1000).max(1);
        if (lat_last - la2).abs() > lat_tolerance {
            return err(format!(
                "grid latitudes do not close: first {}, increment {}, {nj} rows end at {} \
                 but the last latitude is {}",
                la1 as f64 * unit,
                dlat as f64 * unit,
                lat_last as f64 * unit,
                la2 as f64 * unit
            ));
        }
        if ((lon_last - lo2).rem_euclid(full_circle) > lon_tolerance)
            && (full_circle - (lon_last - lo2).rem_euclid(full_circle) > lon_tolerance)
        {
            return err(format!(
                "grid longitudes do not close: first {}, increment {}, {ni} columns end at {} \
                 but the last longitude is {}",
                lo1 as f64 * unit,
                dlon as f64 * unit,
                lon_last as f64 * unit,
                lo2 as f64 * unit
            ));
        }
        if la1.abs() as f64 * unit > 90.0 + 1e-9 || lat_last.abs() as f64 * unit > 90.0 + 1e-9 {
            return err("grid latitudes outside [-90, 90]");
        }
        let lats = (0..nj as i64)
            .map(|j| (la1 + dlat * j) as f64 * unit)
            .collect();
        let lons = (0..ni as i64)
            .map(|i| {
                let mut lon = lo1 + dlon * i;
                if lo1 >= 0 {
                    lon = lon.rem_euclid(full_circle);
                }
                lon as f64 * unit
            })
            .collect();
        Ok(LatLonGrid {
            ni,
            nj,
            lats,
            lons,
            scanning_mode,
        })
    }

    /// Decodes the field: identity, grid and values (NaN where missing).
    pub fn decode(&self) -> Result<DecodedField, GribError> {
        let identity = self.identity()?;
        let grid = self.grid()?;
        let points = grid.ni * grid.nj;
        let rep = self.data_representation;
        let coded = be_u32(rep, 5).unwrap_or(0) as usize;
        let data_template = be_u16(rep, 9).unwrap_or(u16::MAX);
        let min_len = match data_template {
            0 | 41 => 21,
            2 => 47,
            3 => 49,
            40 => 23,
            42 => 25,
            other => {
                return err(format!(
                    "data representation template 5.{other} is not supported \
                     (5.0, 5.2, 5.3, 5.40, 5.41 and 5.42 are)"
                ));
            }
        };
        if rep.len() < min_len {
            return err(format!(
                "section 5 (template 5.{data_template}) has {} bytes, fewer than {min_len}",
                rep.len()
            ));
        }
        let mask = match self.bitmap {
            None => {
                if coded != points {
                    return err(format!(
                        "section 5 codes {coded} values but the grid has {points} points \
                         and there is no bitmap"
                    ));
                }
                None
            }
            Some(section) => {
                let bits = &section[6..];
                if bits.len().saturating_mul(8) < points {
                    return err(format!(
                        "the bitmap has {} bits for {points} grid points",
                        bits.len() * 8
                    ));
                }
                let mask = &bits.view_bits::<Msb0>()[..points];
                let present = mask.count_ones();
                if present != coded {
                    return err(format!(
                        "the bitmap marks {present} points present but section 5 codes {coded} values"
                    ));
                }
                Some(mask)
            }
        };
        let payload = &self.data[5..];
        check_packing(data_template, rep, payload, coded)?;
        let packed = if coded == 0 {
            Vec::new()
        } else {
            unpack(rep, payload, data_template)?
        };
        if packed.len() < coded {
            return err(format!(
                "section 7 holds {} values, fewer than the {coded} section 5 declares (truncated data?)",
                packed.len()
            ));
        }
        let values = match mask {
            None => packed[..coded].iter().map(|v| *v as f32).collect(),
            Some(mask) => {
                let mut next = packed.iter();
                mask.iter()
                    .map(|present| {
                        if *present {
                            next.next().map_or(f32::NAN, |v| *v as f32)
                        } else {
                            f32::NAN
                        }
                    })
                    .collect()
            }
        };
        Ok(DecodedField {
            identity,
            grid,
            values,
            data_template,
        })
    }
}

/// Checks, before any decoder allocates, that the packed data of section 7 describes exactly
/// `coded` values: the decoders size their output from the packed data itself (group lengths,
/// image dimensions, bit counts), so a damaged message could otherwise claim gigabytes.
fn check_packing(template: u16, rep: &[u8], payload: &[u8], coded: usize) -> Result<(), GribError> {
    let nbits = usize::from(rep[19]);
    match template {
        0 => {
            if nbits > 32 {
                return err(format!("simple packing with {nbits} bits per value"));
            }
            let needed = (coded * nbits).div_ceil(8);
            if nbits > 0 && (payload.len() < needed || payload.len() > needed + 8) {
                return err(format!(
                    "section 7 has {} bytes where {coded} values of {nbits} bits take {needed}",
                    payload.len()
                ));
            }
            Ok(())
        }
        2 | 3 => check_complex_packing(rep, payload, coded, template == 3),
        40 => {
            if nbits == 0 {
                return Ok(());
            }
            // a raw JPEG 2000 codestream: SOC, then SIZ with the image size
            if payload.len() < 24 || payload[..4] != [0xff, 0x4f, 0xff, 0x51] {
                return err("section 7 is not a JPEG 2000 codestream (no SOC/SIZ marker)");
            }
            let u = |at| u64::from(be_u32(payload, at).unwrap_or(0));
            let (x, y, x0, y0) = (u(8), u(12), u(16), u(20));
            let pixels = x.saturating_sub(x0) * y.saturating_sub(y0);
            if pixels != coded as u64 {
                return err(format!(
                    "the JPEG 2000 image has {pixels} pixels for {coded} coded values"
                ));
            }
            Ok(())
        }
        41 => {
            if payload.len() < 24
                || &payload[..8] != b"\x89PNG\r\n\x1a\n"
                || &payload[12..16] != b"IHDR"
            {
                return err("section 7 is not a PNG image (no signature/IHDR)");
            }
            let pixels = u64::from(be_u32(payload, 16).unwrap_or(0))
                * u64::from(be_u32(payload, 20).unwrap_or(0));
            if pixels != coded as u64 {
                return err(format!(
                    "the PNG image has {pixels} pixels for {coded} coded values"
                ));
            }
            Ok(())
        }
        // CCSDS sizes its output from section 5's count of coded values
        _ => Ok(()),
    }
}

/// Complex packing (5.2, 5.3): the groups must cover exactly `coded` values and fit in the data.
fn check_complex_packing(
    rep: &[u8],
    payload: &[u8],
    coded: usize,
    spatial: bool,
) -> Result<(), GribError> {
    let groups = be_u32(rep, 31).unwrap_or(0) as usize;
    if groups == 0 {
        return Ok(()); // a constant field of `coded` reference values
    }
    if groups > coded {
        return err(format!("{groups} groups for {coded} coded values"));
    }
    let reference_bits = usize::from(rep[19]);
    let width_reference = u64::from(rep[35]);
    let width_bits = usize::from(rep[36]);
    let length_reference = u64::from(be_u32(rep, 37).unwrap_or(0));
    let length_increment = u64::from(rep[41]);
    let last_length = u64::from(be_u32(rep, 42).unwrap_or(0));
    let length_bits = usize::from(rep[46]);
    if reference_bits > 32 || width_bits > 32 || length_bits > 32 {
        return err(format!(
            "complex packing with {reference_bits}/{width_bits}/{length_bits} bits for \
             group references/widths/lengths"
        ));
    }
    let mut pos = 0usize;
    if spatial {
        let order = usize::from(rep[47]);
        let octets = usize::from(rep[48]);
        if !(order == 1 || order == 2) || octets == 0 || octets > 4 {
            return err(format!(
                "spatial differencing of order {order} with {octets} octets is not valid"
            ));
        }
        pos += (order + 1) * octets * 8;
    }
    let padded = |bits: usize| bits.div_ceil(8) * 8;
    pos += padded(groups * reference_bits);
    let widths_at = pos;
    pos += padded(groups * width_bits);
    let lengths_at = pos;
    pos += padded(groups * length_bits);
    let total_bits = payload.len() * 8;
    if pos > total_bits {
        return err(format!(
            "section 7 has {} bytes, too few for the descriptors of {groups} groups",
            payload.len()
        ));
    }
    let bits = payload.view_bits::<Msb0>();
    let read = |at: usize, n: usize| -> u64 {
        if n == 0 {
            0
        } else {
            bits[at..at + n]
                .iter()
                .fold(0u64, |acc, b| (acc << 1) | u64::from(*b))
        }
    };
    let (mut values, mut value_bits) = (0u64, 0u64);
    for g in 0..groups {
        let width = width_reference + read(widths_at + g * width_bits, width_bits);
        let length = if g + 1 == groups {
            last_length
        } else {
            length_reference + length_increment * read(lengths_at + g * length_bits, length_bits)
        };
        if width > 31 {
            return err(format!("group {g} is {width} bits wide"));
        }
        values += length;
        value_bits += width * length;
        if values > coded as u64 {
            return err(format!(
                "the group lengths add up to more than the {coded} coded values"
            ));
        }
    }
    if values != coded as u64 {
        return err(format!(
            "the group lengths add up to {values}, not the {coded} coded values"
        ));
    }
    if pos as u64 + value_bits > total_bits as u64 {
        return err(format!(
            "section 7 has {} bytes, too few for the packed values of {groups} groups",
            payload.len()
        ));
    }
    Ok(())
}

/// Unpacks section 7 with gribberish; a panic inside the decoder becomes an error.
fn unpack(representation: &[u8], data: &[u8], template: u16) -> Result<Vec<f64>, GribError> {
    use gribberish::sections::data_representation::DataRepresentationSection;
    let outcome = std::panic::catch_unwind(|| {
        let section = DataRepresentationSection::from_data(representation);
        let Some(packing) = section.data_representation_template() else {
            return Err(format!(
                "data representation template 5.{template} is not supported by the decoder"
            ));
        };
        packing
            .unpack(data.view_bits::<Msb0>())
            .map_err(|e| format!("unpacking template 5.{template} failed: {e}"))
    });
    match outcome {
        Ok(Ok(values)) => Ok(values),
        Ok(Err(reason)) => err(reason),
        Err(_) => err(format!(
            "the template 5.{template} decoder failed on malformed packed data"
        )),
    }
}

/// Decodes every field of one GRIB2 message (`bytes` is exactly the message).
pub fn decode_message(bytes: &[u8]) -> Result<Vec<DecodedField>, GribError> {
    split_fields(bytes)?
        .iter()
        .enumerate()
        .map(|(k, f)| {
            f.decode().map_err(|e| GribError {
                reason: format!("field {} of the message: {}", k + 1, e.reason),
            })
        })
        .collect()
}
