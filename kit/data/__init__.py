"""The competition data: .mat files, the folder layout, the Dataset, and the embedded simulator."""
