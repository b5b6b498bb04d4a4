"""A study: variants of one config × seeds, each trained on the same data and budget and measured
with the same metrics; everything the report needs is on disk, so it can be rebuilt at any time.

    <study>/study.json              the plan: base config, varied keys, seeds, budget, metrics
    <study>/runs/<member>/          each member's run directory (the layout of `ganforge train`)
    <study>/members/<member>.json   how its training ended, and which metrics failed (the evaluation
                                    itself is an eval row of the member run's metrics.jsonl, as every run's)
    <study>/report.html, report.md, report/*.png   (study/writeup.py)

A member is one variant (a choice of value for every varied key) with one seed. Members are
trained seed by seed (every variant's seed 0 first), so a study stopped early still compares; with
jobs > 1, that many at once, each in its own process.

plan (members, validated up front) → runner (train, evaluate, record) → results (aggregate) →
report (the document, rendered by ganforge.report). This package sits above training; nothing
below imports it.
"""
