"""Prefect flows of TrackFoundry.

Prefect reads its settings when first imported, so the project's defaults are put in place here, before
any flow module imports it: a project-local PREFECT_HOME (a bare import would create ~/.prefect), no
telemetry, and a start-up timeout that fits a temporary server on a 2-core machine. Values already set
in the environment win.
"""

import os
from pathlib import Path

PREFECT_DEFAULTS = {
    "PREFECT_HOME": str(Path.cwd() / ".prefect"),
    "DO_NOT_TRACK": "1",
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "120",
}
for _name, _value in PREFECT_DEFAULTS.items():
    os.environ.setdefault(_name, _value)
