"""The engines behind the features: which engine a feature runs on, from the settings
(choice.py), the model worker threads that own them (workers.py), and running long work on a
worker so that completions always go first (background.py)."""
