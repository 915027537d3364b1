"""Local stand-ins for the outside world, served on loopback.

``simulator.server.LocalMarket`` speaks the DexScreener HTTP API and the
PumpPortal websocket so the whole pipeline runs (and is tested) without internet.
"""
