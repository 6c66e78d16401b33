"""Nothing in this project may reach a model hub or phone home: models and data are built here
or read from local files and caches (TRL, transformers and DVC otherwise call out)."""

from __future__ import annotations

import os

OFFLINE_ENV = {
    "HF_HUB_OFFLINE": "1",
    "HF_DATASETS_OFFLINE": "1",
    "HF_HUB_DISABLE_TELEMETRY": "1",
    "DVC_NO_ANALYTICS": "1",
}


def go_offline(force: bool = False) -> None:
    """Set the variables, before any library reads them; `force` overrides the caller's own."""
    for name, value in OFFLINE_ENV.items():
        if force:
            os.environ[name] = value
        else:
            os.environ.setdefault(name, value)
