-- hintwise.nvim settings: the defaults, and the user's table merged over them by setup().
local M = {}

M.defaults = {
  -- The server command. A project venv's `hintwise` is preferred when one is found.
  cmd = nil,
  filetypes = { "python", "javascript", "typescript", "go", "rust", "java", "c", "cpp", "lua" },
  -- Sent as initializationOptions and in workspace/configuration (section "hintwise").
  settings = {},
  -- Ghost text while typing; off leaves completions to the menu (and :HintwiseToggle).
  auto_trigger = true,
  -- Debounce between the last keystroke and the request, adapted to the acceptance gate's last
  -- score p: min + (max - min) / (1 + (p / 0.275)^6) (Copilot's curve). No score yet: the midpoint.
  debounce = { min_ms = 25, max_ms = 275 },
  -- "ghost": ghost text (native inline completion on 0.12+); "menu": the completion menu only.
  mode = "ghost",
  keymaps = {
    accept = "<Tab>",
    accept_word = "<M-Right>",
    accept_line = "<M-C-Right>",
    dismiss = "<C-]>",
    next = "<M-]>",
    prev = "<M-[>",
  },
  highlight = "Comment",
  float = { max_width = 90, max_height = 25, border = "rounded" },
}

M.values = vim.deepcopy(M.defaults)

local function find_venv_server()
  local candidates = {}
  local venv = os.getenv("VIRTUAL_ENV")
  if venv and venv ~= "" then
    table.insert(candidates, venv .. "/bin/hintwise")
  end
  local cwd = vim.fn.getcwd()
  for _, dir in ipairs({ ".venv", "venv", "env" }) do
    table.insert(candidates, cwd .. "/" .. dir .. "/bin/hintwise")
  end
  for _, path in ipairs(candidates) do
    if vim.fn.executable(path) == 1 then
      return path
    end
  end
  return nil
end

--- The command that starts the server: the user's, a project venv's, or `hintwise` on PATH.
function M.server_cmd()
  if M.values.cmd then
    return M.values.cmd
  end
  return { find_venv_server() or "hintwise", "serve" }
end

function M.apply(user)
  M.values = vim.tbl_deep_extend("force", vim.deepcopy(M.defaults), user or {})
  if user and user.keymaps == false then
    M.values.keymaps = {}
  end
  return M.values
end

return M
