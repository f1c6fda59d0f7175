"""Fraud detection: explainable rules (rules.py), a learned score (model.py) and what both read
of a payment (features.py). The workflow's fraud step (activities/fraud.py) puts them together."""
