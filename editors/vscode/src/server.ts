// Where `hintwise serve` comes from: the user's setting, the project's venv, or PATH.
import * as fs from "fs";
import * as path from "path";
import * as vscode from "vscode";

export interface ServerCommand {
  command: string;
  args: string[];
  /** How it was found, for the output channel and the status bar tooltip. */
  source: string;
}

const isWindows = process.platform === "win32";
const VENV_DIRS = [".venv", "venv", "env", ".env"];

function executable(file: string): boolean {
  try {
    fs.accessSync(file, fs.constants.X_OK);
    return fs.statSync(file).isFile();
  } catch {
    return false;
  }
}

function inVenv(venv: string, name: string): string {
  return isWindows ? path.join(venv, "Scripts", `${name}.exe`) : path.join(venv, "bin", name);
}

function onPath(name: string): string | undefined {
  const dirs = (process.env.PATH ?? "").split(path.delimiter).filter(Boolean);
  for (const dir of dirs) {
    const candidate = path.join(dir, isWindows ? `${name}.exe` : name);
    if (executable(candidate)) {
      return candidate;
    }
  }
  return undefined;
}

/** The server command, or undefined when hintwise cannot be found anywhere. */
export function findServer(): ServerCommand | undefined {
  const config = vscode.workspace.getConfiguration("hintwise.server");
  const extraArgs = config.get<string[]>("args", []);
  const configured = config.get<string>("path", "").trim();
  if (configured) {
    if (!executable(configured)) {
      return undefined; // reportMissing() names the setting
    }
    return { command: configured, args: ["serve", ...extraArgs], source: "hintwise.server.path" };
  }
  const python = config.get<string>("pythonPath", "").trim();
  if (python) {
    return {
      command: python,
      args: ["-m", "hintwise", "serve", ...extraArgs],
      source: "hintwise.server.pythonPath",
    };
  }
  const venvs: string[] = [];
  if (process.env.VIRTUAL_ENV) {
    venvs.push(process.env.VIRTUAL_ENV);
  }
  for (const folder of vscode.workspace.workspaceFolders ?? []) {
    for (const dir of VENV_DIRS) {
      venvs.push(path.join(folder.uri.fsPath, dir));
    }
  }
  for (const venv of venvs) {
    const candidate = inVenv(venv, "hintwise");
    if (executable(candidate)) {
      return { command: candidate, args: ["serve", ...extraArgs], source: `venv ${venv}` };
    }
  }
  const found = onPath("hintwise");
  if (found) {
    return { command: found, args: ["serve", ...extraArgs], source: "PATH" };
  }
  return undefined;
}

/** Say how to install hintwise, instead of failing silently. */
export async function reportMissing(): Promise<void> {
  const install = "Copy install command";
  const setPath = "Set server path";
  const configured = vscode.workspace.getConfiguration("hintwise.server").get<string>("path", "").trim();
  const where = configured
    ? `hintwise.server.path is "${configured}", which is not an executable file`
    : "not in hintwise.server.path, a project venv (.venv, venv, env) or PATH";
  const choice = await vscode.window.showErrorMessage(
    `hintwise: the \`hintwise\` language server was not found (${where}). Install it with ` +
      "`pip install hintwise` (into your project's venv or with pipx), then run " +
      "'hintwise: Restart server'.",
    install,
    setPath,
  );
  if (choice === install) {
    await vscode.env.clipboard.writeText("python3 -m pip install hintwise");
  } else if (choice === setPath) {
    await vscode.commands.executeCommand("workbench.action.openSettings", "hintwise.server");
  }
}
