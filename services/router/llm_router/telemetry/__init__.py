"""Metrics, the per-request log line, and CloudWatch EMF records."""
