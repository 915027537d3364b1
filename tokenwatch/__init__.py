"""The composition root: the command line and the service that builds and wires every part.

Only this package imports from every other; nothing imports from it (see docs/ARCHITECTURE.md).
"""
