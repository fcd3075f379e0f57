"""Score xarray Datasets exactly as the validator scores Zarr stores (needs xarray and pandas).

The rules are the validator's (its catalogue, alignment and store readers):

- variables are found under their accepted names (:mod:`wx_scoring.catalogue`, first match in
  the catalogue's order); a ``units`` attribute must name the canonical unit (spellings are
  normalised, nothing is converted);
- coordinates: latitude ``latitude|lat``, longitude ``longitude|lon``, time ``time|valid_time``
  (CF-decoded), level ``pressure_level|level|plev|lev`` in hPa (values above 2000 are Pa);
- a variable's dimensions are exactly (time, [level], lat, lon) in any order; levels and valid
  times (init + lead) are selected exactly, never interpolated;
- the forecast (miner layout) must be float32; the truth (ERA5 layout, or miner layout) and the
  climatology (WeatherBench2 layout: ``hour`` and ``dayofyear``, nearest day of year and valid
  hour floored to the store's hour step) may be float32 or float64 and are rounded to float32;
- the truth grid, put in canonical orientation, is the target grid; the forecast, climatology
  and reference are put onto it by :func:`wx_scoring.regrid` (the validator's Rust code);
- a forecast variable that is missing, unusable, or lacks the valid time or a level is a
  failed variable (scored 0, metrics None), never dropped; a truth or climatology without the
  requested data is a :class:`ScoreError`, as in ``wx-step score``.

Stores are opened raw (``open_store``) and decoded as the validator decodes them: fill values
(``_FillValue``, ``missing_value``) to NaN, and integer truth or climatology variables unpacked
with ``scale_factor``/``add_offset`` (docs/data.md §1.5); the scores are then computed by
:mod:`wx_scoring._core`.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import os
import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from . import _core
from . import catalogue as cat

__all__ = ["ScoreError", "ScoreReport", "open_store", "score", "score_dataset"]


class ScoreError(Exception):
    """An input that makes scoring impossible as a whole: a truth or climatology without the
    requested data, a forecast store without any valid time after init, bad arguments. (A
    forecast variable that cannot be scored is not an error: it scores 0.)"""


class _VariableFailed(Exception):
    """A forecast variable the validator scores 0, with the reason."""


class _SelectionMissing(Exception):
    """The store lacks the variable, level or time asked for (as opposed to being unusable)."""


def _xarray():
    try:
        import xarray
    except ImportError as e:  # pragma: no cover - the test environment has xarray
        raise ImportError(
            "the xarray layer of wx_scoring needs xarray and pandas: "
            "pip install 'wx-scoring[xarray]'"
        ) from e
    return xarray


def open_store(path: str | os.PathLike) -> Any:
    """Opens a Zarr store (v2 or v3, consolidated or not) lazily, as the validator reads it:
    times CF-decoded, values raw (the readers apply the validator's CF decoding)."""
    xr = _xarray()
    try:
        with warnings.catch_warnings():
            # miner stores hold manifest.json/.sig beside the Zarr hierarchy, and many stores
            # are not consolidated: both are fine for the validator
            warnings.filterwarnings("ignore", message=".*not recognized as a component of a Zarr")
            warnings.filterwarnings("ignore", message=".*consolidated metadata")
            return xr.open_zarr(os.fspath(path), mask_and_scale=False, chunks=None)
    except Exception as e:
        raise ScoreError(f"cannot open the store {os.fspath(path)}: {e}") from e


def _rfc3339(t: np.datetime64) -> str:
    return np.datetime_as_string(t.astype("datetime64[s]"), unit="s") + "Z"


def _parse_init(init: Any) -> np.datetime64:
    if isinstance(init, np.datetime64):
        return init.astype("datetime64[ns]")
    if isinstance(init, _dt.datetime):
        if init.tzinfo is not None:
            init = init.astimezone(_dt.timezone.utc).replace(tzinfo=None)
        return np.datetime64(init, "ns")
    text = str(init).strip()
    try:
        parsed = _dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as e:
        raise ScoreError(f"init `{init}`: {e} (expected e.g. 2024-12-30T00:00:00Z)") from e
    return _parse_init(parsed)


@dataclasses.dataclass
class _Grid:
    lat_name: str
    lon_name: str
    lats: np.ndarray
    lons: np.ndarray


@dataclasses.dataclass
class _Layout:
    name: str
    fixed: dict[str, str]  # role -> dimension name
    level_dim: str | None
    levels: list[int]
    lat_dim: str
    lon_dim: str


class _Store:
    """One opened Dataset with its grid, for a role (forecast, truth, climatology, reference)."""

    def __init__(self, role: str, ds: Any, label: str):
        self.role = role
        self.ds = ds
        # the store's name in messages, as wx-data names it: "<role> <path>"
        self.label = label
        lat_name, lats = self._coordinate(cat.LATITUDE_DIMENSION_NAMES)
        lon_name, lons = self._coordinate(cat.LONGITUDE_DIMENSION_NAMES)
        self.grid = _Grid(lat_name, lon_name, lats, lons)

    def _coordinate(self, names: Sequence[str]) -> tuple[str, np.ndarray]:
        name = self.find(names)
        if name is None:
            raise ScoreError(
                f"store {self.label}: `{' | '.join(names)}` is missing; no coordinate array with "
                "any of these names"
            )
        values = np.asarray(self.ds.variables[name].values, dtype=np.float64)
        if values.ndim != 1 or values.size == 0 or not np.all(np.isfinite(values)):
            raise ScoreError(
                f"store {self.label}: `{name}`: coordinate is empty or has non-finite values"
            )
        return name, values

    def find(self, names: Sequence[str]) -> str | None:
        """The first of `names` the Dataset has (data variable or coordinate)."""
        return next((n for n in names if n in self.ds.variables), None)

    def time_axis(self) -> tuple[str, np.ndarray]:
        name = self.find(cat.TIME_DIMENSION_NAMES)
        if name is None:
            raise ScoreError(
                f"store {self.label}: `{' | '.join(cat.TIME_DIMENSION_NAMES)}` is missing; no "
                "time coordinate array"
            )
        values = np.asarray(self.ds.variables[name].values)
        if not np.issubdtype(values.dtype, np.datetime64):
            raise ScoreError(
                f"store {self.label}: `{name}`: time is not CF-decoded (expected a `units` "
                "attribute such as `hours since 2025-01-01T06:00:00`)"
            )
        values = values.astype("datetime64[ns]")
        if len(np.unique(values)) != len(values):
            raise ScoreError(f"store {self.label}: `{name}`: time values repeat")
        return name, values

    def resolve(self, variable: str, fixed: Mapping[str, Sequence[str]]) -> _Layout:
        """Finds a variable and checks its dimensions, dtype and units (the validator's
        `GriddedStore::resolve`). Raises `_SelectionMissing` or `_VariableFailed`."""
        names = cat.VARIABLES[variable]["accepted_names"]
        name = self.find(names)
        if name is None:
            raise _SelectionMissing(
                f"store {self.label}: variable {variable} not found (accepted names: "
                f"{', '.join(names)})"
            )
        array = self.ds.variables[name]

        def bad(message: str) -> _VariableFailed:
            return _VariableFailed(f"store {self.label}: `{name}`: {message}")

        packed = np.issubdtype(array.dtype, np.integer) and self.role in ("truth", "climatology")
        if array.dtype not in (np.float32, np.float64) and not packed:
            raise bad("data must be float32 or float64")
        problem = cat.units_problem(variable, array.attrs.get("units"))
        if problem is not None:
            raise bad(problem)
        roles: dict[str, str] = {}
        level_dim = lat_dim = lon_dim = None
        for dim in array.dims:
            role = next((r for r, ns in fixed.items() if dim in ns), None)
            if role is not None:
                slot = role
            elif dim == self.grid.lat_name:
                slot = "lat"
            elif dim == self.grid.lon_name:
                slot = "lon"
            elif dim in cat.LEVEL_DIMENSION_NAMES:
                slot = "level"
            else:
                raise bad(f"unexpected dimension `{dim}` (dims {list(array.dims)})")
            if slot in roles:
                raise bad(f"dimension role of `{dim}` appears twice")
            roles[slot] = dim
        for role, ns in fixed.items():
            if role not in roles:
                raise bad(f"no {role} dimension (one of {', '.join(ns)}) in dims {list(array.dims)}")
        lat_dim, lon_dim, level_dim = roles.get("lat"), roles.get("lon"), roles.get("level")
        if lat_dim is None or lon_dim is None:
            missing = self.grid.lat_name if lat_dim is None else self.grid.lon_name
            raise bad(f"no `{missing}` dimension in dims {list(array.dims)}")
        shape = dict(zip(array.dims, array.shape))
        if shape[lat_dim] != len(self.grid.lats) or shape[lon_dim] != len(self.grid.lons):
            raise bad(
                f"grid {shape[lat_dim]}×{shape[lon_dim]} does not match the coordinates "
                f"{len(self.grid.lats)}×{len(self.grid.lons)}"
            )
        surface = cat.VARIABLES[variable]["surface"]
        levels: list[int] = []
        if surface and level_dim is not None:
            raise bad(f"surface variable with a level dimension `{level_dim}`")
        if not surface:
            if level_dim is None:
                raise bad(
                    f"no level dimension (one of {', '.join(cat.LEVEL_DIMENSION_NAMES)}) in "
                    f"dims {list(array.dims)}"
                )
            if level_dim not in self.ds.variables:
                raise bad(f"the level coordinate `{level_dim}` is missing")
            raw = np.asarray(self.ds.variables[level_dim].values).ravel()
            for value in raw:
                hpa = cat.level_to_hpa(float(value))
                if hpa is None:
                    raise bad(f"level value {value} is not a whole number of hPa (or Pa)")
                levels.append(hpa)
            if len(levels) != shape[level_dim]:
                raise bad(
                    f"level dimension has {shape[level_dim]} entries but its coordinate "
                    f"{len(levels)}"
                )
        return _Layout(name, {r: roles[r] for r in fixed}, level_dim, levels, lat_dim, lon_dim)

    def read(self, layout: _Layout, fixed_indices: Mapping[str, int], sel: cat.Selection) -> np.ndarray:
        """One field as float32 (level, lat, lon): fixed dimensions at the given indices, the
        selection's levels exactly (none for a surface variable)."""
        index: dict[str, Any] = {layout.fixed[r]: i for r, i in fixed_indices.items()}
        wanted = sel.levels()
        if layout.level_dim is not None:
            positions = []
            for level in wanted:
                if level not in layout.levels:
                    raise _SelectionMissing(
                        f"store {self.label}: variable {sel.variable} has no level {level} hPa "
                        f"(levels in the store: {', '.join(map(str, layout.levels))})"
                    )
                positions.append(layout.levels.index(level))
            index[layout.level_dim] = positions
        array = self.ds.variables[layout.name].isel(index)
        if layout.level_dim is not None:
            array = array.transpose(layout.level_dim, layout.lat_dim, layout.lon_dim)
            values = np.asarray(array.values)
        else:
            values = np.asarray(array.transpose(layout.lat_dim, layout.lon_dim).values)[None]
        # CF decoding as the validator's (docs/data.md §1.5), then float64 sources are
        # rounded to float32, as the validator reads them
        attrs = self.ds.variables[layout.name].attrs
        decoded = _cf_decode(values, attrs, self.label, layout.name)
        return np.ascontiguousarray(decoded, dtype=np.float32)


def _cf_decode(raw: np.ndarray, attrs: Mapping[str, Any], label: str, name: str) -> np.ndarray:
    """Fill values (``_FillValue``, ``missing_value``, compared with the raw values) to NaN,
    then ``raw × scale_factor + add_offset`` in float64, rounded to float32 — xarray's CF
    decoding, which the validator's readers apply (wx-data ``zarr/cf.rs``)."""

    def number(attribute: str) -> float | None:
        value = attrs.get(attribute)
        if value is None:
            return None
        try:
            number = float(value)
        except (TypeError, ValueError):
            number = float("nan")
        if not np.isfinite(number) or isinstance(value, (bool, str)):
            raise ScoreError(
                f"store {label}: `{name}`: attribute `{attribute}` of `{name}` is {value!r}, "
                "not a finite number; fix or remove it (CF: a finite number)"
            )
        return number

    scale, offset = number("scale_factor"), number("add_offset")
    fills = []
    for attribute in ("_FillValue", "missing_value"):
        value = attrs.get(attribute)
        if value is not None:
            fills.extend(np.atleast_1d(np.asarray(value, dtype=np.float64)).tolist())
    fills = [f for f in fills if not np.isnan(f)]
    if not fills and scale is None and offset is None:
        return raw
    missing = np.isin(raw, np.asarray(fills).astype(raw.dtype)) if fills else None
    values = raw.astype(np.float64) if (scale is not None or offset is not None) else raw
    if scale is not None:
        values = values * scale
    if offset is not None:
        values = values + offset
    values = values.astype(np.float32)
    if missing is not None:
        values[missing] = np.nan
    return values


class _TimeStore(_Store):
    """A store with a time axis: the forecast (miner layout), the truth or the reference."""

    def __init__(self, role: str, ds: Any, label: str):
        super().__init__(role, ds, label)
        self.time_name, self.times = self.time_axis()

    def time_index(self, layout_name: str, valid: np.datetime64) -> int:
        hits = np.flatnonzero(self.times == valid)
        if hits.size == 0:
            raise _SelectionMissing(
                f"store {self.label}: valid time {_rfc3339(valid)} is not in `{layout_name}` "
                f"(times in the store: {_summarize_times(self.times)})"
            )
        return int(hits[0])

    def read_at(self, sel: cat.Selection, valid: np.datetime64) -> np.ndarray:
        layout = self.resolve(sel.variable, {"time": (self.time_name,)})
        return self.read(layout, {"time": self.time_index(layout.name, valid)}, sel)


class _Forecast(_TimeStore):
    """A miner's forecast store: validated per variable before any data is read."""

    def __init__(self, ds: Any, label: str, init: np.datetime64):
        super().__init__("forecast", ds, label)
        if not np.any(self.times > init):
            raise ScoreError(
                f"store {self.label}: `{self.time_name}`: no valid time after the run's init "
                f"{_rfc3339(init)} (times: {_summarize_times(self.times)})"
            )
        self.problems: dict[str, str] = {}
        self.layouts: dict[str, _Layout] = {}
        for variable in cat.VARIABLES:
            try:
                layout = self.resolve(variable, {"time": (self.time_name,)})
                if self.ds.variables[layout.name].dtype != np.float32:
                    raise _VariableFailed(
                        f"store {self.label}: `{layout.name}`: miner data must be float32 "
                        "(<f4); this is float64"
                    )
                self.layouts[variable] = layout
            except (_SelectionMissing, _VariableFailed) as e:
                self.problems[variable] = str(e)

    def read_forecast(self, sel: cat.Selection, valid: np.datetime64) -> np.ndarray:
        """The field, or `_VariableFailed` when the validator scores the variable 0."""
        if sel.variable in self.problems:
            raise _VariableFailed(self.problems[sel.variable])
        layout = self.layouts[sel.variable]
        try:
            return self.read(layout, {"time": self.time_index(layout.name, valid)}, sel)
        except _SelectionMissing as e:
            raise _VariableFailed(str(e)) from e


class _Climatology(_Store):
    """A WeatherBench2 hourly climatology: nearest day of year, valid hour floored to the
    store's hour step, nearest hour."""

    def __init__(self, ds: Any, label: str):
        super().__init__("climatology", ds, label)
        for name in ("hour", "dayofyear"):
            if name not in ds.variables:
                raise ScoreError(
                    f"store {self.label}: `{name}` is missing; the coordinate array `{name}` is "
                    "missing"
                )
        self.hours = np.asarray(ds.variables["hour"].values, dtype=np.float64).ravel()
        self.days = np.asarray(ds.variables["dayofyear"].values, dtype=np.float64).ravel()
        if self.hours.size == 0 or np.any((self.hours < 0) | (self.hours >= 24) | (self.hours % 1 != 0)):
            raise ScoreError(f"store {self.label}: `hour`: hours must be whole numbers in 0..23")
        if self.days.size == 0 or np.any((self.days < 1) | (self.days > 366)):
            raise ScoreError(
                f"store {self.label}: `dayofyear`: days of year must be in 1..366"
            )
        unique = np.unique(self.hours)
        self.hour_step = int(np.min(np.diff(unique))) if unique.size > 1 else 24

    @staticmethod
    def _nearest(values: np.ndarray, target: float) -> int:
        best = 0
        for i, v in enumerate(values):
            if abs(v - target) < abs(values[best] - target):
                best = i
        return best

    def selected(self, valid: np.datetime64) -> tuple[int, int]:
        """Indices of the (hour, dayofyear) the validator selects for a valid time."""
        t = valid.astype("datetime64[s]").item()
        hour = t.hour // self.hour_step * self.hour_step
        day = t.timetuple().tm_yday
        return self._nearest(self.hours, float(hour)), self._nearest(self.days, float(day))

    def read_at(self, sel: cat.Selection, valid: np.datetime64) -> np.ndarray:
        layout = self.resolve(sel.variable, {"hour": ("hour",), "dayofyear": ("dayofyear",)})
        h, d = self.selected(valid)
        return self.read(layout, {"hour": h, "dayofyear": d}, sel)


#: Root attributes of an ARCO-ERA5-layout truth store that give its published extent (dates,
#: ``YYYY-MM-DD``; the whole named day is published). docs/data.md §3.3.
VALID_TIME_START = "valid_time_start"
VALID_TIME_STOP = "valid_time_stop"
VALID_TIME_STOP_ERA5T = "valid_time_stop_era5t"


def _attribute_day(truth: "_TimeStore", name: str) -> np.datetime64 | None:
    value = truth.ds.attrs.get(name)
    if value is None:
        return None
    if not isinstance(value, str):
        raise ScoreError(
            f"store {truth.label}: `{name}`: root attribute `{name}` = {value!r} is not a date "
            "string (YYYY-MM-DD)"
        )
    text = value.strip()
    try:
        return np.datetime64(_dt.date.fromisoformat(text[:10]), "D")
    except ValueError:
        raise ScoreError(
            f"store {truth.label}: `{name}`: root attribute `{name}` = {value!r} is not a date "
            "(YYYY-MM-DD); fix the store's metadata or point the validator at another copy"
        ) from None


class _Extent:
    """What the truth store declares published (``Era5Reader::extent`` of the validator)."""

    def __init__(self, truth: "_TimeStore", final_only: bool):
        def end_of_day(day: np.datetime64) -> np.datetime64:
            return (day + np.timedelta64(1, "D")).astype("datetime64[ns]") - np.timedelta64(1, "s")

        start = _attribute_day(truth, VALID_TIME_START)
        stop = _attribute_day(truth, VALID_TIME_STOP)
        stop_era5t = _attribute_day(truth, VALID_TIME_STOP_ERA5T)
        self.start = None if start is None else start.astype("datetime64[ns]")
        if not final_only and stop_era5t is not None:
            self.until = end_of_day(stop_era5t)
        elif stop is not None:
            self.until = end_of_day(stop)
        elif final_only and stop_era5t is not None:
            self.until = None  # only ERA5T declared: nothing final is published
        else:
            self.until = truth.times.max() if len(truth.times) else None

    def covers(self, valid: np.datetime64) -> bool:
        return self.until is not None and valid <= self.until


def _chunk_absent(truth: "_TimeStore", path: str | None, array: str, t: int) -> bool:
    """Whether a chunk of ``array`` at time index ``t`` is missing from the store at ``path``
    (a local directory; a Dataset passed in memory has nothing to check)."""
    if path is None or not os.path.isdir(path):
        return False
    import itertools

    import zarr

    arr = zarr.open_array(os.path.join(path, array), mode="r")
    dims = list(truth.ds[array].dims)
    time_axis = dims.index(truth.time_name)
    # a sharded array's objects are its shards (zarr-python 3); the inner chunks are inside
    stored = getattr(arr, "shards", None) or arr.chunks
    per_dim = []
    for axis, (size, chunk) in enumerate(zip(arr.shape, stored)):
        if axis == time_axis:
            per_dim.append([t // chunk])
        else:
            per_dim.append(range(-(-size // chunk)))
    encode = getattr(arr.metadata, "encode_chunk_key", None)
    for coords in itertools.product(*per_dim):
        key = encode(coords) if encode is not None else arr._chunk_key(coords)
        if not os.path.exists(os.path.join(path, array, key)):
            return True
    return False


def _publication(
    truth: "_TimeStore", path: str | None, extent: _Extent, valid: np.datetime64,
    variables: Sequence[str],
) -> bool:
    """Whether the truth at ``valid`` is published (``Era5Reader::publication_within``):
    within the extent, on the time axis, its chunks present. A time the store will never have
    raises :class:`ScoreError`."""
    if extent.start is not None and valid < extent.start:
        first = np.datetime_as_string(extent.start, unit="D")
        raise ScoreError(
            f"store {truth.label}: `{VALID_TIME_START}`: valid time {_rfc3339(valid)} is before "
            f"the store's first day {first} (`{VALID_TIME_START}`): this store will never have "
            "it; use a store that covers it"
        )
    if not extent.covers(valid):
        return False
    hits = np.flatnonzero(truth.times == valid)
    if hits.size == 0:
        if len(truth.times) == 0 or valid > truth.times.max():
            return False
        raise ScoreError(
            f"store {truth.label}: valid time {_rfc3339(valid)} is not in `{truth.time_name}` "
            f"(times in the store: {_summarize_times(truth.times)})"
        )
    for variable in variables:
        try:
            layout = truth.resolve(variable, {"time": (truth.time_name,)})
        except (_SelectionMissing, _VariableFailed):
            continue  # the read reports it, with its own message
        if _chunk_absent(truth, path, layout.name, int(hits[0])):
            return False
    return True


@dataclasses.dataclass
class ScoreReport:
    """What ``wx-step score`` reports: per-level field metrics, per-variable aggregates with
    their lead components, and lead scores."""

    #: The init time, RFC 3339.
    init: str
    #: One dict per (lead, variable, level): variable, level (0 for surface), lead_hours,
    #: rmse, mse, mae, bias, acc, skill_clim, rmse_clim, [skill_ref, clone_distance], coverage.
    fields: list[dict[str, Any]]
    #: One dict per (lead, selection): variable, lead_hours, rmse, acc, skill_clim,
    #: lead_component, error.
    variables: list[dict[str, Any]]
    #: Lead hours → lead score.
    lead_scores: dict[int, float]
    #: Leads whose truth is not published yet (not scored): one dict per lead with
    #: lead_hours, valid_time and published_until (the truth's extent, None if nothing).
    pending_leads: list[dict[str, Any]] = dataclasses.field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        """The JSON document of ``wx-step score`` (lead score keys as strings)."""
        return {
            "init": self.init,
            "fields": self.fields,
            "variables": self.variables,
            "lead_scores": {str(k): v for k, v in sorted(self.lead_scores.items())},
            "pending_leads": self.pending_leads,
        }

    def fields_frame(self) -> Any:
        """The field metrics as a tidy DataFrame: one row per variable, level and lead."""
        import pandas as pd

        return pd.DataFrame(self.fields)

    def variables_frame(self) -> Any:
        """The per-variable aggregates and lead components as a DataFrame."""
        import pandas as pd

        return pd.DataFrame(self.variables)


def _as_dataset(role: str, obj: Any) -> tuple[Any, str]:
    """The Dataset and its name in messages (``<role> <path>`` as wx-data names stores)."""
    if isinstance(obj, (str, os.PathLike)):
        return open_store(obj), f"{role} {os.fspath(obj)}"
    return obj, f"{role} (xarray Dataset)"


def _summarize_times(times: np.ndarray) -> str:
    if len(times) == 0:
        return "none"
    if len(times) <= 6:
        return ", ".join(_rfc3339(t) for t in times)
    return (
        f"{_rfc3339(times[0])}, {_rfc3339(times[1])}, …, {_rfc3339(times[-1])} "
        f"({len(times)} times)"
    )


def _check(leads: Sequence[int], selections: Sequence[cat.Selection]) -> None:
    if not leads or any(int(lead) <= 0 for lead in leads):
        raise ScoreError("leads needs positive lead hours (e.g. 24,48)")
    if not selections:
        raise ScoreError("variables is empty")
    keys = [s.key for s in selections]
    if len(set(keys)) != len(keys):
        raise ScoreError("variables names a selection twice")


def _scored_rows(variable: str, lead: int, levels: list[int], metrics: Any, reference: Any) -> list[dict]:
    """The per-level rows of one selection at one lead (all None for a failed variable)."""
    rows = []
    per = metrics.per_level if metrics is not None else None
    for i, level in enumerate(levels or [0]):
        m = per[i] if per is not None else None
        row: dict[str, Any] = {
            "variable": variable,
            "level": level,
            "lead_hours": lead,
        }
        for k in ("rmse", "mse", "mae", "bias", "acc", "skill_clim", "rmse_clim"):
            row[k] = getattr(m, k) if m is not None else None
        if reference is not None:
            ok = m is not None and reference is True
            row["skill_ref"] = m.skill_ref if ok else None
            row["clone_distance"] = m.clone_distance if ok else None
        row["coverage"] = m.coverage if m is not None else None
        rows.append(row)
    return rows


def score(
    forecast: Any,
    truth: Any,
    climatology: Any,
    *,
    init: Any,
    leads: Sequence[int],
    variables: Sequence[str] | None = None,
    reference: Any = None,
    config: Mapping[str, Any] | None = None,
    final_only: bool = False,
) -> ScoreReport:
    """Scores a forecast against a truth and a climatology for the given leads, exactly as
    ``wx-step score`` (and the validator's ERA5 step) does.

    Parameters
    ----------
    forecast : xarray.Dataset or path
        The miner-layout forecast (a path is opened with :func:`open_store`).
    truth : xarray.Dataset or path
        ERA5 (ARCO layout) or any store with the miner layout.
    climatology : xarray.Dataset or path
        A WeatherBench2 hourly climatology.
    init : str, datetime or numpy.datetime64
        The forecast's init time (UTC), e.g. ``"2024-12-30T00:00:00Z"``.
    leads : sequence of int
        Lead hours; the valid time is init + lead.
    variables : sequence of str, optional
        Selections such as ``"2t"``, ``"t"`` (all 13 levels), ``"z500"``; default: the
        config's ERA5 variables (the nine of the validator).
    reference : xarray.Dataset or path, optional
        A reference forecast: adds ``skill_ref`` and ``clone_distance`` per field.
    config : dict, optional
        The validator's ``[scoring]`` section (see :func:`wx_scoring.default_config`).
    final_only : bool, optional
        The validator's ``[data] era5_final_only``: the truth is published up to its
        ``valid_time_stop`` instead of ``valid_time_stop_era5t``.

    A lead whose truth is not published yet (after the extent of the truth's root attributes
    ``valid_time_stop_era5t``/``valid_time_stop``, beyond its time axis, or with a chunk absent
    from a store given as a path) is listed in ``pending_leads`` and not scored.

    Returns
    -------
    ScoreReport
    """
    config = dict(config or {})
    if variables is None:
        variables = list(config.get("era5", {}).get("variables", cat.ERA5_VARIABLES))
    try:
        selections = [cat.parse_selection(v) for v in variables]
    except ValueError as e:
        raise ScoreError(str(e)) from e
    leads = [int(lead) for lead in leads]
    _check(leads, selections)
    keys = [s.key for s in selections]
    # the request's variables and leads, equal weights (wx-step score's request_config)
    request_config = dict(config)
    era5 = dict(request_config.get("era5", {}))
    era5.update(variables=keys, leads=leads, variable_weights={})
    request_config["era5"] = era5
    try:
        _core.effective_config(request_config)
    except ValueError as e:
        raise ScoreError(f"invalid scoring configuration: {e}") from e
    t0 = _parse_init(init)
    forecast_store = _Forecast(*_as_dataset("forecast", forecast), t0)
    truth_store = _TimeStore("truth", *_as_dataset("truth", truth))
    truth_path = os.fspath(truth) if isinstance(truth, (str, os.PathLike)) else None
    extent = _Extent(truth_store, final_only)
    truth_variables = sorted({sel.variable for sel in selections})
    climatology_store = _Climatology(*_as_dataset("climatology", climatology))
    reference_store = (
        _TimeStore("reference", *_as_dataset("reference", reference))
        if reference is not None
        else None
    )
    report = ScoreReport(_rfc3339(t0), [], [], {})
    for lead in leads:
        valid = t0 + np.timedelta64(lead, "h")
        if not _publication(truth_store, truth_path, extent, valid, truth_variables):
            report.pending_leads.append(
                {
                    "lead_hours": lead,
                    "valid_time": _rfc3339(valid),
                    "published_until": None if extent.until is None else _rfc3339(extent.until),
                }
            )
            continue
        outcomes: dict[str, Any] = {}
        pairs = []
        for sel in selections:
            at = f"{sel.key} at {_rfc3339(valid)}"
            try:
                truth_values = truth_store.read_at(sel, valid)
            except (_SelectionMissing, _VariableFailed) as e:
                raise ScoreError(f"reading the truth of {at}: {e}") from e
            try:
                clim_values = climatology_store.read_at(sel, valid)
            except (_SelectionMissing, _VariableFailed) as e:
                raise ScoreError(f"reading the climatology of {at}: {e}") from e
            reference_values = None
            if reference_store is not None:
                try:
                    reference_values = reference_store.read_at(sel, valid)
                except _SelectionMissing:
                    reference_values = None  # its metrics are None, nothing else
                except _VariableFailed as e:
                    raise ScoreError(f"reading the reference of {at}: {e}") from e
            levels = sel.levels()
            try:
                forecast_values = forecast_store.read_forecast(sel, valid)
            except _VariableFailed as e:
                outcomes[sel.key] = str(e)
                pairs.append((sel, levels, None, None))
                continue
            outcome, with_reference = _score_pair(
                forecast_store,
                forecast_values,
                truth_store,
                truth_values,
                climatology_store,
                clim_values,
                reference_store,
                reference_values,
                levels,
                request_config,
            )
            outcomes[sel.key] = outcome
            pairs.append((sel, levels, outcome, with_reference))
        lead_result = _core.lead_score(outcomes, config=request_config)
        report.lead_scores[lead] = lead_result["score"]
        for (sel, levels, outcome, with_reference), scored in zip(pairs, lead_result["variables"]):
            metrics = outcome if isinstance(outcome, _core.VariableMetrics) else None
            reference_flag = None if reference_store is None else bool(with_reference)
            report.fields.extend(_scored_rows(sel.variable, lead, levels, metrics, reference_flag))
            report.variables.append(
                {
                    "variable": sel.key,
                    "lead_hours": lead,
                    "rmse": metrics.rmse if metrics is not None else None,
                    "acc": metrics.acc if metrics is not None else None,
                    "skill_clim": metrics.skill_clim if metrics is not None else None,
                    "lead_component": scored["lead_component"],
                    "error": scored["failure"],
                }
            )
    return report


def _score_pair(
    forecast_store: _Store,
    forecast_values: np.ndarray,
    truth_store: _Store,
    truth_values: np.ndarray,
    climatology_store: _Store,
    clim_values: np.ndarray,
    reference_store: _Store | None,
    reference_values: np.ndarray | None,
    levels: list[int],
    config: Mapping[str, Any],
) -> tuple[Any, bool]:
    """The validator's alignment and metrics for one (selection, lead): the outcome (metrics,
    or a failure message) and whether reference metrics were computed."""
    try:
        truth_on_grid, lats, lons = _core.to_canonical(
            truth_values, truth_store.grid.lats, truth_store.grid.lons
        )
        on_grid = [
            _core.regrid(values, store.grid.lats, store.grid.lons, lats, lons)
            for store, values in (
                (forecast_store, forecast_values),
                (climatology_store, clim_values),
            )
        ]
    except ValueError as e:
        return str(e), False
    reference_on_grid = None
    if reference_store is not None and reference_values is not None:
        try:
            reference_on_grid = _core.regrid(
                reference_values, reference_store.grid.lats, reference_store.grid.lons, lats, lons
            )
        except ValueError:
            reference_on_grid = None
    try:
        metrics = _core.score_variable(
            on_grid[0],
            truth_on_grid,
            on_grid[1],
            lats,
            [float(level) for level in levels] if levels else None,
            reference=reference_on_grid,
            config=config,
        )
    except ValueError as e:
        return str(e), False
    return metrics, reference_on_grid is not None


def score_dataset(
    forecast: Any,
    truth: Any,
    climatology: Any,
    *,
    init: Any,
    leads: Sequence[int],
    variables: Sequence[str] | None = None,
    reference: Any = None,
    config: Mapping[str, Any] | None = None,
) -> Any:
    """:func:`score` as a tidy :class:`pandas.DataFrame`: one row per variable, level and lead
    with the columns variable, level (hPa, 0 for surface), lead_hours, rmse, mse, mae, bias,
    acc, skill_clim, rmse_clim, [skill_ref, clone_distance,] coverage. Use :func:`score` for
    the per-variable lead components and the lead scores too."""
    return score(
        forecast,
        truth,
        climatology,
        init=init,
        leads=leads,
        variables=variables,
        reference=reference,
        config=config,
    ).fields_frame()
