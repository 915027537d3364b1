"""tokenwatch application core: settings, database, clock, scheduler and the command line."""
