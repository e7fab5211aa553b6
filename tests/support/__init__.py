"""What tests share: stand-in providers, audio fixtures, helpers to run the service and the CLI."""

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]  # the project's root
