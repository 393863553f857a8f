"""Training one run without MLflow:

- datasets.py: find, verify and load MNIST, Fashion-MNIST and KMNIST as tensors, once;
- registry.py: every net's name (the only list; no torch needed to read it);
- models.py: the paper's nets, and build_model by name;
- loop.py: one run from a config to its metrics (through a sink; knows nothing of MLflow);
- divergence.py: a run's final loss and whether it diverged (numpy only);
- interrupts.py: SIGTERM ends the current run as Ctrl-C does.
"""
