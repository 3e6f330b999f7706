"""Chronon's staging-query macros: ``{{ start_date }}``, ``{{ end_date }}``, ``{{ latest_date }}``,
``{{ max_date(table=ns.t) }}``. Any other ``{{ ... }}`` is a ConfigError.

- start_date / end_date: the first and last ds of the chunk being computed.
- latest_date: the last ds of the whole requested range (the same for every chunk).
- max_date(table=ns.t): the latest ds partition of table ns.t (an error if it has none).
"""
import datetime as dt
import re
from typing import Callable, Optional

from chronon_cli.errors import ConfigError

MACRO = re.compile(r"\{\{\s*(.*?)\s*\}\}", re.S)
_CALL = re.compile(r"^([A-Za-z_]\w*)\s*(?:\((.*)\))?$", re.S)
KNOWN = ("start_date", "end_date", "latest_date", "max_date(table=ns.t)")


def render(text: str, start: dt.date, end: dt.date, latest: dt.date,
           max_date: Optional[Callable[[str], dt.date]] = None, where: Optional[str] = None) -> str:
    """``text`` with every macro replaced by a 'YYYY-MM-DD' date."""
    def replace(match: "re.Match[str]") -> str:
        body = match.group(1)
        call = _CALL.match(body)
        name, args = (call.group(1), call.group(2)) if call else (body, None)
        if args is None:
            if name == "start_date":
                return start.isoformat()
            if name == "end_date":
                return end.isoformat()
            if name == "latest_date":
                return latest.isoformat()
        elif name == "max_date":
            kwargs = _kwargs(args, body, where)
            table = kwargs.pop("table", None)
            if not table or kwargs:
                raise ConfigError(f"max_date takes one argument, table=namespace.table: {{{{ {body} }}}}",
                                  field=where)
            if max_date is None:
                raise ConfigError("max_date is not available here", field=where)
            return max_date(table).isoformat()
        from chronon_cli.suggest import did_you_mean

        raise ConfigError(f"unknown macro {{{{ {body} }}}}{did_you_mean(name, [k.split('(')[0] for k in KNOWN])}",
                          field=where, hint=f"known macros: {', '.join('{{ ' + k + ' }}' for k in KNOWN)}")

    return MACRO.sub(replace, text)


def _kwargs(args: str, body: str, where: Optional[str]) -> dict:
    out = {}
    for part in [p.strip() for p in args.split(",") if p.strip()]:
        key, eq, value = part.partition("=")
        if not eq:
            raise ConfigError(f"macro arguments are key=value: {{{{ {body} }}}}", field=where)
        out[key.strip()] = value.strip().strip("'\"`")
    return out
