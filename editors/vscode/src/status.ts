// The status bar item: model, state, last latency, gate on/off, acceptance rate today.
import * as vscode from "vscode";

export type State = "not installed" | "starting" | "loading" | "ready" | "generating" | "failed" | "off" | "stopped";

export class StatusBar implements vscode.Disposable {
  readonly item = vscode.window.createStatusBarItem("hintwise.status", vscode.StatusBarAlignment.Right, 100);
  model = "hintwise";
  state: State = "starting";
  latencyMs: number | undefined;
  gate: number | null | undefined;
  todayRate: number | null | undefined;
  todayShown = 0;
  error: string | undefined;
  source: string | undefined;
  adapter: string | undefined; // the LoRA adapter completions use, or why it is not used

  constructor() {
    this.item.name = "hintwise";
    this.item.command = "hintwise.editor.menu";
    this.render();
    this.item.show();
  }

  set(state: State): void {
    this.state = state;
    this.render();
  }

  render(): void {
    const icon =
      this.state === "generating" || this.state === "loading" || this.state === "starting"
        ? "$(loading~spin)"
        : this.state === "failed" || this.state === "not installed"
          ? "$(error)"
          : this.state === "off"
            ? "$(circle-slash)"
            : "$(sparkle)";
    const parts = [`${icon} ${this.model}`, this.state];
    if (this.latencyMs !== undefined) {
      parts.push(`${Math.round(this.latencyMs)} ms`);
    }
    parts.push(this.gate === undefined ? "gate –" : this.gate === null ? "gate off" : "gate on");
    if (typeof this.todayRate === "number") {
      parts.push(`${Math.round(this.todayRate * 100)}% today`);
    }
    this.item.text = parts.join(" · ");
    const tooltip = new vscode.MarkdownString(
      [
        `**hintwise** (${this.state})`,
        `- model: ${this.model}`,
        this.adapter ? `- adapter: ${this.adapter}` : "",
        `- last suggestion: ${this.latencyMs === undefined ? "none yet" : `${Math.round(this.latencyMs)} ms`}`,
        `- acceptance gate: ${this.gate === undefined ? "no score yet" : this.gate === null ? "off" : `on (last score ${this.gate.toFixed(2)})`}`,
        `- accepted today: ${typeof this.todayRate === "number" ? `${Math.round(this.todayRate * 100)}% of ${this.todayShown}` : "nothing shown yet"}`,
        this.source ? `- server: ${this.source}` : "",
        this.error ? `- problem: ${this.error}` : "",
        "",
        "Click for hintwise commands.",
      ]
        .filter((line) => line !== "")
        .join("\n"),
    );
    this.item.tooltip = tooltip;
    this.item.backgroundColor =
      this.state === "failed" || this.state === "not installed"
        ? new vscode.ThemeColor("statusBarItem.errorBackground")
        : undefined;
  }

  dispose(): void {
    this.item.dispose();
  }
}
