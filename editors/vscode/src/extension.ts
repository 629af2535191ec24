// hintwise for VS Code: starts `hintwise serve`, restarts it on crash with backoff, and wires the
// inline completion middleware, the status bar, the commands and the side panel.
import * as vscode from "vscode";
import {
  CloseAction,
  type CloseHandlerResult,
  DidChangeConfigurationNotification,
  ErrorAction,
  type ErrorHandlerResult,
  ExecuteCommandRequest,
  LanguageClient,
  type LanguageClientOptions,
  type ServerOptions,
  State,
} from "vscode-languageclient/node";
import * as commands from "./commands";
import { InlineTracker } from "./inline";
import { Panel } from "./panel";
import { findServer, reportMissing, type ServerCommand } from "./server";
import { serverSettings } from "./settings";
import { StatusBar } from "./status";

const LANGUAGES = [
  "python", "javascript", "typescript", "javascriptreact", "typescriptreact",
  "go", "rust", "java", "c", "cpp",
];
/** Seconds to wait before restart number n after a crash (then the last one, until stable). */
const BACKOFF_S = [1, 2, 4, 8, 16, 30];
const STABLE_AFTER_MS = 3 * 60 * 1000;
const MAX_CRASHES = 8;
const STATUS_POLL_MS = 5000;
const STATS_POLL_MS = 60000;

let client: LanguageClient | undefined;
let status: StatusBar;
let output: vscode.LogOutputChannel;
let crashes = 0;
let startedAt = 0;
let stopping = false;
/** Bumped on every (re)start: a crash handler of an older client must not restart it. */
let generation = 0;

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

async function run(command: string, argument: object): Promise<unknown> {
  if (!client?.isRunning()) {
    void vscode.window.showWarningMessage("hintwise: the server is not running.");
    return undefined;
  }
  try {
    return await client.sendRequest(ExecuteCommandRequest.type, { command, arguments: [argument] });
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    void vscode.window.showErrorMessage(`hintwise: ${command} failed: ${message}`);
    return undefined;
  }
}

async function pollStatus(): Promise<void> {
  if (!client?.isRunning()) {
    return;
  }
  try {
    const answer = (await client.sendRequest("hintwise/status", {})) as {
      state?: string;
      model?: string;
      error?: string | null;
      adapter?: { run_id?: string | null; path?: string | null; loaded?: boolean; problem?: string | null } | null;
    };
    status.model = (answer.model ?? "hintwise").split("/").pop() ?? "hintwise";
    const lora = answer.adapter;
    status.adapter = lora?.loaded
      ? `${lora.run_id ? `run ${lora.run_id}` : (lora.path ?? "")} (hintwise tune)`
      : lora?.problem
        ? `not used: ${lora.problem}`
        : undefined;
    status.error = answer.error ?? undefined;
    if (status.state !== "generating" && status.state !== "off") {
      status.state = answer.state === "ready" ? "ready" : answer.state === "failed" ? "failed" : "loading";
    }
    status.render();
  } catch {
    // the server is busy restarting; the next poll tries again
  }
}

async function pollStats(): Promise<void> {
  if (!client?.isRunning()) {
    return;
  }
  try {
    const stats = (await client.sendRequest(ExecuteCommandRequest.type, {
      command: "hintwise.stats",
      arguments: [{}],
    })) as { today?: { rate?: number | null; n?: number } };
    status.todayRate = stats?.today?.rate ?? null;
    status.todayShown = stats?.today?.n ?? 0;
    status.render();
  } catch {
    // an older server without hintwise.stats: no rate in the status bar
  }
}

function completionsEnabled(): boolean {
  return vscode.workspace.getConfiguration("hintwise").get<boolean>("completion.enabled", true);
}

function createClient(
  server: ServerCommand,
  extension: vscode.Extension<unknown>,
  tracker: InlineTracker,
): LanguageClient {
  const mine = ++generation;
  const abandoned = () => stopping || mine !== generation;
  // No `transport`: TransportKind.stdio would append `--stdio`, which `hintwise serve` does not take.
  const serverOptions: ServerOptions = {
    command: server.command,
    args: server.args,
    options: { env: process.env },
  };
  const clientOptions: LanguageClientOptions = {
    documentSelector: LANGUAGES.flatMap((language) => [
      { scheme: "file", language },
      { scheme: "untitled", language },
    ]),
    outputChannel: output,
    // A server that dies while starting is the crash handler's business (restart with backoff,
    // one message after too many); no extra toast per attempt.
    initializationFailedHandler: (error) => {
      output.error(`hintwise: the server failed to initialize: ${error instanceof Error ? error.message : String(error)}`);
      return false;
    },
    initializationOptions: serverSettings(extension),
    middleware: {
      provideInlineCompletionItems: tracker.provide,
      executeCommand: async (command, args, next) => {
        const result = await next(command, args);
        if (command === "hintwise.accept") {
          tracker.acceptedById(args[0]);
        }
        return result;
      },
      workspace: {
        configuration: (params) =>
          params.items.map((item) =>
            item.section === "hintwise"
              ? serverSettings(extension, item.scopeUri ? vscode.Uri.parse(item.scopeUri) : undefined)
              : null,
          ),
      },
    },
    errorHandler: {
      error: (): ErrorHandlerResult => ({ action: ErrorAction.Continue }),
      closed: async (): Promise<CloseHandlerResult> => {
        if (abandoned()) {
          return { action: CloseAction.DoNotRestart, handled: true };
        }
        if (Date.now() - startedAt > STABLE_AFTER_MS) {
          crashes = 0;
        }
        crashes += 1;
        if (crashes > MAX_CRASHES) {
          status.set("failed");
          void vscode.window
            .showErrorMessage(
              `hintwise: the server stopped ${crashes - 1} times in a row; see the hintwise output.`,
              "Restart",
              "Show output",
            )
            .then((choice) => {
              if (choice === "Restart") {
                void vscode.commands.executeCommand("hintwise.editor.restart");
              } else if (choice === "Show output") {
                output.show();
              }
            });
          return { action: CloseAction.DoNotRestart, handled: true };
        }
        const delay = BACKOFF_S[Math.min(crashes - 1, BACKOFF_S.length - 1)];
        output.appendLine(`hintwise: the server stopped; restarting in ${delay} s (crash ${crashes})`);
        status.set("starting");
        await sleep(delay * 1000);
        if (abandoned()) {
          return { action: CloseAction.DoNotRestart, handled: true };
        }
        startedAt = Date.now();
        return { action: CloseAction.Restart, handled: true };
      },
    },
  };
  return new LanguageClient("hintwise", "hintwise", serverOptions, clientOptions);
}

export async function activate(context: vscode.ExtensionContext): Promise<void> {
  output = vscode.window.createOutputChannel("hintwise", { log: true });
  status = new StatusBar();
  const panel = new Panel(run);
  const extension = context.extension;
  const tracker = new InlineTracker(() => client, completionsEnabled, {
    generating: () => status.set("generating"),
    answered: (latencyMs, shown) => {
      status.latencyMs = shown ? latencyMs : status.latencyMs;
      if (shown) {
        status.gate = shown.gate;
      }
      status.set(completionsEnabled() ? "ready" : "off");
    },
    accepted: () => void pollStats(),
  });

  async function start(): Promise<void> {
    const server = findServer();
    if (!server) {
      status.set("not installed");
      await reportMissing();
      return;
    }
    status.source = `${server.command} ${server.args.join(" ")} (${server.source})`;
    output.appendLine(`hintwise: starting ${status.source}`);
    const created = createClient(server, extension, tracker);
    client = created;
    created.onDidChangeState((event) => {
      if (event.newState === State.Stopped && !stopping && client === created) {
        status.set("stopped");
      }
    });
    status.set("starting");
    startedAt = Date.now();
    try {
      await created.start();
      status.set(completionsEnabled() ? "loading" : "off");
      void pollStatus();
      void pollStats();
    } catch (error) {
      status.set("failed");
      status.error = error instanceof Error ? error.message : String(error);
      void vscode.window.showErrorMessage(`hintwise: could not start the server: ${status.error}`);
    }
  }

  async function stop(): Promise<void> {
    stopping = true;
    generation += 1;
    const old = client;
    client = undefined;
    // A client between two crash restarts may never settle its stop(): do not wait on it for ever.
    await Promise.race([old?.stop(5000).catch(() => undefined), sleep(6000)]);
    stopping = false;
  }

  async function restart(): Promise<void> {
    crashes = 0;
    await stop();
    await start();
  }

  const ctx: commands.CommandContext = {
    client: () => client,
    run,
    panel,
    restart,
    refreshStats: () => void pollStats(),
  };
  context.subscriptions.push(
    output,
    status,
    panel,
    ...commands.register(ctx),
    vscode.commands.registerCommand("hintwise.editor.dismiss", () => tracker.dismiss()),
    vscode.commands.registerCommand("hintwise.editor.acceptWord", () => tracker.acceptPart("word")),
    vscode.commands.registerCommand("hintwise.editor.acceptLine", () => tracker.acceptPart("line")),
    vscode.workspace.onDidChangeConfiguration(async (event) => {
      if (event.affectsConfiguration("hintwise.server")) {
        await restart();
      } else if (event.affectsConfiguration("hintwise") && client?.isRunning()) {
        // null settings: the server pulls the `hintwise` section (workspace/configuration)
        await client.sendNotification(DidChangeConfigurationNotification.type, { settings: null });
        status.set(completionsEnabled() ? "ready" : "off");
      }
    }),
  );
  const timers = [setInterval(() => void pollStatus(), STATUS_POLL_MS), setInterval(() => void pollStats(), STATS_POLL_MS)];
  context.subscriptions.push({ dispose: () => timers.forEach(clearInterval) });
  await start();
}

export async function deactivate(): Promise<void> {
  stopping = true;
  await client?.stop(5000).catch(() => undefined);
}
