"""A faster, retry-safe Controller for Flyte ``@eager`` workflows."""
