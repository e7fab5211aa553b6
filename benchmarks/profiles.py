"""Provider profiles the benchmarks write for a run (benchmarks/hosted.py --callback, benchmarks/scale.py demo
--callback): shared here, so that both measure the same thing."""

from __future__ import annotations

from pathlib import Path


def callback_profile(path: Path) -> Path:
    """The local service's profile with callbacks as the service sends them (textmusic/server/callbacks.py):
    the URL in `callback_url`, the track under `track`, Standard Webhooks signatures. The signing secret is
    in no profile: the service reads TEXTMUSIC_CALLBACK_SECRET, the run TRACKFOUNDRY_CALLBACK_SECRET."""
    from textmusic.providers import LOCAL_PROFILE, CallbackSpec, load_profile
    from textmusic.providers.callback import Signature

    local = load_profile(LOCAL_PROFILE)
    signature = Signature(header="webhook-signature", encoding="base64", prefix="v1,",
                          timestamp_header="webhook-timestamp", id_header="webhook-id")
    spec = CallbackSpec(url_field="callback_url", answer=local.answer.model_copy(update={"track": ["track"]}),
                        signature=signature)
    path.write_text(local.model_copy(update={"callback": spec}).to_toml(), encoding="utf-8")
    return path
