"""What the server knows about code, without LSP and without a model: the text of open
documents (LSP positions), tree-sitter syntax, the units a file is made of (functions, classes),
line edits that must still parse, and which tokens surprised the model (review candidates).

Every wing (completion, gate, review, explain) builds on these; nothing here imports them.
"""
