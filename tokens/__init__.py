"""The token pipeline: discover, fetch pool data, score, activate, archive."""
