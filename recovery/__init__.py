"""Recovery and self-tuning (later issues). Acts only through the controller protocols in ``recovery.controllers``."""
