"""Completions at the cursor: what the model sees and which kind of answer to ask for
(context.py), the suggestions being typed along (cache.py), the pipeline that asks the gate and
the model (completer.py), what the editor should show of the model's text (postprocess.py), and
one answer with its reasons and timings (result.py). Shared by the server and `hintwise complete`.
"""
