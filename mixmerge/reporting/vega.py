"""The page `dvc plots show` fills, made to work offline: Vega, Vega-Lite and Vega-Embed packed
into it, where DVC's own page loads them from a CDN (a blank page without a network), and its
text declared UTF-8 (DVC's declares nothing, and a minus sign comes out garbled).

The libraries come from the package index, bundled by `vl-convert-python` (the Vega project's
own converter). `make setup` writes the page to .dvc/plots/page.html, which .dvc/config names
as DVC's `plots.html_template`:

    python -m mixmerge.reporting.vega .dvc/plots/page.html
"""

from __future__ import annotations

import sys
from pathlib import Path

from mixmerge.core.io import atomic_path

# DVC writes Vega-Lite 5 specifications.
VEGA_LITE = "v5.20"

PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>DVC plots</title>
<script>
{libraries}
</script>
<style>
body {{ font: 14px system-ui, -apple-system, "Segoe UI", sans-serif; margin: 1.5em; }}
body > div {{ margin: 0 0 2.5em; }}
table {{ border-spacing: 15px; }}
</style>
</head>
<body>
{{plot_divs}}
</body>
</html>
"""


def page() -> str:
    """The page, with DVC's placeholder for its plots (and none for its CDN scripts)."""
    import vl_convert

    # The default bundle sets `vegaEmbed`, `vegaLite` and `vega` on the window, as DVC's
    # inline scripts expect, and holds no import: an ordinary <script> runs it.
    return PAGE.format(libraries=vl_convert.javascript_bundle(vl_version=VEGA_LITE))


def write_page(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        tmp.write_text(page(), encoding="utf-8")


if __name__ == "__main__":
    write_page(Path(sys.argv[1]))
