"""Neural-network layers and blocks (Module, Linear, Conv2d, …). ``functional`` is the op library (import as F)."""
