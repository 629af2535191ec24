"""LoRA tuning of a GGUF completion model on CPU (the `tune` extra: torch, transformers, PEFT).

    examples.py  what a training example is: the prompt's tokens as the server builds them and
                 the text the user kept

The glue that turns the feedback store and a replayed repository into examples, and decides
whether an adapter is installed, lives in `hintwise.lsp_server.tune`: this package knows
nothing of the store or the server.
"""
