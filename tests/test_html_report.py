"""``kubesim run --report out.html``: one self-contained file, rendered by a real headless
browser (Debian's chromium). Skips without chromium, except in CI (CI=true, or
KUBESIM_REQUIRE_CHROMIUM=1, which .ci/run sets after installing it)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from PIL import Image

from scenarios.cli import main

CATALOGUE = Path(__file__).resolve().parent.parent / "scenarios" / "catalogue"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def find_chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
    if found is None:
        if os.environ.get("KUBESIM_REQUIRE_CHROMIUM") == "1" or os.environ.get("CI") == "true":
            pytest.fail("chromium is not installed, and CI (or KUBESIM_REQUIRE_CHROMIUM=1) requires it: "
                        "apt-get install chromium")
        pytest.skip("chromium is not installed (apt-get install chromium; in CI this is a failure)")
    return found


def chromium(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    profile = tmp_path / "chromium-profile"
    profile.mkdir(exist_ok=True)
    return subprocess.run([find_chromium(), *FLAGS, f"--user-data-dir={profile}", *args],
                          capture_output=True, text=True, timeout=120, cwd=tmp_path)


@pytest.fixture(scope="module")
def report(tmp_path_factory) -> Path:
    directory = tmp_path_factory.mktemp("report")
    out = directory / "api-outage.html"
    cwd = os.getcwd()
    os.chdir(directory)
    try:
        assert main(["run", str(CATALOGUE / "api_outage.yaml"), "--report", str(out)]) == 0
    finally:
        os.chdir(cwd)
    return out


def test_the_report_is_one_self_contained_file_with_every_section(report):
    html = report.read_text()
    assert not re.search(r'(src|href)="(?!data:)', html)  # nothing to fetch: plots are embedded
    for anchor in ("verdict", "description", "faults", "timeline", "expectations", "invariants", "metrics",
                   "latency", "api", "api-over-time", "run"):
        assert f"id={anchor}" in html, anchor
    assert html.count('src="data:image/png;base64,') == 3
    assert "API outage (503)" in html and "re-queueing" in html and "replay: kubesim run" in html


def test_a_headless_browser_renders_the_report_with_its_plots(report, tmp_path):
    dom = chromium(tmp_path, "--dump-dom", report.as_uri())
    assert dom.returncode == 0, dom.stderr[-2000:]
    assert "api-outage (seed 21): " in dom.stdout and "PASSED" in dom.stdout
    assert dom.stdout.count("<img") == 3 and "Faults as they happened" in dom.stdout
    shot = tmp_path / "report.png"
    done = chromium(tmp_path, f"--screenshot={shot}", "--window-size=1280,4200", "--hide-scrollbars",
                    report.as_uri())
    assert done.returncode == 0 and shot.exists(), done.stderr[-2000:]
    image = Image.open(shot).convert("RGB")
    assert image.size == (1280, 4200)
    colours = image.getcolors(maxcolors=1 << 20)
    assert len(colours) > 200  # text, tables, and the plots' lines and bars drawn, not a blank page
    plot_blue = sum(n for n, (r, g, b) in colours if b > 150 and r < 80 and g < 160)
    assert plot_blue > 500  # matplotlib's tab:blue (Running pods, histograms) made it to the screen
