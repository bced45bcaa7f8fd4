"""kit: decoding emotional vs neutral memory reactivation from NREM-sleep EEG.

A small package behind the notebooks of the Kaggle competition
"Predicting Emotions During Sleep Using Brain Waves": data IO, the demo
simulator, band-power features, the window-based AUC metric, leave-one-
subject-out (LOSO) validation, baselines, the masked autoencoder, the
first-order MAML channel experts, fusion, ensembling and submissions.
"""

__version__ = "0.3.0"

COMPETITION = "predicting-emotions-using-brain-waves"
