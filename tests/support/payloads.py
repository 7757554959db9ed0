"""Request bodies shared by the inject tests."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

SAMPLE_PAYLOAD_FILE = (
    Path(__file__).resolve().parents[2] / "examples/sample_http_inject_payload.json"
)


def sample_payload() -> dict[str, Any]:
    """The KumoMTA demo's inject request (examples/, a copy of ../shared/reference/); a fresh
    copy each call, so a test may change it."""
    payload: dict[str, Any] = json.loads(SAMPLE_PAYLOAD_FILE.read_text())
    return copy.deepcopy(payload)


SAMPLE_PAYLOAD: dict[str, Any] = sample_payload()
