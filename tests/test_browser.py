"""What a person sees: the smoke study's report.html opened in a real, headless Chromium with
the network cut off. Nothing may be fetched, nothing may fail in the console, every figure must
draw, and the answer on the page must be the one the summary holds. A screenshot of the page
is kept under test-artifacts/ (not in git) for a person to look at.

Chromium is Debian's (`make test` installs it, as root); Playwright drives it. The tests skip,
saying why, only where either cannot be had.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path

import pytest
import yaml

from tests.conftest import REPO, run_in

ARTIFACTS = REPO / "test-artifacts"


def _chromium() -> str | None:
    return os.environ.get("MIXMERGE_CHROMIUM") or shutil.which("chromium")


@pytest.fixture(scope="module")
def browser():
    executable = _chromium()
    if executable is None:
        pytest.skip("no Chromium here: `make test` installs Debian's as root")
    playwright = pytest.importorskip("playwright.sync_api", reason="pip install -e '.[test]'")
    with playwright.sync_playwright() as driver:
        # As root there is no user namespace to sandbox in; the page is our own file.
        launched = driver.chromium.launch(executable_path=executable, args=["--no-sandbox"])
        yield launched
        launched.close()


def open_offline(browser, path: Path, width: int = 1200):
    """A page showing `path` with every request that is not for a local file refused and
    recorded; its console errors recorded too. (page, requests sent out, console errors)"""
    page = browser.new_page(viewport={"width": width, "height": 900})
    outside, errors = [], []

    def refuse_the_network(route):
        if route.request.url.startswith(("file:", "data:")):
            route.continue_()
        else:
            outside.append(route.request.url)
            route.abort()

    page.route("**/*", refuse_the_network)
    page.on("console", lambda message: message.type == "error" and errors.append(message.text))
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(path.as_uri(), wait_until="load")
    return page, outside, errors


def test_report_html_opens_offline_whole_and_says_the_summarys_answer(smoke_study, browser):
    root = smoke_study.root
    page, outside, errors = open_offline(browser, root / "reports" / "report.html")
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "report.png"), full_page=True)
    assert outside == [] and errors == []

    drawn = page.eval_on_selector_all(
        "figure svg",
        "svgs => svgs.map(s => [s.getBoundingClientRect().width,"
        " s.getBoundingClientRect().height, s.querySelectorAll('path, use, image').length])",
    )
    shown = (root / "reports" / "report.md").read_text(encoding="utf-8").count("](figures/")
    assert len(drawn) == shown >= 4
    assert all(width > 300 and height > 150 and marks > 20 for width, height, marks in drawn)

    summary = json.loads((root / "reports" / "summary.json").read_text())
    cards = page.eval_on_selector_all(
        "#answer .verdict",
        "cards => cards.map(c => [c.dataset.phase + ' ' + c.dataset.metric, c.dataset.winner,"
        " c.querySelector('.who').innerText])",
    )
    assert cards and {where: winner for where, winner, _ in cards} == summary["answer"]
    for _, winner, said in cards:
        assert said == ("Neither wins clearly" if winner == "neither" else f"{winner.title()} wins")
    # The answer is the first thing on the page, above the fold.
    top = page.eval_on_selector("#answer", "a => a.getBoundingClientRect().bottom")
    assert top < 900


def test_dvc_plots_show_draws_every_plot_offline(smoke_study, browser, tmp_path):
    root = smoke_study.root
    # What `make setup` writes in a clone (the copy holds only what git tracks).
    run_in([sys.executable, "-m", "mixmerge.reporting.vega", ".dvc/plots/page.html"], root)
    run_in(["dvc", "plots", "show", "-o", str(tmp_path / "plots")], root)
    page, outside, errors = open_offline(browser, tmp_path / "plots" / "index.html", width=1300)
    page.wait_for_function("document.querySelectorAll('body > div[id] svg').length > 0")
    page.wait_for_timeout(500)  # vega-embed draws each plot in turn
    page.screenshot(path=str(ARTIFACTS / "dvc-plots.png"), full_page=True)
    assert outside == [] and errors == []
    declared = yaml.safe_load((root / "dvc.yaml").read_text())["plots"]
    drawn = page.eval_on_selector_all(
        "body > div[id]",
        "divs => divs.map(d => { const s = d.querySelector('svg');"
        " return [d.id, s ? s.getBoundingClientRect().height : 0,"
        " d.querySelectorAll('g.mark-symbol path, g.mark-line path, g.mark-rect path,"
        " g.mark-text text').length]; })",
    )
    # One plot per declaration, each over every model, run or merge: a page a person reads.
    assert len(drawn) == len(declared) <= 10
    assert all(height > 100 and marks > 0 for _, height, marks in drawn), drawn
    # The page declares its text UTF-8: a minus sign is a minus sign.
    labels = page.eval_on_selector_all("svg text", "ts => ts.map(t => t.textContent).join(' ')")
    assert "−" in labels
