"""nnlab: config-driven PyTorch experiments for the basics of neural networks."""

__version__ = "0.1.0"
