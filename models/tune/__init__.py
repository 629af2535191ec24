"""LoRA tuning of a GGUF completion model on CPU (the `tune` extra: torch, transformers, PEFT).

    examples.py    what a training example is: the prompt's tokens as the server builds them
                   and the text the user kept
    train.py       `train`: a resumable supervised LoRA run on the examples
    base.py        the base model for training: the server's GGUF, loaded by transformers
    batches.py     examples as token sequences, left-padded batches, the loss on the targets
    checkpoint.py  a run's checkpoint in its work folder (adapter, optimizer, data order)
    gguf_lora.py   the PEFT adapter written as the GGUF LoRA llama.cpp loads; `import_peft`
    runtime.py     the optional extra's modules, `TuneUnavailable` with the install command

The glue that turns the feedback store and a replayed repository into examples, and decides
whether an adapter is installed, lives in `hintwise.lsp_server.tune`: this package knows
nothing of the store or the server. Nothing here imports torch until training starts.
"""
