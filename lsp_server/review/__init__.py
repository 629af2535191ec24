"""Review comments on save: what the model is asked about one unit (question.py), reviewing a
unit on the model thread, grounded in the model's own token scores (reviewer.py), which comments
are kept and where they point (comments.py), and what the server keeps per document (state.py).
Shared by the server (didSave, `hintwise.review`), `hintwise review` and the benchmark.
"""
