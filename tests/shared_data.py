"""Where the tests find the ALKDRec authors' data: `$ALKD_SHARED/data/alkdrec` (ALKD_SHARED default: `../shared`
next to the repository; a relative value is read from the repository root).

Absent data skips the tests that need it, unless ALKD_REQUIRE_SHARED=1 (what `.ci/run` sets): then they fail, so
CI never passes by skipping the real-data checks.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def shared_root() -> Path:
    value = os.environ.get("ALKD_SHARED")
    path = Path(value).expanduser() if value else ROOT.parent / "shared"
    return (path if path.is_absolute() else ROOT / path).resolve()


#: the authors' files (ML/, Games/, SHA256SUMS)
ALKDREC = shared_root() / "data" / "alkdrec"


def required() -> bool:
    return os.environ.get("ALKD_REQUIRE_SHARED", "") not in ("", "0")


def alkdrec_or_skip(*needed: str) -> Path:
    """ALKDREC when SHA256SUMS (and each `needed` relative path) is there; else skip the test, or fail it when
    ALKD_REQUIRE_SHARED=1."""
    missing = [name for name in ("SHA256SUMS", *needed) if not (ALKDREC / name).exists()]
    if missing:
        message = (f"ALKDRec data missing: {ALKDREC / missing[0]} (set ALKD_SHARED to the folder holding "
                   "data/alkdrec)")
        if required():
            pytest.fail(message + " and ALKD_REQUIRE_SHARED=1 says it must be there", pytrace=False)
        pytest.skip(message)
    return ALKDREC
