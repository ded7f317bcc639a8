"""Labels: merge annotator votes into one label per item, check them, split them for training."""
