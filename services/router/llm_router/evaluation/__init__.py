"""Offline evaluation and calibration of the classifier and policy.

`metrics` defines every score; `report` implements `llm-router eval`;
`calibrate` implements `llm-router calibrate`; `plots` draws the PNGs and
needs the optional `llm-router[eval]` extra (matplotlib).
"""
