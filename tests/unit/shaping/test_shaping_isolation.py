"""shaping/ stands alone: importing it never pulls in the mta package."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
PROBE = (
    "import sys, shaping, shaping.rules, shaping.gate, shaping.fallback;"
    "leaked = sorted(m for m in sys.modules if m == 'mta' or m.startswith('mta.'));"
    "print(leaked); sys.exit(1 if leaked else 0)"
)


def test_shaping_does_not_import_mta() -> None:
    done = subprocess.run(
        [sys.executable, "-c", PROBE], cwd=ROOT, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_default_shaping_file_is_beside_the_package() -> None:
    assert (ROOT / "shaping" / "default_shaping.toml").is_file()
