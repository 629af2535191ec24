"""The acceptance gate: LightGBM decides whether a completion is worth computing (before
generation) and worth showing (after), and learns from its user.

features.py  what is known about a request, as numbers (one function for training and serving)
model.py     a trained gate on disk: load (with checks), score, save
train.py     fixed LightGBM settings, validation splits, thresholds
metrics.py   AUC, keep/hide trade-off, calibration
plot.py      the evaluation chart
default/     the shipped model, trained on CUPS (see its PROVENANCE.md)
"""
