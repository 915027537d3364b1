"""The application core, the bottom layer: settings, database, clock, scheduler, logging, context."""
