"""The report's page of the laws predict weighed: every registered candidate that the grid
supports, with the numbers that decided the choice."""

import numpy as np

from scalelab.laws import predict, synthetic
from scalelab.report.candidates import candidates_frame


def test_the_table_lists_every_candidate_the_choice_and_persistence():
    fitted, held = synthetic.farseer_grid(seed=0)
    target = {"params": float(held["params"].iloc[0]), "samples": float(held["samples"].iloc[0])}
    prediction = predict(fitted, target, n_bootstrap=20)
    frame = candidates_frame(prediction)
    laws = list(frame["law"])
    # Farseer's surface is a candidate on a grid of 6 sizes x 7 data sizes (a law that
    # declares itself shows on the page without the report knowing its name)
    assert "FarseerLaw" in laws and "ChinchillaLaw" in laws
    assert laws[-1] == "persistence"
    assert frame["chosen"].tolist().count("★") == 1
    chosen = frame.loc[frame["chosen"] == "★", "law"].iloc[0]
    assert chosen == prediction.law
    row = prediction.candidates.set_index("law").loc["ChinchillaLaw"]
    drawn = frame.set_index("law").loc["ChinchillaLaw"]
    assert drawn["backtest ARE"] == f"{row['backtest_are']:.2%}"
    assert drawn["prediction [interval]"].startswith(f"{row['prediction']:.4g} [")
    assert frame.set_index("law").loc["persistence", "backtest ARE"] == \
        f"{prediction.persistence_are:.2%}"
    assert np.isfinite(prediction.persistence_are)
