"""opensentiment-pipeline: news sentiment and bias, from ingestion to an outlet map.

Importing the package pulls in nothing heavy; Dagster lives in `definitions`/`defs`, the ML core in `core`.
"""
