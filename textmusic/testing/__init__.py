"""Test doubles and measurements shipped with the API layer, for anyone testing code that speaks the contract.

Like `httpx.MockTransport` or `starlette.testclient`, they live in the package so that tests and benchmarks
share them without importing each other: `standins` (hosted providers in the shapes their docs allow),
`hostile` (a provider whose every answer the caller chooses), `style_profile` (what a render sounds like,
measured from its audio) and `browser` (headless Chromium and a folder served on loopback).
None is imported by the service, the client or the engine; none imports the pipeline.
"""
