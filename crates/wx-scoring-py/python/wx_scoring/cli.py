"""``python -m wx_scoring score``: ``wx-step score`` for local stores, in Python.

The same arguments (``--forecast --truth --climatology [--reference] --init --leads
[--variables] [--format json|table|csv] [--config wx.toml]``) and the same JSON document: the
fields (one per lead, variable and level), the variables (aggregates and lead components) and
the lead scores. Errors are one ``error: …`` line on stderr and exit code 1.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from typing import Any


def _leads(text: str) -> list[int]:
    try:
        return [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid lead hours `{text}` (e.g. 24,48)") from None


def _variables(text: str) -> list[str]:
    from . import catalogue

    out = []
    for part in text.split(","):
        try:
            out.append(catalogue.parse_selection(part).key)
        except ValueError as e:
            raise argparse.ArgumentTypeError(str(e)) from None
    return out


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m wx_scoring",
        description="Score forecasts exactly as the wx validator does.",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    score = commands.add_parser(
        "score",
        help="score a forecast store against a truth store and a climatology (JSON or a table)",
    )
    score.add_argument("--forecast", required=True, help="the forecast store (miner layout)")
    score.add_argument(
        "--truth", required=True, help="the truth store (miner layout; ARCO-ERA5 layout too)"
    )
    score.add_argument(
        "--climatology", required=True, help="the climatology store (WeatherBench2 layout)"
    )
    score.add_argument(
        "--reference", help="a reference forecast: adds skill_ref and clone_distance per field"
    )
    score.add_argument(
        "--init", required=True, help="the forecast's init time, e.g. 2024-12-28T00:00:00Z"
    )
    score.add_argument(
        "--leads",
        required=True,
        action="extend",
        type=_leads,
        help="leads in hours, comma separated",
    )
    score.add_argument(
        "--variables",
        action="extend",
        type=_variables,
        help="2t,10u,10v,msl,t,u,v,q,z or one level such as z500 (default: the configuration's "
        "ERA5 variables, i.e. those nine)",
    )
    score.add_argument("--format", choices=("json", "table", "csv"), default="json")
    for p in (parser, score):
        p.add_argument(
            "--config",
            "-c",
            # given before `score`, it must survive the subcommand's own default
            default=None if p is parser else argparse.SUPPRESS,
            help="the validator's configuration file (TOML); its [scoring] section and "
            "[data] era5_final_only apply",
        )
    return parser


def _config_file(path: str | None) -> dict[str, Any]:
    if path is None:
        return {}
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        import tomli as tomllib  # type: ignore[no-redef]
    with open(path, "rb") as f:
        return dict(tomllib.load(f))


def _scoring_section(config: dict[str, Any]) -> dict[str, Any]:
    return dict(config.get("scoring", {}))


def _final_only(config: dict[str, Any]) -> bool:
    """The validator's ``[data] era5_final_only`` (final ERA5 only, not ERA5T)."""
    return bool(config.get("data", {}).get("era5_final_only", False))


def _num(x: float | None) -> str:
    if x is None:
        return "-"
    if x == 0.0 or 1e-3 <= abs(x) < 1e6:
        return f"{x:.4f}"
    return _rust_exp(x, 3)


def _rust_exp(x: float, digits: int) -> str:
    """Rust's `{:.3e}`: mantissa with `digits` decimals, exponent without padding or `+`."""
    mantissa, exponent = f"{x:.{digits}e}".split("e")
    return f"{mantissa}e{int(exponent)}"


def format_table(doc: dict[str, Any]) -> str:
    """The report as aligned text tables, as ``wx-step score --format table`` prints it."""
    fields = doc["fields"]
    with_ref = any("skill_ref" in f for f in fields)
    out = [f"init {doc['init']}\n"]
    head = (
        f"{'var':<5} {'level':>5} {'lead':>5} {'rmse':>11} {'mse':>11} {'mae':>11} "
        f"{'bias':>11} {'acc':>8} {'skill_clim':>10} {'rmse_clim':>11}"
    )
    if with_ref:
        head += f" {'skill_ref':>10} {'clone_dist':>11}"
    out.append(head + f" {'coverage':>9}\n")
    for f in fields:
        line = (
            f"{f['variable']:<5} {f['level']:>5} {f['lead_hours']:>5} {_num(f['rmse']):>11} "
            f"{_num(f['mse']):>11} {_num(f['mae']):>11} {_num(f['bias']):>11} "
            f"{_num(f['acc']):>8} {_num(f['skill_clim']):>10} {_num(f['rmse_clim']):>11}"
        )
        if with_ref:
            line += f" {_num(f.get('skill_ref')):>10} {_num(f.get('clone_distance')):>11}"
        out.append(line + f" {_num(f['coverage']):>9}\n")
    out.append("\n")
    out.append(
        f"{'variable':<8} {'lead':>5} {'rmse':>11} {'acc':>8} {'skill_clim':>10} "
        f"{'lead_component':>14}  error\n"
    )
    for v in doc["variables"]:
        out.append(
            f"{v['variable']:<8} {v['lead_hours']:>5} {_num(v['rmse']):>11} {_num(v['acc']):>8} "
            f"{_num(v['skill_clim']):>10} {v['lead_component']:>14.6f}  {v['error'] or ''}\n"
        )
    out.append("\n")
    out.append(f"{'lead':>5} {'score':>10}\n")
    for lead, s in doc["lead_scores"].items():
        out.append(f"{lead:>5} {s:>10.6f}\n")
    if doc["pending_leads"]:
        out.append("\n")
        out.append(f"{'lead':>5} {'pending (valid time)':<21} truth published until\n")
        for p in doc["pending_leads"]:
            until = p["published_until"] or "nothing"
            out.append(f"{p['lead_hours']:>5} {p['valid_time']:<21} {until}\n")
    return "".join(out)


#: The CSV columns of ``wx-step score --format csv`` (docs/outputs.md), in order.
CSV_COLUMNS = (
    "init_time", "lead_time", "lead_hours", "valid_time", "variable", "short_name", "level",
    "region", "rmse", "mse", "mae", "bias", "acc", "skill_clim", "rmse_clim", "skill_ref",
    "clone_distance", "coverage", "error",
)


def _iso_duration(hours: int) -> str:
    days, hours = divmod(hours, 24)
    if days == 0:
        return f"PT{hours}H"
    return f"P{days}D" if hours == 0 else f"P{days}DT{hours}H"


def format_csv(doc: dict[str, Any]) -> str:
    """One row per field in WeatherBench2's long layout, as ``wx-step score --format csv``
    prints it (the same cells; numbers in Python's shortest round-trip form)."""
    import csv
    import datetime as dt
    import io

    from . import catalogue as cat

    init = dt.datetime.fromisoformat(doc["init"].replace("Z", "+00:00"))
    failures = {}
    for v in doc["variables"]:
        if v["error"] is not None:
            sel = cat.parse_selection(v["variable"])
            failures[(sel.variable, sel.level, v["lead_hours"])] = v["error"]
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for f in doc["fields"]:
        lead = f["lead_hours"]
        valid = (init + dt.timedelta(hours=lead)).strftime("%Y-%m-%dT%H:%M:%SZ")
        level = f["level"] or None
        error = failures.get((f["variable"], level, lead)) or failures.get(
            (f["variable"], None, lead)
        )
        cells = [
            doc["init"], _iso_duration(lead), lead, valid,
            cat.VARIABLES[f["variable"]]["long_name"], f["variable"], level, "global",
            *(f.get(m) for m in ("rmse", "mse", "mae", "bias", "acc", "skill_clim", "rmse_clim",
                                 "skill_ref", "clone_distance", "coverage")),
            error,
        ]
        writer.writerow("" if c is None else (repr(c) if isinstance(c, float) else c)
                        for c in cells)
    return buffer.getvalue()


def main(argv: Sequence[str] | None = None) -> int:
    """Runs the command line; returns the exit code."""
    args = _parser().parse_args(argv)
    try:
        from .datasets import score

        config = _config_file(args.config)  # read once
        report = score(
            args.forecast,
            args.truth,
            args.climatology,
            init=args.init,
            leads=args.leads,
            variables=args.variables,
            reference=args.reference,
            config=_scoring_section(config),
            final_only=_final_only(config),
        )
        doc = report.to_json()
    except Exception as e:  # one line, as wx-step prints its errors
        message = " ".join(str(e).split()) or type(e).__name__
        print(f"error: {message}", file=sys.stderr)
        return 1
    if args.format == "json":
        print(json.dumps(doc, indent=2))
    elif args.format == "csv":
        sys.stdout.write(format_csv(doc))
    else:
        sys.stdout.write(format_table(doc))
    return 0
