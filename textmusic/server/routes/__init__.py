"""The service's endpoints, one router per concern; `create_app` includes them in this order."""

from textmusic.server.routes import audio, health, tracks

ROUTERS = (health.router, tracks.router, audio.router)
