"""The deep stages: networks, masked-autoencoder pretraining, meta-learned channel experts, test-time adaptation, fusion."""
