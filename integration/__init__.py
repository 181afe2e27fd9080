"""The integration suite: real eager workflows run on a Flyte backend chosen by ``--backend``."""
