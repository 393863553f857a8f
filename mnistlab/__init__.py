"""mnistlab: does a third conv layer help? A many-seed MNIST study tracked in MLflow."""

__version__ = "0.1.0"
