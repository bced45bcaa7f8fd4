"""Scoring and validation: the competition's window metric, bootstrap statistics, LOSO folds and cross-fitting."""
