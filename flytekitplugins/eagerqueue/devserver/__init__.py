"""An embedded, loopback Flyte-Admin-compatible backend for running eager workflows locally."""
