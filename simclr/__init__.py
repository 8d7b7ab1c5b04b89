"""SimCLR as a library: data sources, augmentation, models, loss, training, evaluation.

Imports neither prefect nor dvc; the pipeline layers (tasks/, flows/) build on it.
"""
