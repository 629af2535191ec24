"""In-process llama.cpp: `engine.LlamaEngine` is the Engine; the other modules are its parts
(loading, vocabulary, completion, chat, scoring; see engine.py's docstring)."""
