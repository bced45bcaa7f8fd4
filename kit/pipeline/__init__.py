"""The stages end to end on a data folder: profiles, the cached stage runs, the ensemble, the submission, the benchmark."""
