"""The LSP front (installed as hintwise.lsp_server): may import hintwise.models and
hintwise.telemetry, never the reverse. Its folders are its architecture, each importing only the
ones listed after it (import-linter checks this):

    cli/         the `hintwise` command: serve, complete, review, explain, doctor, feedback, gate,
                 models
    tune/        `hintwise tune`: replaying a repository through the completion pipeline, the
                 gate retrained on the replay
    features/    thin LSP handlers, one module per concern; the protocol's names
    server.py    the server process: its services, built at once; messages and progress
    protocol.py  pygls' protocol without pygls' copy of each document
    feedback/    the one door to the feedback store: completion outcomes, comment and
                 explanation events, reports for the plugins
    completion/  cursor context, typing-along cache, the completion pipeline, post-processing
    review/      review comments on save: question, grounded review, filters, per-document state
    explain/     explanations: traceback frames, question, checked answer, sandboxed tracing
    gate/        the acceptance gate in the server: verdicts, session, inputs, training
    engines/     settings → engine, the model worker threads, background work
    code/        documents, tree-sitter syntax, units, parse-checked edits, model surprise
    config.py    every setting, its default, where values come from
    clock.py     the loop's clock, or a manual one for tests
"""
