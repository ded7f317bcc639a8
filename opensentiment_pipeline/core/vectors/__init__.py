"""Article vectors: the one embedding path, encoder versions, and the search index over the vectors."""
