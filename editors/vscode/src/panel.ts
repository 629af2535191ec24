// Explanations and stats in a side panel (a webview beside the editor). An explanation carries
// "Helpful" / "Not helpful" buttons that call the server's `hintwise.rateExplanation`.
import * as fs from "fs";
import * as vscode from "vscode";

export interface Explanation {
  id: string;
  markdown: string;
  culprit: { uri: string; line: number } | null;
  facts?: string[];
  fix: string | null;
}

type Run = (command: string, argument: object) => Promise<unknown>;

function nonce(): string {
  return Array.from({ length: 24 }, () => Math.floor(Math.random() * 36).toString(36)).join("");
}

function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

async function renderMarkdown(markdown: string): Promise<string> {
  try {
    const html = await vscode.commands.executeCommand<string>("markdown.api.render", markdown);
    if (typeof html === "string") {
      return html;
    }
  } catch {
    // the built-in markdown extension is off: show the text as it is
  }
  return `<pre>${escapeHtml(markdown)}</pre>`;
}

function page(title: string, body: string, script: string): string {
  const n = nonce();
  return `<!DOCTYPE html><html><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; img-src data:; style-src 'unsafe-inline'; script-src 'nonce-${n}';">
<title>${escapeHtml(title)}</title>
<style>
body { font-family: var(--vscode-font-family); color: var(--vscode-foreground); padding: 0 1em; }
pre, code { font-family: var(--vscode-editor-font-family); }
pre { background: var(--vscode-textCodeBlock-background); padding: .6em; overflow-x: auto; }
.buttons { margin: 1.2em 0; display: flex; gap: .6em; }
button { background: var(--vscode-button-background); color: var(--vscode-button-foreground); border: 0; padding: .4em 1em; cursor: pointer; }
button.secondary { background: var(--vscode-button-secondaryBackground); color: var(--vscode-button-secondaryForeground); }
#thanks { opacity: .8; }
img { max-width: 100%; }
</style></head><body>${body}<script nonce="${n}">${script}</script></body></html>`;
}

export class Panel implements vscode.Disposable {
  private panel: vscode.WebviewPanel | undefined;
  /** The last explanation shown and what was done with it (read by the editor test). */
  last: { id?: string; rated?: boolean; kind?: string } = {};

  constructor(private readonly run: Run) {}

  private open(title: string): vscode.WebviewPanel {
    if (!this.panel) {
      this.panel = vscode.window.createWebviewPanel(
        "hintwise.panel",
        title,
        { viewColumn: vscode.ViewColumn.Beside, preserveFocus: true },
        { enableScripts: true, retainContextWhenHidden: true },
      );
      this.panel.onDidDispose(() => (this.panel = undefined));
      this.panel.webview.onDidReceiveMessage((message) => this.received(message));
    }
    this.panel.title = title;
    this.panel.reveal(vscode.ViewColumn.Beside, true);
    return this.panel;
  }

  private current: Explanation | undefined;

  private async received(message: { type?: string; helpful?: boolean }): Promise<void> {
    const answer = this.current;
    if (!answer) {
      return;
    }
    if (message.type === "rate" && typeof message.helpful === "boolean") {
      await this.run("hintwise.rateExplanation", { id: answer.id, helpful: message.helpful });
      this.last = { id: answer.id, rated: message.helpful, kind: "explanation" };
      void this.panel?.webview.postMessage({ type: "rated", helpful: message.helpful });
    } else if (message.type === "fix") {
      await this.run("hintwise.applyFix", { id: answer.id });
    } else if (message.type === "culprit" && answer.culprit) {
      const document = await vscode.workspace.openTextDocument(vscode.Uri.parse(answer.culprit.uri));
      const line = new vscode.Position(answer.culprit.line, 0);
      await vscode.window.showTextDocument(document, {
        viewColumn: vscode.ViewColumn.One,
        selection: new vscode.Range(line, line),
      });
    }
  }

  async showExplanation(answer: Explanation): Promise<void> {
    this.current = answer;
    this.last = { id: answer.id, kind: "explanation" };
    const html = await renderMarkdown(answer.markdown);
    const buttons = [
      `<button id="helpful">Helpful</button>`,
      `<button id="unhelpful" class="secondary">Not helpful</button>`,
      answer.fix ? `<button id="fix" class="secondary">Apply fix</button>` : "",
      answer.culprit ? `<button id="culprit" class="secondary">Go to line ${answer.culprit.line + 1}</button>` : "",
    ].join("");
    const script = `
const vscode = acquireVsCodeApi();
const send = (message) => vscode.postMessage(message);
document.getElementById("helpful").onclick = () => send({ type: "rate", helpful: true });
document.getElementById("unhelpful").onclick = () => send({ type: "rate", helpful: false });
const fix = document.getElementById("fix"); if (fix) fix.onclick = () => send({ type: "fix" });
const culprit = document.getElementById("culprit"); if (culprit) culprit.onclick = () => send({ type: "culprit" });
window.addEventListener("message", (event) => {
  if (event.data.type === "rated") {
    document.getElementById("thanks").textContent = event.data.helpful ? "Thanks: marked helpful." : "Thanks: marked not helpful.";
  }
});`;
    const body = `<div class="explanation">${html}</div><div class="buttons">${buttons}</div><p id="thanks"></p>`;
    this.open("hintwise: explanation").webview.html = page("hintwise explanation", body, script);
  }

  async showStats(stats: { text?: string; chart?: string | null; store?: string; error?: string }): Promise<void> {
    this.current = undefined;
    this.last = { kind: "stats" };
    let image = "";
    if (stats.chart) {
      try {
        const data = fs.readFileSync(stats.chart).toString("base64");
        image = `<img alt="acceptance and survival per day" src="data:image/png;base64,${data}">`;
      } catch {
        image = "";
      }
    }
    const text = stats.error
      ? `Could not read the feedback store: ${stats.error}`
      : stats.text || "No suggestions recorded yet.";
    const body = `<h2>hintwise feedback</h2><p>Store: <code>${escapeHtml(stats.store ?? "?")}</code></p>${image}<pre>${escapeHtml(text)}</pre>`;
    this.open("hintwise: feedback stats").webview.html = page("hintwise stats", body, "");
  }

  dispose(): void {
    this.panel?.dispose();
  }
}
