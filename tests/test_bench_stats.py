"""Before/after reports: Wilson intervals, the results file, the plots."""

import json

import pytest

from openale.bench.stats import (
    Success,
    plot_before_after,
    plot_curves,
    update_results,
    wilson_interval,
)


def test_wilson_interval_matches_hand_computed_values():
    # p=0.5, n=10: center 0.5, half = 1.96*sqrt(0.025 + 0.0096)/1.384 = 0.2634
    low, high = wilson_interval(5, 10)
    assert low == pytest.approx(0.2366, abs=1e-4) and high == pytest.approx(0.7634, abs=1e-4)
    # No success still leaves room above zero: (0, z^2/(n+z^2)).
    assert wilson_interval(0, 10) == pytest.approx((0.0, 0.2775), abs=1e-4)
    assert wilson_interval(10, 10) == pytest.approx((0.7225, 1.0), abs=1e-4)
    assert wilson_interval(0, 0) == (0.0, 1.0)
    with pytest.raises(ValueError):
        wilson_interval(3, 2)


def test_success_from_an_evaluation_summary():
    s = Success.from_eval({"episodes": 26, "pass_rate": 7 / 26, "mean_reward": -0.4})
    assert (s.successes, s.attempts) == (7, 26)
    assert s.low < s.rate < s.high
    assert "7/26" in str(s)


def test_update_results_replaces_only_its_key(tmp_path):
    path = tmp_path / "rl.json"
    path.write_text(json.dumps({"async_vs_sync_speedup": 1.6, "quickstart": {"old": 1}}))
    update_results(path, "quickstart", {"heldout_success_after": 0.5})
    data = json.loads(path.read_text())
    assert data == {"async_vs_sync_speedup": 1.6, "quickstart": {"heldout_success_after": 0.5}}
    update_results(tmp_path / "new.json", "k", [1])
    assert json.loads((tmp_path / "new.json").read_text()) == {"k": [1]}


def test_plots_are_written(tmp_path):
    bars = plot_before_after(
        {"base": Success.of(2, 26), "after": Success.of(9, 26)}, tmp_path / "b.png"
    )
    curves = plot_curves({"ipa": [(1, -1.0), (2, 0.0), (3, 0.5)]}, tmp_path / "c.png", smooth=2)
    for png in (bars, curves):
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
