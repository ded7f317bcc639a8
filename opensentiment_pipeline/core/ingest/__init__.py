"""Ingestion: read sources, normalise the article table, drop duplicates and boilerplate."""
