"""GGUF model files: reading their header (`gguf`), describing them (`card`), the models that
ship with hintwise (`bundled`) and the opt-in download (`download`)."""
