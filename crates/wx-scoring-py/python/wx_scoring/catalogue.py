"""The validator's catalogue: variable keys and the names accepted for them, units, level and
coordinate names, pressure levels and the default Day1 and ERA5 selections.

The data is ``catalogue.json`` beside this file, a copy of the validator's catalogue that the
package's Rust tests check against it entry by entry.
"""

from __future__ import annotations

import dataclasses
import json
import math
from importlib import resources

_DATA = json.loads(resources.files(__package__).joinpath("catalogue.json").read_text("utf-8"))

#: Variable key → ``{"surface", "units", "long_name", "accepted_names"}``.
VARIABLES: dict[str, dict] = _DATA["variables"]
#: Names accepted for the pressure-level dimension.
LEVEL_DIMENSION_NAMES: tuple[str, ...] = tuple(_DATA["level_dimension_names"])
#: Names accepted for the latitude coordinate, in the order they are looked up.
LATITUDE_DIMENSION_NAMES: tuple[str, ...] = tuple(_DATA["latitude_dimension_names"])
#: Names accepted for the longitude coordinate, in the order they are looked up.
LONGITUDE_DIMENSION_NAMES: tuple[str, ...] = tuple(_DATA["longitude_dimension_names"])
#: Names accepted for the time coordinate, in the order they are looked up.
TIME_DIMENSION_NAMES: tuple[str, ...] = tuple(_DATA["time_dimension_names"])
#: The 13 pressure levels scored (hPa), ascending.
PRESSURE_LEVELS_HPA: tuple[int, ...] = tuple(_DATA["pressure_levels_hpa"])
#: Level coordinate values above this are in Pa and divided by 100.
PA_LEVEL_THRESHOLD: float = _DATA["pa_level_threshold"]
#: Day1 variable selections and leads (hours).
DAY1_VARIABLES: tuple[str, ...] = tuple(_DATA["day1_variables"])
DAY1_LEADS: tuple[int, ...] = tuple(_DATA["day1_leads"])
#: ERA5 variable selections and leads (hours).
ERA5_VARIABLES: tuple[str, ...] = tuple(_DATA["era5_variables"])
ERA5_LEADS: tuple[int, ...] = tuple(_DATA["era5_leads"])
_UNIT_SPELLINGS: dict[str, str] = _DATA["unit_spellings"]


@dataclasses.dataclass(frozen=True)
class Selection:
    """A variable, at one pressure level (``z500``) or all of them (``t``), or a surface field."""

    variable: str
    level: int | None = None

    @property
    def key(self) -> str:
        """The key used in scores and configuration: ``2t``, ``z``, ``z500``."""
        return self.variable if self.level is None else f"{self.variable}{self.level}"

    @property
    def is_surface(self) -> bool:
        """Whether the variable is a single-level field."""
        return VARIABLES[self.variable]["surface"]

    def levels(self) -> list[int]:
        """The levels scored: none for a surface variable, one for ``z500``, all 13 for ``z``."""
        if self.is_surface:
            return []
        if self.level is not None:
            return [self.level]
        return list(PRESSURE_LEVELS_HPA)


def parse_selection(text: str) -> Selection:
    """Parses ``2t``, ``z`` or ``z500`` (a level only on multi-level variables, one of the 13).

    Raises ``ValueError`` naming what is accepted otherwise.
    """
    s = text.strip()
    if s in VARIABLES:
        return Selection(s)
    split = next((i for i, c in enumerate(s) if c.isdigit()), len(s))
    name, digits = s[:split], s[split:]
    if name in VARIABLES and not VARIABLES[name]["surface"] and digits.isdigit():
        level = int(digits)
        if level in PRESSURE_LEVELS_HPA:
            return Selection(name, level)
    raise ValueError(
        f"invalid variable selection `{text}`: expected a variable key (2t, 10u, 10v, msl, t, u, "
        "v, q, z) or a level of t/u/v/q/z in hPa (e.g. z500)"
    )


def variable_from_store_name(name: str) -> str | None:
    """The variable key a store name denotes (exact match on the accepted names), if any."""
    for key, v in VARIABLES.items():
        if name in v["accepted_names"]:
            return key
    return None


def level_to_hpa(value: float) -> int | None:
    """A level coordinate value in hPa (values above 2000 are Pa), or None when it is not a
    positive whole number of hPa."""
    v = float(value)
    if not math.isfinite(v) or v <= 0.0:
        return None
    hpa = v / 100.0 if v > PA_LEVEL_THRESHOLD else v
    rounded = float(round(hpa))
    if abs(hpa - rounded) > 1e-6 or rounded > 65535:
        return None
    return int(rounded)


def normalise_units(units: str) -> str:
    """Unifies spellings of a ``units`` attribute (``m s**-1``, ``m/s`` → ``m s-1``;
    ``kelvin`` → ``K``); no conversion between different units (``hPa`` stays ``hPa``)."""
    compact = " ".join(units.strip().lower().replace("**", "").replace("^", "").split())
    return _UNIT_SPELLINGS.get(compact, units.strip())


def units_problem(variable: str, units: str | None) -> str | None:
    """Why a ``units`` attribute does not fit the variable, or None (missing units are fine)."""
    if units is None or not str(units).strip():
        return None
    expected = VARIABLES[variable]["units"]
    if normalise_units(str(units)) == expected:
        return None
    return (
        f"variable {variable} has units `{units}` but wx scores it in `{expected}`; write the "
        f"store in {expected} (no unit conversion is guessed)"
    )
