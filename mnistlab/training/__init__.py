"""Training one run without MLflow: the datasets as tensors, the nets, the loop and its rules."""
