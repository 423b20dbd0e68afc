"""Shared test settings: W&B never talks to a server, matplotlib draws off-screen."""

import os

os.environ.setdefault("WANDB_MODE", "offline")
os.environ.setdefault("WANDB_SILENT", "true")
os.environ.setdefault("MPLBACKEND", "Agg")
os.environ.pop("WANDB_API_KEY", None)
