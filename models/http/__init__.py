"""OpenAI-compatible inference servers: `engine.HttpEngine` is the Engine; `options` says where
the server is, `transport` talks to it, `probe` finds out what it is, `streams` collects its
streamed answers."""
