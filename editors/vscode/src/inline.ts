// Inline completions: the middleware around vscode-languageclient's inline completion feature.
// It reports to the server what the stable VS Code API does not tell a provider: a suggestion
// shown (`hintwise/didShow`), accepted in part with VS Code's accept word / accept line
// (`hintwise/didPartiallyAccept`), dismissed with Escape (`hintwise/didReject`).
import * as vscode from "vscode";
import type { LanguageClient } from "vscode-languageclient/node";

export interface Shown {
  id: string;
  uri: string;
  start: vscode.Position;
  text: string;
  gate: number | null;
  /** UTF-16 units of `text` accepted so far. */
  accepted: number;
  done: boolean;
}

export interface InlineEvents {
  generating(): void;
  answered(latencyMs: number, shown: Shown | undefined): void;
  accepted(): void;
}

type Items = vscode.InlineCompletionItem[] | vscode.InlineCompletionList | null | undefined;
type Next = (
  document: vscode.TextDocument,
  position: vscode.Position,
  context: vscode.InlineCompletionContext,
  token: vscode.CancellationToken,
) => vscode.ProviderResult<Items>;

const REPORTED_LIMIT = 500;

function itemText(item: vscode.InlineCompletionItem): string {
  return typeof item.insertText === "string" ? item.insertText : item.insertText.value;
}

/** Code points, as the server counts characters (Python str). */
function codePoints(text: string): number {
  return Array.from(text).length;
}

export class InlineTracker {
  current: Shown | undefined;
  private reported = new Set<string>();

  constructor(
    private readonly client: () => LanguageClient | undefined,
    private readonly enabled: () => boolean,
    private readonly events: InlineEvents,
  ) {}

  private notify(method: string, params: object): void {
    const client = this.client();
    if (client?.isRunning()) {
      void client.sendNotification(method, params).catch(() => undefined);
    }
  }

  /** middleware.provideInlineCompletionItems */
  readonly provide = async (
    document: vscode.TextDocument,
    position: vscode.Position,
    context: vscode.InlineCompletionContext,
    token: vscode.CancellationToken,
    next: Next,
  ): Promise<Items> => {
    if (!this.enabled()) {
      return null;
    }
    const started = Date.now();
    this.events.generating();
    let shown: Shown | undefined;
    try {
      const result = await next(document, position, context, token);
      const items = Array.isArray(result) ? result : (result?.items ?? []);
      const first = items[0];
      const args = first?.command?.arguments;
      const id = Array.isArray(args) && typeof args[0] === "string" ? args[0] : undefined;
      if (first && id && !token.isCancellationRequested) {
        const extra = Array.isArray(args) ? args[1] : undefined;
        const gate = typeof extra?.gate === "number" ? extra.gate : null;
        shown = {
          id,
          uri: document.uri.toString(),
          start: first.range?.start ?? position,
          text: itemText(first),
          gate,
          accepted: 0,
          done: false,
        };
        this.current = shown;
        if (!this.reported.has(id)) {
          if (this.reported.size > REPORTED_LIMIT) {
            this.reported.clear();
          }
          this.reported.add(id);
          this.notify("hintwise/didShow", { id });
        }
      }
      return result;
    } finally {
      this.events.answered(Date.now() - started, shown);
    }
  };

  /** middleware.executeCommand saw `hintwise.accept`: the whole suggestion was taken. */
  acceptedById(id: unknown): void {
    if (this.current && this.current.id === id) {
      this.current.done = true;
    }
    this.events.accepted();
  }

  /** Run VS Code's accept word / accept line, then report how much of the suggestion is in. */
  async acceptPart(kind: "word" | "line"): Promise<void> {
    const shown = this.current;
    await vscode.commands.executeCommand(
      kind === "word"
        ? "editor.action.inlineSuggest.acceptNextWord"
        : "editor.action.inlineSuggest.acceptNextLine",
    );
    const editor = vscode.window.activeTextEditor;
    if (!shown || shown.done || !editor || editor.document.uri.toString() !== shown.uri) {
      return;
    }
    const document = editor.document;
    const end = document.positionAt(document.offsetAt(shown.start) + shown.text.length);
    const there = document.getText(new vscode.Range(shown.start, end));
    let n = 0;
    while (n < there.length && n < shown.text.length && there[n] === shown.text[n]) {
      n++;
    }
    if (n <= shown.accepted) {
      return;
    }
    shown.accepted = n;
    if (n >= shown.text.length) {
      shown.done = true;
      const client = this.client();
      await client?.sendRequest("workspace/executeCommand", {
        command: "hintwise.accept",
        arguments: [shown.id],
      });
      this.events.accepted();
    } else {
      this.notify("hintwise/didPartiallyAccept", {
        id: shown.id,
        acceptedLength: codePoints(shown.text.slice(0, n)),
      });
    }
  }

  /** Escape on a visible suggestion: hide it and report the rejection. */
  async dismiss(): Promise<void> {
    const shown = this.current;
    await vscode.commands.executeCommand("editor.action.inlineSuggest.hide");
    if (shown && !shown.done && shown.accepted === 0) {
      shown.done = true;
      this.notify("hintwise/didReject", { id: shown.id });
    }
  }
}
