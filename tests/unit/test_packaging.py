"""What ships is the service: the image holds no development tooling, and the service runs without it."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from app.cli import main

ROOT = Path(__file__).resolve().parents[2]


def test_the_image_build_holds_no_development_tooling(tmp_path: Path) -> None:
    """Build the wheel from exactly what the Dockerfile's build stage copies."""
    src = tmp_path / "src"
    src.mkdir()
    copied = re.findall(r"^COPY (?!--from)(.+?) \./?\S*$", (ROOT / "Dockerfile").read_text(), re.M)
    for line in copied:
        for name in line.split():
            path = ROOT / name
            if path.is_dir():
                shutil.copytree(path, src / name, ignore=shutil.ignore_patterns("__pycache__"))
            else:
                shutil.copy(path, src / name)
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", tmp_path, src],
        check=True,
        capture_output=True,
        timeout=120,
    )
    [wheel] = tmp_path.glob("hotline-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "app/cli.py" in names and "acd/engine.py" in names
    assert [n for n in names if "local_asterisk" in n or n.startswith("devtools/")] == []


def test_the_service_modules_do_not_import_the_tooling() -> None:
    code = "import sys, app.main, app.cli; print([m for m in sys.modules if m.startswith('devtools')])"
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_hotline_asterisk_without_the_tooling_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "devtools", None)  # as in the image: not importable
    monkeypatch.setitem(sys.modules, "devtools.local_asterisk", None)
    with pytest.raises(SystemExit, match=r"tooling \(devtools/\) is not installed"):
        main(["asterisk", "status"])
