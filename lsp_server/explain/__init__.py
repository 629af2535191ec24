"""Explanations of errors and tracebacks: a traceback's frames mapped to workspace files
(tracebacks.py), what the model is asked, with the facts known beforehand (question.py), its
answer checked against them (answer.py), the sandboxed, traced re-run that adds runtime facts
(tracing.py, with its child process trace_runner.py), and what the server keeps (state.py).
"""
