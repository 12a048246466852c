"""Judge the recorded claims again by the current procedure (``alexnet_lib.stats.VERSION``), from
the per-run values they recorded, after the procedure changed:

    python tools/rejudge_claims.py [--dry-run]

A record is judged again only when its runs are still the claim's measurement: it says what its
runs were (``runs``, a ``stats.Scale``) and the claim's design, direction and target are the
registry's. Any other record is named, with the chapter to run again. Nothing is re-measured: the
values stay those the chapter recorded, and the record keeps its run's metadata, with a note of
when it was judged again.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import replace
from pathlib import Path

from alexnet_lib.claims import REGISTRY, Claim
from alexnet_lib.stats import VERSION, Scale, regime
from alexnet_lib.util import git_commit, results_dir


def rejudged(claim: Claim) -> tuple:
    """(the record judged again, None) or (None, why it cannot be)."""
    spec = REGISTRY[claim.claim_key]
    if claim.procedure == VERSION:
        return None, "already judged by this procedure"
    if not claim.baseline or not claim.runs:
        return None, f"no per-run values and runs scale to judge again: run chapter {spec.chapter} again"
    if (claim.design, claim.paper_says, claim.log_scale) != (spec.design, spec.paper_says, spec.log_scale):
        return None, f"the claim's design changed since it was recorded: run chapter {spec.chapter} again"
    regime_ = regime(Scale(**claim.runs), spec.paper_scale)
    again = replace(claim, regime=regime_.note, target=spec.target, paper_value=spec.paper_value)
    result = again.rejudge()
    meta = {**claim.meta, "rejudged": f"{time.strftime('%Y-%m-%d')}, procedure {VERSION}, commit {git_commit()}"}
    return replace(again, verdict=result.verdict, comparison=result.to_json(), effect_se=result.standard_error,
                   procedure=VERSION, meta=meta), None


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dry-run", action="store_true", help="say what would change, write nothing")
    args = parser.parse_args(argv)
    folder = results_dir() / "claims"
    for path in sorted(Path(folder).glob("*.json")):
        claim = Claim.from_json(json.loads(path.read_text()))
        new, why = rejudged(claim)
        if new is None:
            print(f"{path.name}: {why}")
            continue
        print(f"{path.name}: {claim.verdict} -> {new.verdict}")
        if not args.dry_run:
            path.write_text(json.dumps(new.to_json(), indent=1, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
