"""Symile-MIMIC: MIMIC-layout generator, readers, time-window cohort, preprocessing, shards."""
