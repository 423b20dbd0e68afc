"""Names of the field generators and degradation operators (torch-free, for validation)."""

FIELDS = ("grf", "precip")
DEGRADATIONS = ("block_mean",)
