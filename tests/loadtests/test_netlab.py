"""`python -m loadtests netlab` in its short form (scenarios a, b, c in the namespace lab:
home NAT, TURN over TCP, a 3 s viewer outage), and its pure parts."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys

import pytest

from loadtests.coturn import coturn_available
from loadtests.netlab import Router, boxes, unavailable
from loadtests.netlab.bench import SHORT, selected
from loadtests.netlab.crowd import CrowdShare
from tests.browser import chromium_path
from tests.helpers import ROOT, missing

RUN = "import sys; from loadtests.netlab.bench import main; sys.exit(main(sys.argv[1:]))"
SCENARIO_KEYS = {"ttff_ms", "fps_min", "recovery_s", "ok"}


def test_scenarios_are_picked_by_name_or_letter_in_their_order() -> None:
    """--only takes names and the issue's letters, runs them in the fixed order."""
    assert selected(None, short=True) == list(SHORT)
    assert selected(None, short=False)[-1] == "crowd"
    assert selected("f,a, turn_tcp", short=False) == ["home_nat", "turn_tcp", "crowd"]
    with pytest.raises(argparse.ArgumentTypeError, match="unknown scenario 'z'"):
        selected("a,z", short=False)


def test_the_no_udp_firewall_drops_every_datagram_out() -> None:
    """Router.NO_UDP drops all UDP from the LAN (TURN's port too); TCP is untouched."""
    rules = boxes.home_router(Router.NO_UDP)
    assert "iifname lan meta l4proto udp drop;" in rules
    assert "udp dport" not in rules and "tcp" not in rules
    assert "udp dport 3478 accept" in boxes.home_router(Router.UDP_ONLY_TURN)


def test_crowd_shares_add_up() -> None:
    """Two processes' shares: counts and statuses summed, the latest answer kept."""
    total = CrowdShare()
    total.add(CrowdShare(posted=2, status={"201": 2}, answered_within_s=4.0, fps=[30.0, 29.8]))
    total.add(CrowdShare(posted=2, status={"201": 1, "503": 1}, answered_within_s=6.5,
                         fps=[30.0, 0.0], errors={"x": 1}))  # fmt: skip
    assert total.posted == 4 and total.status == {"201": 3, "503": 1}
    assert total.answered_within_s == 6.5 and sorted(total.fps)[0] == 0.0
    assert total.errors == {"x": 1}


@pytest.mark.alone
@pytest.mark.timeout(300)
def test_netlab_short_run() -> None:
    """The short form builds the lab, runs a, b and c and ends with its verdict line:
    the home phone and the UDP-less one (through coturn over TCP) get their first
    frame within 2 s and ≥ 28 fps of the 720p clip; the viewer's video and comments
    come back after its 3 s outage, none lost or doubled."""
    why = unavailable() or (None if coturn_available() else "coturn is needed: make system")
    if why is not None:
        missing(why)
    chromium_path()
    proc = subprocess.run([sys.executable, "-c", RUN, "--short", "--json"], cwd=ROOT,
                          capture_output=True, text=True, timeout=280)  # fmt: skip
    last = json.loads(proc.stdout.strip().splitlines()[-1])
    print(proc.stderr[-4000:])
    assert proc.returncode == 0 and last["ok"] is True, proc.stderr[-4000:]
    assert set(last["scenarios"]) == set(SHORT)
    for figures in last["scenarios"].values():
        assert SCENARIO_KEYS <= set(figures) and figures["ok"] is True
    assert last["scenarios"]["turn_tcp"]["candidate"]["relayProtocol"] == "tcp"
    assert last["scenarios"]["viewer_outage"]["comments_lost"] == 0
    assert "netlab: (b) turn_tcp" in proc.stderr
