//! A [`GfsSource`] backed by fields held in memory (synthetic demo data, tests of the steps).

use super::{GfsError, GfsSource, validate_cycle};
use crate::field::Field;
use async_trait::async_trait;
use chrono::{DateTime, TimeDelta, Utc};
use ndarray::{Axis, concatenate};
use std::collections::HashMap;
use std::sync::RwLock;
use wx_model::{VarLevel, Variable};

/// (cycle, lead hours, variable).
type MemoryKey = (DateTime<Utc>, u32, Variable);

/// Fields per (cycle, lead, variable), served through [`GfsSource`] with the same contract as
/// the GRIB sources: one field per requested [`VarLevel`], levels selected and ordered as
/// asked, a missing entry is [`GfsError::NotAvailable`].
#[derive(Debug, Default)]
pub struct InMemoryGfsSource {
    source_id: String,
    fields: RwLock<HashMap<MemoryKey, Field>>,
}

impl InMemoryGfsSource {
    /// An empty source.
    pub fn new(source_id: impl Into<String>) -> Self {
        InMemoryGfsSource {
            source_id: source_id.into(),
            fields: RwLock::new(HashMap::new()),
        }
    }

    /// Adds (or replaces) the field of a variable for cycle `init` at `lead_hours`; its valid
    /// time must be `init + lead_hours`. A multi-level field holds whatever levels it has.
    pub fn insert(
        &self,
        init: DateTime<Utc>,
        lead_hours: u32,
        field: Field,
    ) -> Result<(), GfsError> {
        validate_cycle(init, lead_hours)?;
        let valid = init + TimeDelta::hours(i64::from(lead_hours));
        if field.valid_time != valid {
            return Err(GfsError::InvalidRequest(format!(
                "{} is valid at {}, not at {valid} (cycle {init} + {lead_hours} h)",
                field.variable, field.valid_time
            )));
        }
        self.fields
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .insert((init, lead_hours, field.variable), field);
        Ok(())
    }

    fn select(
        &self,
        init: DateTime<Utc>,
        lead_hours: u32,
        var: VarLevel,
    ) -> Result<Field, GfsError> {
        let fields = self.fields.read().unwrap_or_else(|p| p.into_inner());
        let unavailable = || GfsError::NotAvailable {
            store: format!("memory:{}", self.source_id),
            key: format!("{} f{lead_hours:03} {var}", init.format("%Y%m%d%H")),
        };
        let field = fields
            .get(&(init, lead_hours, var.variable))
            .ok_or_else(unavailable)?;
        if var.variable.is_surface() {
            return Ok(field.clone());
        }
        let mut slices = Vec::new();
        for level in var.levels() {
            let k = field.level_index(level).ok_or_else(unavailable)?;
            slices.push(field.data.index_axis(Axis(0), k).insert_axis(Axis(0)));
        }
        let data = concatenate(Axis(0), &slices)
            .map_err(|e| GfsError::InvalidRequest(format!("{var}: {e}")))?;
        Field::new(
            var.variable,
            var.levels(),
            field.lats.clone(),
            field.lons.clone(),
            field.valid_time,
            data,
        )
        .map_err(|e| GfsError::InvalidRequest(e.to_string()))
    }
}

#[async_trait]
impl GfsSource for InMemoryGfsSource {
    fn source_id(&self) -> &str {
        &self.source_id
    }

    async fn forecast(
        &self,
        init: DateTime<Utc>,
        lead_hours: u32,
        vars: &[VarLevel],
    ) -> Result<Vec<Field>, GfsError> {
        validate_cycle(init, lead_hours)?;
        vars.iter()
            .map(|v| self.select(init, lead_hours, *v))
            .collect()
    }
}
