"""The embedded local backend: SQLite stores, FLAML in a worker process, an MLflow registry, ONNX scoring."""
