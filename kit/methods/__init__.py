"""The classical anchors (starter, theta covariance, band power, EEGNet) and the one registry of every method."""
