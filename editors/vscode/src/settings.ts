// The server's settings as VS Code settings: `hintwise.<dotted key>`, contributed in package.json.
// Only the values the user set are sent: an unset one keeps the server's own default, which may
// come from its environment (HINTWISE_MODEL, HINTWISE_DATA_DIR).
import * as vscode from "vscode";

/** Settings that belong to the extension itself, never sent to the server. */
const CLIENT_ONLY = ["server."];

function contributedKeys(extension: vscode.Extension<unknown>): string[] {
  const contributes = (extension.packageJSON as { contributes?: { configuration?: unknown } }).contributes;
  const sections = contributes?.configuration;
  const list = Array.isArray(sections) ? sections : sections ? [sections] : [];
  const keys: string[] = [];
  for (const section of list as { properties?: Record<string, unknown> }[]) {
    for (const key of Object.keys(section.properties ?? {})) {
      if (key.startsWith("hintwise.")) {
        keys.push(key.slice("hintwise.".length));
      }
    }
  }
  return keys.filter((key) => !CLIENT_ONLY.some((prefix) => key.startsWith(prefix)));
}

/** The `hintwise` section the server asks for: nested, with only explicitly set values. */
export function serverSettings(
  extension: vscode.Extension<unknown>,
  scope?: vscode.ConfigurationScope,
): Record<string, unknown> {
  const config = vscode.workspace.getConfiguration("hintwise", scope);
  const result: Record<string, unknown> = {};
  for (const key of contributedKeys(extension)) {
    const inspected = config.inspect(key);
    const value =
      inspected?.workspaceFolderValue ?? inspected?.workspaceValue ?? inspected?.globalValue;
    if (value === undefined) {
      continue;
    }
    const parts = key.split(".");
    let node = result;
    for (const part of parts.slice(0, -1)) {
      node = (node[part] ??= {}) as Record<string, unknown>;
    }
    node[parts[parts.length - 1]] = value;
  }
  return result;
}
