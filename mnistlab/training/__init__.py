"""Training one run without MLflow:

- dataset_registry.py: the datasets mnistlab knows (MNIST, Fashion-MNIST, KMNIST): names,
  folders, checksums (the only list; no torch needed to read it);
- data_files.py: a dataset's IDX files put in place (found, unpacked, converted, downloaded)
  and checked (sizes, MD5s);
- datasets.py: a dataset loaded into memory as tensors, once;
- owndata.py: a user's own dataset as an .npz file, read, checked and loaded by its path;
- augment.py: seeded per-sample augmentation of training batches;
- registry.py: every net's name (the only list; no torch needed to read it), and users' nets
  named by file or module;
- models.py: the paper's nets (with their model_args), build_model, and check_net, which runs
  a net on one batch before anything trains;
- recipe.py: the optimizer and learning-rate schedule, by torch class name, checked;
- evaluation.py: a net's accuracy, mean loss and predicted labels on float images, in
  chunks (oneDNN tensors on CPU);
- loop.py: one run from a config to its metrics (through a sink; knows nothing of MLflow);
- divergence.py: a run's final loss and whether it diverged (numpy only);
- interrupts.py: SIGTERM ends the current run as Ctrl-C does.
"""
