"""The feedback loop's front door: everything the server records about suggestions, review
comments and explanations goes through store.FeedbackStore (one writer, one place that knows
whether telemetry is on). tracker.py decides what became of each completion (accepted, partly,
rejected, survival, replacement), insights.py records what was done with comments and
explanations, reports.py reads the store back for the editor plugins' commands.
"""
