"""The report's HTML: tables and text written here, charts drawn in the browser by the
report's own script from the data embedded as JSON. Everything is inline (CSS, script,
data), so the page opens from a file with no network and nothing to fetch.
"""

from __future__ import annotations

import html
import json
import os
from collections.abc import Sequence
from importlib import resources
from pathlib import Path
from typing import Any

from gridmesh import __version__

ASSETS = ("report.css", "charts.js")
# Script errors are written into the page itself, so that a reader (or a headless browser
# in the tests) sees them: before any other script runs.
ERROR_CATCHER = """window.addEventListener("error", function (event) {
  var list = document.getElementById("script-errors");
  if (list) { var item = document.createElement("li"); item.textContent = String(event.message);
    list.appendChild(item); list.hidden = false; }
});"""


def asset(name: str) -> str:
    return resources.files("simulators.report").joinpath("assets", name).read_text(encoding="utf-8")


def esc(value: object) -> str:
    return html.escape(str(value), quote=True)


def table(headers: Sequence[str], rows: Sequence[Sequence[object]], text_columns: int = 1) -> str:
    """A table whose first ``text_columns`` columns hold text and the rest figures (set right)."""
    def cells(row: Sequence[object], tag: str) -> str:
        return "".join(f"<{tag}>{esc(value)}</{tag}>" if index < text_columns
                       else f'<{tag} class="num">{esc(value)}</{tag}>' for index, value in enumerate(row))

    body = "".join(f"<tr>{cells(row, 'td')}</tr>" for row in rows)
    return f"<table><thead><tr>{cells(headers, 'th')}</tr></thead><tbody>{body}</tbody></table>"


def facts(pairs: Sequence[tuple[str, object]]) -> str:
    """A definition list of name and value."""
    items = "".join(f"<dt>{esc(name)}</dt><dd>{esc(value)}</dd>" for name, value in pairs)
    return f'<dl class="facts">{items}</dl>'


def paragraph(text: str, css_class: str = "") -> str:
    attr = f' class="{esc(css_class)}"' if css_class else ""
    return f"<p{attr}>{esc(text)}</p>"


def figure(chart_id: str, caption: str) -> str:
    """The place where the script draws chart ``chart_id``."""
    return (f'<figure class="chart" id="chart-{esc(chart_id)}" data-chart="{esc(chart_id)}">'
            f'<div class="plot"></div><figcaption>{esc(caption)}</figcaption></figure>')


def section(title: str, *parts: str, section_id: str = "") -> str:
    attr = f' id="{esc(section_id)}"' if section_id else ""
    return f"<section{attr}><h2>{esc(title)}</h2>{''.join(parts)}</section>"


def details(summary: str, *parts: str) -> str:
    return f"<details><summary>{esc(summary)}</summary>{''.join(parts)}</details>"


def embedded_json(data: Any) -> str:
    """``data`` as JSON that cannot end the script element it sits in."""
    return json.dumps(data, separators=(",", ":")).replace("<", "\\u003c").replace(">", "\\u003e")


def render(title: str, subtitle: str, sections: Sequence[str], charts: dict[str, dict[str, Any]]) -> str:
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="generator" content="gridmesh {esc(__version__)}">
<title>{esc(title)}</title>
<script>{ERROR_CATCHER}</script>
<style>{asset("report.css")}</style>
</head>
<body>
<header><h1>{esc(title)}</h1><p class="subtitle">{esc(subtitle)}</p></header>
<ul id="script-errors" class="errors" hidden></ul>
<noscript><p class="note">The charts are drawn by the page's script; the tables hold the figures.</p>
</noscript>
<main>
{"".join(sections)}
</main>
<footer>Written by gridmesh {esc(__version__)}. Self-contained: opens offline.</footer>
<script type="application/json" id="report-data">{embedded_json({"charts": charts})}</script>
<script>{asset("charts.js")}</script>
</body>
</html>
"""


def write_page(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` at once: a reader sees the old page or the whole new one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.partial")
    try:
        partial.write_text(text, encoding="utf-8")
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)
