"""The stash keys the plugin's modules share (one place, so each module imports only this)."""
from __future__ import annotations

import pytest

SESSION_KEY = pytest.StashKey["ResultsSession"]()    # results.json being collected
STATE_KEY = pytest.StashKey["PluginState"]()         # the session's checked settings
CLAIM_ITEMS_KEY = pytest.StashKey[set]()             # node ids of claim items (benchmark table)
REPORT_KEY = pytest.StashKey[list]()                 # the closing lines: where results and report are
TRACKER_KEY = pytest.StashKey["ItemTracker"]()       # which collected items reported
PLAN_KEY = pytest.StashKey["Plan"]()                 # --plan's plan
