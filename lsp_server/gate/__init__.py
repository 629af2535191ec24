"""The acceptance gate inside the server (the trained LightGBM models are in hintwise.models.gate):
which gate is installed and its two verdicts on the completion path (keeper.py), what the user did
this session (session.py), GateInputs from live requests, CUPS rows and tree-sitter (inputs.py),
training and evaluating on the store or CUPS (training.py), and retraining in the background
(retrain.py).
"""
