"""`python -m hintwise …` is the `hintwise` command (the VS Code extension starts the server so)."""

from hintwise.lsp_server.cli import main

if __name__ == "__main__":  # not when a child process (gate retraining) imports it
    main()
