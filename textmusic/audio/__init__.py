"""One audio core for the engine and the pipeline: decoding, loudness, true peak, limiting, resampling and
encoding.

Both sides read and write the same files and promise the same targets, so they measure with the same
meters and write with the same encoders; which library reads or writes a format is `contract.FORMATS`'s.
Nothing here knows of the engine or the pipeline (import-linter holds it to `textmusic.contract`).
"""

# The level streaming services normalise to: the engine masters to it and the pipeline's "streaming" spec asks it.
STREAMING_LUFS = -14.0
