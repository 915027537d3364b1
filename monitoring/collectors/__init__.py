"""Collectors over other packages' statistics: the external API client and the scheduler."""
