"""Every claim's verdict at a glance, generated from the claim records: chapter 9's report card
and the table on the book's first page (``book/_ext/claims_glance.py``).

The *family* is one record per claim of ``claims.REGISTRY``: the record at the paper's scale
where one exists (``tools/full_scale.py``'s, judged by ``recorded.judge_full_scale``), else the
chapter's own. Claims that cannot be tested here are left out of it. Over the family, each
claim's p-value is adjusted by Holm's method (``tdist.holm``); a verdict that excludes zero but
whose adjusted p is 0.05 or more would not survive the multiplicity of testing every claim, and
the card says so.

Effects are shown in the paper's own units: percentage points with one decimal for errors,
ratios as ×, others as measured.
"""

from __future__ import annotations

import math
from dataclasses import replace

from .claims import CHAPTERS, REGISTRY, UNITS, Claim
from .stats import VERSION
from .tdist import CONFIDENCE, MAX_SEEDS, holm

#: verdicts whose interval excludes zero (the ones multiplicity can undo)
SIGNIFICANT = ("replicates", "direction only", "contradicted")


def family(records: dict) -> dict:
    """Key -> the one record per claim that chapter 9 judges as a family: the paper-scale record
    where one exists (``source == "paper scale"``), else the chapter's; left out: claims not
    recorded, recorded by an older procedure (their chapter must be run again), or that cannot be
    tested here."""
    chosen = {}
    for key in REGISTRY:
        at_scale = [c for c in records.values() if c.source == "paper scale" and c.claim_key == key]
        record = at_scale[0] if at_scale else records.get(key)
        if record is not None and record.procedure == VERSION and (record.comparison or {}).get("p_value") is not None:
            chosen[key] = record
    return chosen


def adjusted(records: dict) -> dict:
    """Key -> the Holm-adjusted p-value over :func:`family`."""
    members = family(records)
    return dict(zip(members, holm([c.comparison["p_value"] for c in members.values()])))


def show(claim: Claim, value: float | None, brief: bool = False) -> str:
    """``value`` (an effect in the claim's metric) in the paper's units: '−2.0 points', '0.13×
    (1/7.7)' (``brief``: '0.13×')."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    spec = REGISTRY[claim.claim_key]
    if spec.log_scale:
        return f"{value:.2f}×" + (f" (1/{1 / value:.1f})" if value < 1 and not brief else "")
    factor, unit = UNITS[spec.units]
    return f"{value * factor:+.{spec.digits}f}{unit}".replace("-", "−")


def measured(claim: Claim) -> str:
    """'−5.0 points [−7.5, −2.5]': the effect and its 95% interval, in the paper's units."""
    k = claim.comparison
    low, high = (show(claim, k[end], brief=True).replace(" points", "") for end in ("ci_low", "ci_high"))
    return show(claim, k["effect"]) + (f" [{low}, {high}]" if k.get("ci_low") is not None else "")


def regime_tag(claim: Claim) -> str:
    """A short tag for the regime: 'the paper's' or 'smaller' (the long text is folded); '–' for a
    claim not measured here."""
    if not claim.comparison:
        return "–"
    return "the paper's" if not claim.regime else "smaller"


def _link(chapter: str) -> str:
    """The chapter as a link: '[4. LRN](04_lrn.ipynb)' (resolved to the page in the rendered book)."""
    return f"[{CHAPTERS.get(chapter, chapter)}]({chapter}.ipynb)"


def _p(value) -> str:
    return "–" if value is None else (f"{value:.2g}" if value >= 0.001 else "<0.001")


def card_rows(records: dict) -> list:
    """One dict per claim of the registry, in its order: the claim with its chapter, the paper's
    value (or the smallest effect of interest), what was measured, the verdict, p and Holm's p,
    the detectable effect, the seeds needed, the regime."""
    members, holm_p = family(records), adjusted(records)
    rows = []
    for key, spec in REGISTRY.items():
        c = members.get(key) or records.get(key)
        if c is None or c.procedure != VERSION:
            why = "not recorded yet" if c is None else f"recorded by procedure {c.procedure}: run its chapter again"
            rows.append({"key": key, "claim": spec.claim, "verdict": why,
                         "chapter": _link(spec.chapter)})
            continue
        k = c.comparison or {}
        target = show(c, spec.target) + ("" if spec.paper_value is not None else " (of interest)")
        survives = c.verdict not in SIGNIFICANT or holm_p.get(key, 1.0) < 1 - CONFIDENCE
        seeds = k.get("seeds_needed")
        rows.append({
            "key": key, "claim": spec.claim, "chapter": _link(c.chapter), "paper": target,
            "measured": measured(c) if k else "–", "verdict": c.verdict, "size": k.get("size", ""),
            "p": _p(k.get("p_value")), "holm": _p(holm_p.get(key)), "survives": survives,
            "detectable": show(c, k.get("detectable"), brief=True) if k else "–",
            "seeds": "–" if not k else (f"{seeds:,}" if seeds else f"more than {MAX_SEEDS:,}"),
            "n": k.get("n"), "design": k.get("design", ""), "regime": regime_tag(c), "regime_long": c.regime,
            "source": c.source, "scale": c.scale, "why": c.details.get("why", "")})
    return rows


def card_markdown(records: dict) -> str:
    """Chapter 9's report card as a MyST table: the claim (its chapter a link), the paper's value,
    what was measured, the verdict with p and Holm's p (and the regime's tag, its long text
    folded), and the design's power: the detectable effect and the seeds needed."""
    lines = ["| claim | the paper | measured, 95% interval | verdict, p (Holm's p), regime | detectable; "
             "seeds needed |", "|---|---|---|---|---|"]
    for r in card_rows(records):
        if "paper" not in r:
            lines.append(f"| {r['claim']}, {r['chapter']} | – | – | {r['verdict']} | – |")
            continue
        verdict = f"**{r['verdict']}**" + (f" ({r['size']})" if r["size"] else "")
        if not r["survives"]:
            verdict += ", not after Holm"
        if r["source"] == "paper scale":
            verdict += " (paper-scale runs)"
        regime = r["regime"] if not r["regime_long"] else \
            f"<details><summary>{r['regime']}</summary>{r['regime_long']}</details>"
        lines.append(f"| {r['claim']}, {r['chapter']} | {r['paper']} | {r['measured']} | {verdict}; "
                     f"p {r['p']} ({r['holm']}); regime: {regime} | {r['detectable']}; {r['seeds']} |")
    return "\n".join(lines) + "\n"


def glance_markdown(records: dict) -> str:
    """The first page's table: each claim, its chapter and its verdict (said to be from the runs at
    the paper's scale where it is)."""
    lines = ["| claim | chapter | verdict |", "|---|---|---|"]
    for r in card_rows(records):
        chapter = r.get("chapter", "–")
        verdict = r["verdict"] + (" (not after Holm)" if r.get("survives") is False else "")
        verdict += " (paper-scale runs)" if r.get("source") == "paper scale" else ""
        lines.append(f"| {r['claim']} | {chapter} | **{verdict}** |")
    return "\n".join(lines) + "\n"


def second_readings(records: dict) -> list:
    """Readings a chapter judged beside its claim's own (the same procedure on another outcome:
    the train-test gap, the error after a fixed number of epochs), found in the family's records'
    details: one Claim each, its comparison the reading's, its claim text naming the reading, its
    baseline the reading's own ``baseline_label`` where it has one. Any of them may contradict the
    paper; chapter 9 shows them all, so none is buried."""
    readings = []
    for key, claim in family(records).items():
        for name, value in claim.details.items():
            if isinstance(value, dict) and {"design", "verdict", "effect", "ci_low"} <= set(value):
                readings.append(replace(claim, key=f"{key}: {name}", measures=key, verdict=value["verdict"],
                                        comparison=value, baseline=None, variant=None, effect=value["effect"],
                                        baseline_label=value.get("baseline_label", claim.baseline_label),
                                        claim=f"{claim.claim} (second reading: {name.replace('_', ' ')})"))
    return readings


def readings_markdown(records: dict) -> str:
    """The second readings as a MyST table: the claim, the reading, what it measured, its verdict
    (one that contradicts the paper in bold, said in words)."""
    lines = ["| claim | second reading | measured, 95% interval | verdict |", "|---|---|---|---|"]
    for r in second_readings(records):
        verdict = "**contradicted: against the paper**" if r.verdict == "contradicted" else r.verdict
        name = r.key.split(": ", 1)[1].replace("_", " ")
        lines.append(f"| {REGISTRY[r.claim_key].claim}, {_link(r.chapter)} | {name} | {measured(r)} | {verdict} |")
    return "\n".join(lines) + "\n"


def verdicts_changed_by_holm(records: dict) -> list:
    """The claims whose interval excludes zero at 95% but whose Holm-adjusted p is 0.05 or more."""
    return [r["key"] for r in card_rows(records) if r.get("survives") is False]
