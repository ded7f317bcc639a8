"""Analysis of the embedding space: the outlet map and the bias axis."""
