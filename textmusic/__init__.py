"""TrackFoundry's Text-to-Music API layer: contract, client, local server and offline engine."""
