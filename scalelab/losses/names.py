"""Names of the loss variants (torch-free, for validation)."""

NAMES = ("mse", "l1")
