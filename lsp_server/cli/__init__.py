"""The `hintwise` command (click): one module per subcommand or group.

serve.py     hintwise serve            the language server (stdio or TCP)
complete.py  hintwise complete         the suggestion the server would give at FILE:LINE:COL
review.py    hintwise review           review files (text, JSON, SARIF)
explain.py   hintwise explain          explain a traceback or an error at FILE:LINE
doctor.py    hintwise doctor           what is installed, which model, how fast, what is wrong
feedback.py  hintwise feedback …       the local feedback store: stats, export, recent, purge
gate.py      hintwise gate …           the acceptance gate: status, eval, train
models.py    hintwise models …         the models hintwise can use; the opt-in download
tune.py      hintwise tune             a LoRA adapter trained on your feedback, installed if better
common.py    options and helpers the subcommands share
"""

from __future__ import annotations

import click

from hintwise.lsp_server.cli import (
    complete,
    doctor,
    explain,
    feedback,
    gate,
    models,
    review,
    serve,
    tune,
)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="hintwise")
def main() -> None:
    """hintwise: a local AI assistant for any LSP editor, run on this machine."""


for command in (
    serve.serve,
    complete.complete,
    doctor.doctor,
    feedback.feedback,
    gate.gate,
    models.models,
    review.review_command,
    explain.explain_command,
    tune.tune,
):
    main.add_command(command)
