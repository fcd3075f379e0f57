//! The result classes: `FieldMetrics` (one 2-D field) and `VariableMetrics` (one variable at
//! one lead: a surface field or the thickness-weighted aggregate of its levels).
//!
//! Both keep wx-scoring's own structs, so a `VariableMetrics` handed back to `lead_score` or
//! `day1_score` is exactly what the validator aggregates. A metric that could not be computed is
//! `None`, with the reason in `failures`.

use pyo3::prelude::*;
use pyo3::types::PyDict;
use wx_scoring::{MetricValue, ScoringConfig};

use crate::config;

/// `Some(x)` for a computed metric.
fn value(v: &MetricValue) -> Option<f64> {
    v.as_ref().ok().copied()
}

/// `Some(x)` for a metric whose input was given and that computed.
fn opt_value(v: &Option<MetricValue>) -> Option<f64> {
    v.as_ref().and_then(value)
}

/// Records why `name` has no value, if it failed.
fn failure(out: &mut Vec<(&'static str, String)>, name: &'static str, v: Option<&MetricValue>) {
    if let Some(Err(e)) = v {
        out.push((name, e.to_string()));
    }
}

/// A metric as Python writes it: the number, or `None`.
fn py_repr(v: Option<f64>) -> String {
    v.map_or_else(|| "None".to_owned(), |x| format!("{x:?}"))
}

/// `{name: reason}` in the order recorded.
fn to_dict<'py>(
    py: Python<'py>,
    items: Vec<(&'static str, String)>,
) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    for (k, v) in items {
        d.set_item(k, v)?;
    }
    Ok(d)
}

/// Everything computed for one 2-D field: the metrics against the climatology (or without a
/// reference) and, when a reference field was given, the metrics against it.
#[derive(Debug, Clone)]
pub(crate) struct FieldResult {
    /// Metrics of the call with the climatology as skill reference (or with the reference field
    /// when there is no climatology, or with no reference at all).
    pub base: wx_scoring::FieldMetrics,
    /// Whether `base.skill` is the skill against the climatology.
    pub skill_vs_climatology: bool,
    /// Metrics of the call with the reference field (skill against it, clone distance, pattern
    /// correlation).
    pub vs_reference: Option<wx_scoring::FieldMetrics>,
}

/// The metrics of one 2-D field comparison, as the validator computes them.
///
/// Every metric is a float, or ``None`` when its input was not given (``acc`` needs a
/// climatology, ``skill_ref`` a reference) or it could not be computed (the reason is in
/// ``failures``).
#[pyclass(
    frozen,
    from_py_object,
    module = "wx_scoring._core",
    name = "FieldMetrics"
)]
#[derive(Debug, Clone)]
pub(crate) struct PyFieldMetrics(pub FieldResult);

#[pymethods]
impl PyFieldMetrics {
    /// Fraction of the finite truth points where the forecast is finite too.
    #[getter]
    fn coverage(&self) -> f64 {
        self.0.base.coverage
    }
    /// Number of finite truth points.
    #[getter]
    fn n_truth(&self) -> u64 {
        self.0.base.n_truth
    }
    /// Number of points where forecast and truth are both finite.
    #[getter]
    fn n_pairs(&self) -> u64 {
        self.0.base.n_pairs
    }
    /// Largest absolute forecast value (the validator fails a variable above 1e12).
    #[getter]
    fn max_abs_forecast(&self) -> f64 {
        self.0.base.max_abs_forecast
    }
    /// cos-latitude weighted mean of forecast − truth.
    #[getter]
    fn bias(&self) -> Option<f64> {
        value(&self.0.base.bias)
    }
    /// Weighted mean squared error.
    #[getter]
    fn mse(&self) -> Option<f64> {
        value(&self.0.base.mse)
    }
    /// Square root of ``mse``.
    #[getter]
    fn rmse(&self) -> Option<f64> {
        value(&self.0.base.rmse)
    }
    /// Weighted mean absolute error.
    #[getter]
    fn mae(&self) -> Option<f64> {
        value(&self.0.base.mae)
    }
    /// Anomaly correlation against the climatology (needs ``climatology``).
    #[getter]
    fn acc(&self) -> Option<f64> {
        opt_value(&self.0.base.acc)
    }
    /// Skill of the bias-corrected forecast against the climatology, 1 − MSE/MSE_clim (ERA5).
    #[getter]
    fn skill_clim(&self) -> Option<f64> {
        self.0
            .skill_vs_climatology
            .then(|| opt_value(&self.0.base.skill))
            .flatten()
    }
    /// The climatology's own MSE against the truth.
    #[getter]
    fn mse_clim(&self) -> Option<f64> {
        opt_value(&self.0.base.mse_clim)
    }
    /// The climatology's own RMSE against the truth (the ERA5 RMSE term's yardstick).
    #[getter]
    fn rmse_clim(&self) -> Option<f64> {
        opt_value(&self.0.base.rmse_clim)
    }
    /// Skill of the bias-corrected forecast against the reference field (Day1: GFS).
    #[getter]
    fn skill_ref(&self) -> Option<f64> {
        self.0
            .vs_reference
            .as_ref()
            .and_then(|r| opt_value(&r.skill))
    }
    /// Weighted MSE between forecast and reference, not bias corrected (Day1 clone check).
    #[getter]
    fn clone_distance(&self) -> Option<f64> {
        self.0
            .vs_reference
            .as_ref()
            .and_then(|r| opt_value(&r.clone_distance))
    }
    /// Weighted centred correlation of forecast and reference (Day1 sanity check, ≥ 0.3).
    #[getter]
    fn pattern_correlation(&self) -> Option<f64> {
        self.0
            .vs_reference
            .as_ref()
            .and_then(|r| opt_value(&r.pattern_correlation))
    }
    /// Why metrics are ``None`` although their inputs were given: ``{metric: reason}``.
    #[getter]
    fn failures<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let (b, r) = (&self.0.base, self.0.vs_reference.as_ref());
        let mut out = Vec::new();
        failure(&mut out, "bias", Some(&b.bias));
        failure(&mut out, "mse", Some(&b.mse));
        failure(&mut out, "rmse", Some(&b.rmse));
        failure(&mut out, "mae", Some(&b.mae));
        failure(&mut out, "acc", b.acc.as_ref());
        if self.0.skill_vs_climatology {
            failure(&mut out, "skill_clim", b.skill.as_ref());
        }
        failure(&mut out, "mse_clim", b.mse_clim.as_ref());
        failure(&mut out, "rmse_clim", b.rmse_clim.as_ref());
        if let Some(r) = r {
            failure(&mut out, "skill_ref", r.skill.as_ref());
            failure(&mut out, "clone_distance", r.clone_distance.as_ref());
            failure(
                &mut out,
                "pattern_correlation",
                r.pattern_correlation.as_ref(),
            );
        }
        to_dict(py, out)
    }
    /// The field-level failure that scores the variable 0 (coverage below the floor, or a
    /// forecast value beyond the extreme-value limit), or ``None``.
    #[pyo3(signature = (config=None))]
    fn field_failure(&self, config: Option<&Bound<'_, PyAny>>) -> PyResult<Option<String>> {
        let cfg = config::from_python(config)?;
        Ok(self.0.base.field_failure(&cfg.field).map(|f| f.to_string()))
    }
    /// Every value as a dict (``None`` for metrics not computed).
    fn to_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let d = PyDict::new(py);
        d.set_item("coverage", self.coverage())?;
        d.set_item("n_truth", self.n_truth())?;
        d.set_item("n_pairs", self.n_pairs())?;
        d.set_item("max_abs_forecast", self.max_abs_forecast())?;
        d.set_item("bias", self.bias())?;
        d.set_item("mse", self.mse())?;
        d.set_item("rmse", self.rmse())?;
        d.set_item("mae", self.mae())?;
        d.set_item("acc", self.acc())?;
        d.set_item("skill_clim", self.skill_clim())?;
        d.set_item("mse_clim", self.mse_clim())?;
        d.set_item("rmse_clim", self.rmse_clim())?;
        d.set_item("skill_ref", self.skill_ref())?;
        d.set_item("clone_distance", self.clone_distance())?;
        d.set_item("pattern_correlation", self.pattern_correlation())?;
        Ok(d)
    }
    fn __repr__(&self) -> String {
        format!(
            "FieldMetrics(rmse={}, bias={}, acc={}, skill_clim={}, skill_ref={}, coverage={:?})",
            py_repr(self.rmse()),
            py_repr(self.bias()),
            py_repr(self.acc()),
            py_repr(self.skill_clim()),
            py_repr(self.skill_ref()),
            self.coverage()
        )
    }
}

/// The metrics of one variable at one lead: a surface field, or the thickness-weighted
/// aggregate of a multi-level variable's levels (RMSE = √Σωᵢ·MSEᵢ, ACC = Σωᵢ·ACCᵢ, …).
///
/// This is the outcome ``lead_score`` (ERA5 metrics: skill against the climatology) and
/// ``day1_score`` (Day1 metrics: skill against the reference) aggregate.
#[pyclass(frozen, module = "wx_scoring._core", name = "VariableMetrics")]
#[derive(Debug, Clone)]
pub(crate) struct PyVariableMetrics {
    /// The aggregate with the climatology as skill reference (what ERA5 scoring uses).
    pub era5: wx_scoring::VariableMetrics,
    /// The aggregate with the reference field as skill reference (what Day1 uses).
    pub day1: Option<wx_scoring::VariableMetrics>,
    /// Whether `era5.skill` is the skill against the climatology.
    pub skill_vs_climatology: bool,
    /// The per-level results, in level order.
    pub per_level: Vec<FieldResult>,
    /// The levels (hPa) of `per_level`; empty for a surface field.
    pub levels: Vec<f64>,
}

#[pymethods]
impl PyVariableMetrics {
    /// Number of levels aggregated (1 for a surface field).
    #[getter]
    fn n_levels(&self) -> usize {
        self.era5.levels
    }
    /// The pressure levels (hPa) of ``per_level``; empty for a surface field.
    #[getter]
    fn levels(&self) -> Vec<f64> {
        self.levels.clone()
    }
    /// Metrics of each level, in level order.
    #[getter]
    fn per_level(&self) -> Vec<PyFieldMetrics> {
        self.per_level.iter().cloned().map(PyFieldMetrics).collect()
    }
    /// Smallest coverage over levels (below 0.9985 the validator scores the variable 0).
    #[getter]
    fn coverage(&self) -> f64 {
        self.era5.coverage
    }
    /// Largest absolute forecast value over levels.
    #[getter]
    fn max_abs_forecast(&self) -> f64 {
        self.era5.max_abs_forecast
    }
    /// Thickness-weighted bias.
    #[getter]
    fn bias(&self) -> Option<f64> {
        value(&self.era5.bias)
    }
    /// Thickness-weighted MSE.
    #[getter]
    fn mse(&self) -> Option<f64> {
        value(&self.era5.mse)
    }
    /// Square root of ``mse``.
    #[getter]
    fn rmse(&self) -> Option<f64> {
        value(&self.era5.rmse)
    }
    /// Thickness-weighted MAE.
    #[getter]
    fn mae(&self) -> Option<f64> {
        value(&self.era5.mae)
    }
    /// Thickness-weighted ACC.
    #[getter]
    fn acc(&self) -> Option<f64> {
        opt_value(&self.era5.acc)
    }
    /// Thickness-weighted skill against the climatology (ERA5).
    #[getter]
    fn skill_clim(&self) -> Option<f64> {
        self.skill_vs_climatology
            .then(|| opt_value(&self.era5.skill))
            .flatten()
    }
    /// Thickness-weighted MSE of the climatology.
    #[getter]
    fn mse_clim(&self) -> Option<f64> {
        opt_value(&self.era5.mse_clim)
    }
    /// Square root of ``mse_clim``.
    #[getter]
    fn rmse_clim(&self) -> Option<f64> {
        opt_value(&self.era5.rmse_clim)
    }
    /// Thickness-weighted skill against the reference field (Day1).
    #[getter]
    fn skill_ref(&self) -> Option<f64> {
        self.day1.as_ref().and_then(|d| opt_value(&d.skill))
    }
    /// Thickness-weighted clone distance to the reference field.
    #[getter]
    fn clone_distance(&self) -> Option<f64> {
        self.day1
            .as_ref()
            .and_then(|d| opt_value(&d.clone_distance))
    }
    /// Thickness-weighted pattern correlation with the reference field.
    #[getter]
    fn pattern_correlation(&self) -> Option<f64> {
        self.day1
            .as_ref()
            .and_then(|d| opt_value(&d.pattern_correlation))
    }
    /// Why metrics are ``None`` although their inputs were given: ``{metric: reason}``
    /// (a multi-level metric fails if it failed at any level, which the reason names).
    #[getter]
    fn failures<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let e = &self.era5;
        let mut out = Vec::new();
        failure(&mut out, "bias", Some(&e.bias));
        failure(&mut out, "mse", Some(&e.mse));
        failure(&mut out, "rmse", Some(&e.rmse));
        failure(&mut out, "mae", Some(&e.mae));
        failure(&mut out, "acc", e.acc.as_ref());
        if self.skill_vs_climatology {
            failure(&mut out, "skill_clim", e.skill.as_ref());
        }
        failure(&mut out, "mse_clim", e.mse_clim.as_ref());
        failure(&mut out, "rmse_clim", e.rmse_clim.as_ref());
        if let Some(d) = &self.day1 {
            failure(&mut out, "skill_ref", d.skill.as_ref());
            failure(&mut out, "clone_distance", d.clone_distance.as_ref());
            failure(
                &mut out,
                "pattern_correlation",
                d.pattern_correlation.as_ref(),
            );
        }
        to_dict(py, out)
    }
    /// The field-level failure that scores the variable 0 (coverage, extreme value), or ``None``.
    #[pyo3(signature = (config=None))]
    fn field_failure(&self, config: Option<&Bound<'_, PyAny>>) -> PyResult<Option<String>> {
        let cfg: ScoringConfig = config::from_python(config)?;
        Ok(self.era5.field_failure(&cfg.field).map(|f| f.to_string()))
    }
    /// Every aggregate value as a dict (``None`` for metrics not computed).
    fn to_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let d = PyDict::new(py);
        d.set_item("n_levels", self.n_levels())?;
        d.set_item("coverage", self.coverage())?;
        d.set_item("max_abs_forecast", self.max_abs_forecast())?;
        d.set_item("bias", self.bias())?;
        d.set_item("mse", self.mse())?;
        d.set_item("rmse", self.rmse())?;
        d.set_item("mae", self.mae())?;
        d.set_item("acc", self.acc())?;
        d.set_item("skill_clim", self.skill_clim())?;
        d.set_item("mse_clim", self.mse_clim())?;
        d.set_item("rmse_clim", self.rmse_clim())?;
        d.set_item("skill_ref", self.skill_ref())?;
        d.set_item("clone_distance", self.clone_distance())?;
        d.set_item("pattern_correlation", self.pattern_correlation())?;
        Ok(d)
    }
    fn __repr__(&self) -> String {
        format!(
            "VariableMetrics(n_levels={}, rmse={}, acc={}, skill_clim={}, skill_ref={}, coverage={:?})",
            self.n_levels(),
            py_repr(self.rmse()),
            py_repr(self.acc()),
            py_repr(self.skill_clim()),
            py_repr(self.skill_ref()),
            self.coverage()
        )
    }
}
