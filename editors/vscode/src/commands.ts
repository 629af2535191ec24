// The commands a user runs: explain, explain traceback, review, stats, export, toggle, pick model.
import * as vscode from "vscode";
import type { LanguageClient } from "vscode-languageclient/node";
import type { Explanation, Panel } from "./panel";

export interface CommandContext {
  client(): LanguageClient | undefined;
  run(command: string, argument: object): Promise<unknown>;
  panel: Panel;
  restart(): Promise<void>;
  refreshStats(): void;
}

const EXPORT_FORMATS = [
  { label: "dpo", description: "prompt / chosen / rejected pairs (TRL DPOTrainer)" },
  { label: "kto", description: "prompt / completion / label rows (TRL KTOTrainer)" },
  { label: "events", description: "every suggestion and event" },
];

function diagnosticAtCursor(editor: vscode.TextEditor): vscode.Diagnostic | undefined {
  const position = editor.selection.active;
  const all = vscode.languages.getDiagnostics(editor.document.uri);
  return (
    all.find((d) => d.range.contains(position)) ??
    all.find((d) => d.range.start.line <= position.line && position.line <= d.range.end.line)
  );
}

async function explainError(ctx: CommandContext): Promise<void> {
  const editor = vscode.window.activeTextEditor;
  const client = ctx.client();
  if (!editor || !client) {
    void vscode.window.showWarningMessage("hintwise: open a file the server handles first.");
    return;
  }
  const uri = editor.document.uri.toString();
  const diagnostic = diagnosticAtCursor(editor);
  let argument: object;
  if (diagnostic) {
    argument = { uri, diagnostic: client.code2ProtocolConverter.asDiagnostic(diagnostic), show: false };
  } else {
    const message = await vscode.window.showInputBox({
      prompt: "No diagnostic at the cursor. Paste the error message to explain:",
    });
    if (!message) {
      return;
    }
    argument = { uri, line: editor.selection.active.line, message, show: false };
  }
  const answer = await vscode.window.withProgress(
    { location: vscode.ProgressLocation.Window, title: "hintwise: explaining…" },
    () => ctx.run("hintwise.explain", argument),
  );
  if (answer) {
    await ctx.panel.showExplanation(answer as Explanation);
  }
}

async function explainTraceback(ctx: CommandContext): Promise<void> {
  const editor = vscode.window.activeTextEditor;
  let text = editor && !editor.selection.isEmpty ? editor.document.getText(editor.selection) : "";
  if (!text.trim()) {
    text = await vscode.env.clipboard.readText();
  }
  if (!text.trim()) {
    void vscode.window.showWarningMessage("hintwise: select a traceback, or copy one to the clipboard, first.");
    return;
  }
  const answer = await vscode.window.withProgress(
    { location: vscode.ProgressLocation.Window, title: "hintwise: explaining the traceback…" },
    () => ctx.run("hintwise.explainTraceback", { text, show: false }),
  );
  if (answer) {
    await ctx.panel.showExplanation(answer as Explanation);
  }
}

async function reviewFile(ctx: CommandContext): Promise<void> {
  const editor = vscode.window.activeTextEditor;
  if (!editor) {
    return;
  }
  const result = (await vscode.window.withProgress(
    { location: vscode.ProgressLocation.Window, title: "hintwise: reviewing…" },
    () => ctx.run("hintwise.review", { uri: editor.document.uri.toString() }),
  )) as { comments?: number } | undefined;
  if (result) {
    const n = result.comments ?? 0;
    void vscode.window.showInformationMessage(`hintwise: review done, ${n} comment${n === 1 ? "" : "s"} (see Problems).`);
  }
}

async function showStats(ctx: CommandContext): Promise<void> {
  const stats = await ctx.run("hintwise.stats", { chart: true });
  if (stats) {
    await ctx.panel.showStats(stats as { text?: string; chart?: string });
  }
  ctx.refreshStats();
}

async function exportFeedback(ctx: CommandContext): Promise<void> {
  const format = await vscode.window.showQuickPick(EXPORT_FORMATS, { placeHolder: "Export format" });
  if (!format) {
    return;
  }
  const folder = vscode.workspace.workspaceFolders?.[0]?.uri;
  const target = await vscode.window.showSaveDialog({
    defaultUri: folder ? vscode.Uri.joinPath(folder, `hintwise-${format.label}.jsonl`) : undefined,
    filters: { "JSON Lines": ["jsonl"] },
  });
  if (!target) {
    return;
  }
  // The user chose the file in the save dialog (which asks before replacing one).
  const options = { format: format.label, path: target.fsPath, confirmed: true, replace: true };
  const result = (await ctx.run("hintwise.exportFeedback", options)) as
    | { written?: number; skipped?: number; error?: string }
    | undefined;
  if (result?.error) {
    void vscode.window.showErrorMessage(`hintwise: export failed: ${result.error}`);
  } else if (result) {
    void vscode.window.showInformationMessage(
      `hintwise: ${result.written} ${format.label} rows written to ${target.fsPath}` +
        (result.skipped ? ` (${result.skipped} skipped)` : ""),
    );
  }
}

async function toggleCompletions(): Promise<void> {
  const config = vscode.workspace.getConfiguration("hintwise");
  const on = config.get<boolean>("completion.enabled", true);
  await config.update("completion.enabled", !on, vscode.ConfigurationTarget.Global);
  void vscode.window.showInformationMessage(`hintwise: completions ${on ? "off" : "on"}`);
}

async function pickModel(): Promise<void> {
  const picked = await vscode.window.showOpenDialog({
    canSelectMany: false,
    filters: { "GGUF model": ["gguf"] },
    openLabel: "Use this model",
  });
  if (picked?.[0]) {
    await vscode.workspace
      .getConfiguration("hintwise")
      .update("model.path", picked[0].fsPath, vscode.ConfigurationTarget.Global);
    void vscode.window.showInformationMessage(`hintwise: loading ${picked[0].fsPath}`);
  }
}

export const MENU: { id: string; label: string; run: (ctx: CommandContext) => Promise<void> }[] = [
  { id: "hintwise.editor.explainError", label: "$(question) Explain error at cursor", run: explainError },
  { id: "hintwise.editor.explainTraceback", label: "$(debug) Explain traceback (selection or clipboard)", run: explainTraceback },
  { id: "hintwise.editor.reviewFile", label: "$(checklist) Review this file now", run: reviewFile },
  { id: "hintwise.editor.showStats", label: "$(graph) Show feedback stats", run: showStats },
  { id: "hintwise.editor.exportFeedback", label: "$(export) Export feedback (DPO / KTO)", run: exportFeedback },
  { id: "hintwise.editor.toggleCompletions", label: "$(circle-slash) Toggle completions", run: () => toggleCompletions() },
  { id: "hintwise.editor.pickModel", label: "$(file-binary) Pick a model file (GGUF)", run: () => pickModel() },
  { id: "hintwise.editor.restart", label: "$(debug-restart) Restart the server", run: (ctx) => ctx.restart() },
];

export function register(ctx: CommandContext): vscode.Disposable[] {
  const disposables = MENU.map((entry) => vscode.commands.registerCommand(entry.id, () => entry.run(ctx)));
  disposables.push(
    vscode.commands.registerCommand("hintwise.editor.menu", async () => {
      const picked = await vscode.window.showQuickPick(MENU, { placeHolder: "hintwise" });
      if (picked) {
        await picked.run(ctx);
      }
    }),
  );
  return disposables;
}
