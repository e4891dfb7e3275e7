"""The error page as a developer sees it: rendered by headless Chromium, not just fetched."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
from conftest import StartGunicorn
from support import edit, get, wait_until

pytestmark = [pytest.mark.gunicorn, pytest.mark.browser]

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
HTML = {"Accept": "text/html"}


@pytest.fixture
def chromium() -> str:
    if shutil.which(CHROMIUM) is None:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"chromium not found at {CHROMIUM} (required on CI)")
        pytest.skip(f"chromium not found at {CHROMIUM}; set CHROMIUM to its path")
    return CHROMIUM


def run_chromium(binary: str, profile: Path, *args: str) -> subprocess.CompletedProcess[str]:
    argv = [
        binary, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
        "--no-first-run", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", f"--user-data-dir={profile}", "--window-size=1280,900", *args,
    ]  # fmt: skip
    # Its own session so a timeout can kill the renderer and GPU helpers too.
    with subprocess.Popen(
        argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True
    ) as proc:
        try:
            out, err = proc.communicate(timeout=120)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, 9)
            out, err = proc.communicate()
            pytest.fail(f"chromium timed out: {err[-2000:]}")
    return subprocess.CompletedProcess(argv, proc.returncode, out, err)


def test_error_page_renders_in_a_browser(
    gunicorn: StartGunicorn, demo_project: Path, tmp_path: Path, chromium: str
) -> None:
    Image = pytest.importorskip("PIL.Image", reason="pillow is in the test extra")
    edit(
        demo_project / "pages" / "apps.py",
        "class PagesConfig",
        "def broken(:\n\n\nclass PagesConfig",
    )
    server = gunicorn(
        "-k", "gthread", "-w", "2", "--threads", "4", "reloader.wsgi:application",
        cwd=demo_project,
        env={"RELOADER_APP": "demo.wsgi:application", "DJANGO_SETTINGS_MODULE": "demo.settings"},
    )  # fmt: skip
    url = server.url("/version/")
    wait_until(lambda: get(url, headers=HTML).status == 500)

    dom = run_chromium(chromium, tmp_path / "profile-dom", "--dump-dom", url)
    assert "SyntaxError" in dom.stdout, dom.stderr[-2000:]
    assert "apps.py" in dom.stdout

    png = tmp_path / "error-page.png"
    shot = run_chromium(chromium, tmp_path / "profile-shot", f"--screenshot={png}", url)
    assert png.exists() and png.stat().st_size > 0, shot.stderr[-2000:]
    with Image.open(png) as img:
        assert img.format == "PNG"
        assert img.size == (1280, 900)
        # A blank (or single-colour) page has one colour; text and styling give many.
        colours = img.convert("RGB").getcolors(maxcolors=1 << 16)
        assert colours is None or len(colours) > 16, f"looks blank: {len(colours or [])} colours"
        # The header's red: the page's own style applies under its Content-Security-Policy.
        assert colours is None or (0x8B, 0x1A, 0x1A) in {c for _n, c in colours}, "unstyled"
