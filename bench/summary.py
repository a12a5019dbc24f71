"""Collects the headline numbers of the latest runs into bench/results/summary.json (the
keys issue 8 names, numbers only, plus the machine)."""

from __future__ import annotations

import argparse
import json
from typing import Any

from bench.machine import describe
from bench.stack import RESULTS, say


def summarise(ingest: dict[str, Any], replay: dict[str, Any]) -> dict[str, Any]:
    headline = replay["headline"]
    return {
        "ingest_checkins_per_s": ingest["ingest"]["accepted_per_s"],
        "ingest_p99_ms": ingest["ingest"]["p99_ms"],
        "e2e_p99_ms": ingest["e2e"]["p99_ms"],
        "replay_events_per_s": headline["replay_events_per_s"],
        "raw_read_events_per_s": headline["raw_read_events_per_s"],
        "replay_vs_raw_read": headline["replay_vs_raw_read"],
        "scoring_peak_rss_mb": headline["peak_rss_mb"],
        "lost_events": ingest["ingest"]["lost_events"],
        "machine": describe(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--replay", default="replay", help="which replay result to quote")
    args = parser.parse_args()
    ingest = json.loads((RESULTS / "ingest.json").read_text())
    replay = json.loads((RESULTS / f"{args.replay}.json").read_text())
    summary = summarise(ingest, replay)
    (RESULTS / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    say(f"wrote {RESULTS / 'summary.json'}")
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
