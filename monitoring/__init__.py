"""Monitoring: collectors, the metric store, pipeline queries and health endpoints."""
