"""Signal processing on epochs: filters, Hilbert band power, z-scoring, the deep stages' feature sequences."""
