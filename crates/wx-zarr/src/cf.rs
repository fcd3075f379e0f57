//! CF decoding of data values as xarray does it (docs/data.md §1.5): fill values to NaN, then
//! `raw × scale_factor + add_offset`.
//!
//! - Fill values are compared with the *raw* stored values: `_FillValue` and `missing_value`
//!   (a number or a list of numbers) from the attributes, and for Zarr v2 the array's
//!   `fill_value` too (xarray takes a v2 array's `fill_value` as `_FillValue`; for v3 only the
//!   attribute counts, which xarray writes base64-encoded for floats).
//! - `scale_factor` and `add_offset` must be finite numbers; the arithmetic is done in f64 (what
//!   xarray does for attributes read from JSON) and the result rounded to f32.
//! - `_Unsigned` (netCDF's reinterpretation of signed integers) is refused.

use super::ZarrError;
use super::array::ElementType;
use base64::Engine;
use serde_json::{Map, Value};

/// The CF decoding of one array's values.
#[derive(Debug, Clone, PartialEq)]
pub struct CfDecoding {
    /// Raw values (in the stored type, as f64) that mean "missing".
    pub fill_values: Vec<f64>,
    /// Multiplier of the raw value.
    pub scale_factor: Option<f64>,
    /// Added after scaling.
    pub add_offset: Option<f64>,
}

impl CfDecoding {
    /// Reads the CF attributes of array `name`; `v2_fill_value` is a v2 array's `fill_value`.
    /// `Ok(None)` when there is nothing to do (no scaling, no fill value other than NaN).
    pub(crate) fn from_attributes(
        store: &str,
        name: &str,
        element: ElementType,
        attributes: &Map<String, Value>,
        v2_fill_value: Option<&Value>,
    ) -> Result<Option<CfDecoding>, ZarrError> {
        let bad = |attribute: &str, what: String| {
            ZarrError::format(
                store,
                name,
                format!(
                    "attribute `{attribute}` of `{name}` {what}; fix or remove it (CF: a finite \
                     number)"
                ),
            )
        };
        if attributes.contains_key("_Unsigned") {
            return Err(bad(
                "_Unsigned",
                "is not supported (store unsigned data as an unsigned type)".to_owned(),
            ));
        }
        let number = |attribute: &str| -> Result<Option<f64>, ZarrError> {
            match attributes.get(attribute) {
                None | Some(Value::Null) => Ok(None),
                Some(Value::Number(n)) => match n.as_f64() {
                    Some(v) if v.is_finite() => Ok(Some(v)),
                    _ => Err(bad(attribute, format!("is {n}, not a finite number"))),
                },
                Some(other) => Err(bad(attribute, format!("is {other}, not a number"))),
            }
        };
        let scale_factor = number("scale_factor")?;
        let add_offset = number("add_offset")?;
        let mut fill_values = Vec::new();
        let mut add_fill = |attribute: &str, value: &Value| -> Result<(), ZarrError> {
            let values: Vec<&Value> = match value {
                Value::Array(list) => list.iter().collect(),
                one => vec![one],
            };
            for v in values {
                let raw = fill_number(v, element)
                    .ok_or_else(|| bad(attribute, format!("is {v}, not a number")))?;
                if !raw.is_nan() {
                    fill_values.push(as_stored(raw, element));
                }
            }
            Ok(())
        };
        if let Some(fill) = v2_fill_value.filter(|v| !v.is_null()) {
            add_fill("fill_value", fill)?;
        }
        for attribute in ["_FillValue", "missing_value"] {
            if let Some(value) = attributes.get(attribute).filter(|v| !v.is_null()) {
                add_fill(attribute, value)?;
            }
        }
        fill_values.sort_by(f64::total_cmp);
        fill_values.dedup();
        if fill_values.is_empty() && scale_factor.is_none() && add_offset.is_none() {
            return Ok(None);
        }
        Ok(Some(CfDecoding {
            fill_values,
            scale_factor,
            add_offset,
        }))
    }

    /// The decoded value of a raw value (already widened to f64).
    #[inline]
    pub fn decode(&self, raw: f64) -> f32 {
        if self.fill_values.contains(&raw) {
            return f32::NAN;
        }
        let mut v = raw;
        if let Some(scale) = self.scale_factor {
            v *= scale;
        }
        if let Some(offset) = self.add_offset {
            v += offset;
        }
        v as f32
    }

    /// Whether values pass through unchanged apart from the fill values.
    pub fn is_mask_only(&self) -> bool {
        self.scale_factor.is_none() && self.add_offset.is_none()
    }
}

/// A fill value as JSON: a number, `"NaN"`/`"Infinity"`/`"-Infinity"`, or xarray's base64 of the
/// little-endian value (Zarr v3 float fill values).
fn fill_number(value: &Value, element: ElementType) -> Option<f64> {
    match value {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => match s.as_str() {
            "NaN" => Some(f64::NAN),
            "Infinity" => Some(f64::INFINITY),
            "-Infinity" => Some(f64::NEG_INFINITY),
            text => {
                let bytes = base64::engine::general_purpose::STANDARD
                    .decode(text)
                    .ok()?;
                match (bytes.len(), element) {
                    (8, _) => Some(f64::from_le_bytes(bytes.try_into().ok()?)),
                    (4, ElementType::F32) => {
                        Some(f64::from(f32::from_le_bytes(bytes.try_into().ok()?)))
                    }
                    _ => None,
                }
            }
        },
        _ => None,
    }
}

/// The value as the stored type holds it (a float32 array compares with the fill value rounded
/// to float32, as numpy does).
fn as_stored(raw: f64, element: ElementType) -> f64 {
    match element {
        ElementType::F32 => f64::from(raw as f32),
        _ => raw,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn attrs(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn packed_integers_decode_as_xarray_does() {
        let cf = CfDecoding::from_attributes(
            "s",
            "2t",
            ElementType::I16,
            &attrs(json!({"scale_factor": 0.01, "add_offset": 273.15, "missing_value": [-1, -2]})),
            Some(&json!(-32767)),
        )
        .unwrap()
        .unwrap();
        assert_eq!(cf.fill_values, vec![-32767.0, -2.0, -1.0]);
        assert_eq!(cf.decode(100.0), (100.0f64 * 0.01 + 273.15) as f32);
        assert!(cf.decode(-32767.0).is_nan() && cf.decode(-2.0).is_nan());
    }

    #[test]
    fn float_fill_values_in_every_spelling() {
        let nan = CfDecoding::from_attributes(
            "s",
            "x",
            ElementType::F32,
            &attrs(json!({"_FillValue": "AAAAAAAA+H8="})),
            None,
        )
        .unwrap();
        assert_eq!(nan, None, "a NaN fill value needs no work");
        let b64 = base64::engine::general_purpose::STANDARD.encode((-9999.0f64).to_le_bytes());
        let cf = CfDecoding::from_attributes(
            "s",
            "x",
            ElementType::F32,
            &attrs(json!({ "_FillValue": b64 })),
            None,
        )
        .unwrap()
        .unwrap();
        assert!(cf.decode(-9999.0).is_nan() && cf.is_mask_only());
        assert_eq!(cf.decode(1.5), 1.5);
        // 0.1 as float32 data equals the fill value 0.1 rounded to float32
        let cf =
            CfDecoding::from_attributes("s", "x", ElementType::F32, &Map::new(), Some(&json!(0.1)))
                .unwrap()
                .unwrap();
        assert!(cf.decode(f64::from(0.1f32)).is_nan());
    }

    #[test]
    fn bad_attributes_are_errors_naming_the_variable_and_attribute() {
        for (attributes, attribute) in [
            (json!({"scale_factor": "0.01"}), "scale_factor"),
            (json!({"add_offset": [1, 2]}), "add_offset"),
            (json!({"_FillValue": {"a": 1}}), "_FillValue"),
            (json!({"missing_value": [1, "x"]}), "missing_value"),
            (json!({"_Unsigned": "true"}), "_Unsigned"),
        ] {
            let err = CfDecoding::from_attributes(
                "era5",
                "2m_temperature",
                ElementType::I16,
                &attrs(attributes),
                None,
            )
            .unwrap_err();
            let msg = err.to_string();
            assert!(
                msg.contains("2m_temperature") && msg.contains(attribute),
                "{msg}"
            );
        }
    }
}
