"""What users run: the command line, the notebook runner, Kaggle submission and kernels."""
