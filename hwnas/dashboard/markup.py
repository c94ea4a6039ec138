"""HTML building blocks: every value is escaped unless it is :class:`Safe` markup built here.

Charts are an empty ``<div>`` plus their figure as JSON in a ``<script type="application/json">``
block, made safe to embed by :func:`script_json` (no ``<``, ``>``, ``&`` or line separators survive
literally, so no string in the data can close the block); the page's script parses it with
``JSON.parse`` and hands it to plotly.js. Pages carry no inline JavaScript when served (the
server's Content-Security-Policy forbids it); the self-contained report inlines the same scripts.
"""

from __future__ import annotations

import html
import json
from typing import Any, Iterable, Sequence
from urllib.parse import urlencode

from hwnas.dashboard.assets import APP_JS, STYLE_CSS

#: Pages in the navigation bar: (path, title).
NAV = (("/devices", "Devices"), ("/measurements", "Measurements"), ("/predictors", "Predictors"),
       ("/searches", "Searches"), ("/codesign", "Codesign"), ("/live", "Live"))


class Safe(str):
    """Markup that is already escaped (built by this module from escaped parts)."""


def esc(value: Any) -> Safe:
    """``value`` as escaped text (``Safe`` passes through); None is an empty string."""
    if isinstance(value, Safe):
        return value
    return Safe("" if value is None else html.escape(str(value), quote=True))


def fmt(value: Any, digits: int = 4) -> str:
    """A number to ``digits`` significant digits; other values as text; None as ``-``."""
    if value is None:
        return "-"
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, float):
        return f"{value:.{digits}g}"
    return str(value)


def link(path: str, query: dict[str, Any] | None, text: Any) -> Safe:
    """An ``<a>`` to ``path?query`` (values URL-encoded, then escaped) showing ``text``."""
    href = path + ("?" + urlencode({k: v for k, v in query.items() if v is not None}) if query else "")
    return Safe(f'<a href="{esc(href)}">{esc(text)}</a>')


def table(headers: Sequence[str], rows: Iterable[Sequence[Any]], table_id: str | None = None) -> Safe:
    """A table; each cell is escaped (``Safe`` cells are kept), numbers formatted by :func:`fmt`."""
    head = "".join(f"<th>{esc(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{esc(c) if isinstance(c, Safe) else esc(fmt(c))}</td>" for c in row)
                   + "</tr>" for row in rows)
    ident = f' id="{esc(table_id)}"' if table_id else ""
    return Safe(f"<table{ident}><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>")


def facts(pairs: Iterable[tuple[str, Any]]) -> Safe:
    """A definition list of (name, value) pairs."""
    return Safe("<dl>" + "".join(f"<dt>{esc(k)}</dt><dd>{esc(v) if isinstance(v, Safe) else esc(fmt(v))}</dd>"
                                 for k, v in pairs) + "</dl>")


def script_json(obj: Any) -> str:
    """JSON of ``obj`` that is safe inside a ``<script>`` block: ``<``, ``>``, ``&``, U+2028/9 escaped."""
    text = json.dumps(obj, allow_nan=False, default=str, separators=(",", ":"))
    return (text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
            .replace("\u2028", "\\u2028").replace("\u2029", "\\u2029"))


def chart(chart_id: str, fig: dict[str, Any]) -> Safe:
    """A chart placeholder (``div#chart-<id>``) and its figure as embedded JSON (``#fig-<id>``)."""
    cid = esc(chart_id)
    return Safe(f'<div class="chart" id="chart-{cid}" data-fig="fig-{cid}"></div>'
                f'<script type="application/json" id="fig-{cid}">{script_json(_finite(fig))}</script>')


def _finite(obj: Any) -> Any:
    """``obj`` with NaN and infinities as None (JSON has no NaN)."""
    if isinstance(obj, float):
        return obj if obj == obj and obj not in (float("inf"), float("-inf")) else None
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_finite(v) for v in obj]
    if hasattr(obj, "item") and callable(obj.item):  # numpy scalars
        return _finite(obj.item())
    return obj


def section(title: str, *parts: Any) -> Safe:
    """A ``<section>`` with an ``<h2>`` title and the given (already Safe or escaped) parts."""
    return Safe(f"<section><h2>{esc(title)}</h2>" + "".join(esc(p) for p in parts) + "</section>")


def document(title: str, body: str, *, active: str = "", standalone_js: str | None = None,
             poll: str | None = None, nav: bool = True) -> str:
    """A whole HTML page.

    Args:
        title: the page title (escaped).
        body: the page's markup (Safe).
        active: the navigation entry to highlight.
        standalone_js: plotly.js to inline (a self-contained report); None links ``/static/``.
        poll: a same-origin JSON URL the page polls to update its charts and counts (live pages).
        nav: show the navigation bar.
    """
    bar = ""
    if nav:
        cls = {p: ' class="active"' for p, _ in NAV if p == active}
        bar = "<nav>" + "".join(f'<a href="{p}"{cls.get(p, "")}>{esc(t)}</a>' for p, t in NAV) + "</nav>"
    if standalone_js is not None:
        inline = standalone_js.replace("</script", "<\\/script")
        scripts = f"<script>{inline}</script><script>{APP_JS}</script>"
    else:
        scripts = '<script src="/static/plotly.min.js"></script><script src="/static/app.js"></script>'
    poll_attr = f' data-poll="{esc(poll)}"' if poll else ""
    return (f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>{esc(title)}</title>'
            f'<meta name="viewport" content="width=device-width, initial-scale=1"><style>{STYLE_CSS}</style>'
            f'</head><body{poll_attr}>{bar}<main><h1>{esc(title)}</h1>{body}</main>{scripts}</body></html>')
