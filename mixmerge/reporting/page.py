"""reports/report.html: the report as one page that opens offline and whole.

It leads with the answer (who wins, mixing or merging, on each axis in each phase, with the
figures), then report.md's body: the trade-off of every model, the claims, each section with
its figures, how to reproduce the run. Figures are the report's own SVG files, inlined; tables
are report.md's, converted; the page has no script and loads nothing, so a browser without a
network shows all of it.
"""

from __future__ import annotations

import html
import re
from pathlib import Path

import markdown

from mixmerge.reporting.answer import Verdict

STYLE = """
body { font: 15px/1.5 system-ui, -apple-system, "Segoe UI", sans-serif; color: #1f2328;
       max-width: 1100px; margin: 2em auto; padding: 0 1.5em; }
h1 { font-size: 1.7em; margin-bottom: .2em; }
h2 { font-size: 1.25em; margin-top: 2em; border-bottom: 1px solid #d0d7de; padding-bottom: .2em; }
.answer { display: grid; grid-template-columns: repeat(auto-fit, minmax(240px, 1fr)); gap: .8em;
          margin: 1em 0 1.5em; }
.verdict { border: 1px solid #d0d7de; border-left: 6px solid #8c959f; border-radius: 6px;
           padding: .6em .8em; }
.verdict.merging { border-left-color: #1a7f37; }
.verdict.mixing { border-left-color: #0969da; }
.verdict .who { font-weight: 600; font-size: 1.05em; }
.verdict .where { color: #57606a; font-size: .85em; text-transform: uppercase; }
table { border-collapse: collapse; margin: .8em 0; font-size: .88em; display: block;
        overflow-x: auto; }
th, td { border: 1px solid #d0d7de; padding: .25em .55em; text-align: right; white-space: nowrap; }
th:first-child, td:first-child { text-align: left; }
thead th { background: #f6f8fa; }
figure { margin: 1em 0; }
figure svg { max-width: 100%; height: auto; }
figcaption { color: #57606a; font-size: .9em; }
code { background: #f6f8fa; padding: .1em .3em; border-radius: 4px; }
.method { color: #57606a; font-size: .9em; }
"""


def render(title: str, verdicts: list[Verdict], body: str, figures: Path) -> str:
    """The page: `title`, the answer's `verdicts` as cards, then `body` (report.md after its
    answer) with each figure it shows (`![caption](figures/<stem>.png)`) inlined from
    `figures`/<stem>.svg."""
    converted = markdown.markdown(body, extensions=["tables"])
    converted = IMAGE.sub(lambda m: _figure(figures / f"{m['stem']}.svg", m["alt"]), converted)
    return "\n".join(
        [
            "<!DOCTYPE html>",
            '<html lang="en">',
            "<head>",
            '<meta charset="utf-8">',
            '<meta name="viewport" content="width=device-width, initial-scale=1">',
            f"<title>{html.escape(title)}</title>",
            f"<style>{STYLE}</style>",
            "</head>",
            "<body>",
            f"<h1>{html.escape(title)}</h1>",
            _answer(verdicts),
            converted,
            "</body>",
            "</html>",
            "",
        ]
    )


# A figure of report.md as Python-Markdown writes it: an image alone in its paragraph.
IMAGE = re.compile(r'<p><img alt="(?P<alt>[^"]*)" src="figures/(?P<stem>[^"/]+)\.png" ?/?></p>')


def _answer(verdicts: list[Verdict]) -> str:
    if not verdicts:
        return "<p>This run has no merge in Table 1 to compare with the mixture.</p>"
    cards = []
    for v in verdicts:
        cards.append(
            f'<div class="verdict {v.winner}" data-phase="{v.phase}" data-metric="{v.metric}" '
            f'data-winner="{v.winner}">'
            f'<div class="where">{v.phase.upper()} · {html.escape(v.axis)}</div>'
            f'<div class="who">{html.escape(v.headline())}</div>'
            f"<div>{html.escape(v.figures())}</div></div>"
        )
    return '<div class="answer" id="answer">' + "".join(cards) + "</div>"


def _figure(path: Path, caption: str) -> str:
    """An SVG file inlined in a <figure>, its XML prologue dropped. `caption` is already
    escaped (it comes from the converted Markdown)."""
    svg = path.read_text(encoding="utf-8")
    svg = svg[svg.index("<svg") :]
    return f"<figure>{svg}<figcaption>{caption}</figcaption></figure>"
