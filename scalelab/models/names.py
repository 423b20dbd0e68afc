"""Names of the network families (torch-free, for validation)."""

NAMES = ("edsr", "srcnn", "unet")
