"""The plain ML core: pandas, torch, transformers, peft, scikit-learn, umap. Never imports dagster or mlflow."""
