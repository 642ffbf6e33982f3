"""The locked versions: requirements.txt (for pip) is exactly uv.lock exported, so both install what was tested."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from conftest import ROOT

EXPORT = ["export", "--frozen", "--format", "requirements.txt", "--no-emit-project"]


def test_requirements_txt_is_the_export_of_uv_lock():
    uv = shutil.which("uv") or str(ROOT / ".tools" / "bin" / "uv")
    assert Path(uv).exists(), "uv not found: `make setup` installs it into .tools/"
    exported = subprocess.run([uv, *EXPORT], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    assert (ROOT / "requirements.txt").read_text(encoding="utf-8") == exported, (
        "requirements.txt differs from uv.lock: run `make lock`"
    )
    pinned = [line for line in exported.splitlines() if line and not line.startswith((" ", "#"))]
    assert pinned and all("==" in line for line in pinned)
