"""Eager workflows the integration suite runs; importable in task processes and images."""
