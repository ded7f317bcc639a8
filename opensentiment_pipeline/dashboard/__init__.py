"""The results dashboard (Dash): outlets, stories, sentiment over time, search and the model, read from the results
database (`results_db`) and the search index. Start it with `opensentiment dashboard` or `make dashboard`."""
