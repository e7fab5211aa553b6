"""What the embedded local service charged for a catalog folder, read with `textmusic usage --json`."""

import json
import subprocess
import sys

from tasks.provider.connection import embedded_data_dir
from tasks.settings import PipelineSettings


def service_charges(out) -> list[dict]:
    data = embedded_data_dir(PipelineSettings(), out)
    done = subprocess.run([sys.executable, "-m", "textmusic", "usage", "--data", str(data), "--json"],
                          capture_output=True, text=True, check=True)
    return [charge for key in json.loads(done.stdout)["keys"] for charge in key["charges"]]
