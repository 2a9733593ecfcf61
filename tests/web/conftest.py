from __future__ import annotations

from typing import Any

import pytest


@pytest.fixture
def app_config(tmp_path: Any) -> dict[str, Any]:
    return {"TESTING": True, "SECRET_KEY": "test-secret-key", "STOP_GRACE_SECONDS": 0.5,
            "JOBS": "tests.jobs_for_tests"}
