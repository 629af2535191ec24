-- hintwise for Neovim: `require("hintwise").setup({...})` starts `hintwise serve` for the
-- configured filetypes and gives ghost-text completions, explanations, reviews and stats.
local commands = require("hintwise.commands")
local compat = require("hintwise.compat")
local config = require("hintwise.config")
local ghost = require("hintwise.ghost")

local M = {}

M.client_id = nil
local warned_missing = false

local ROOT_MARKERS = { ".git", "pyproject.toml", "setup.py", "package.json", "go.mod", "Cargo.toml" }

local function root_dir(path)
  local dir = vim.fn.fnamemodify(path, ":p:h")
  for _, marker in ipairs(ROOT_MARKERS) do
    local found = vim.fn.finddir(marker, dir .. ";")
    if found == "" then
      found = vim.fn.findfile(marker, dir .. ";")
    end
    if found ~= "" then
      local full = vim.fn.fnamemodify(found, ":p"):gsub("/$", "")
      return vim.fn.fnamemodify(full, ":h")
    end
  end
  return dir
end

local function report_cursor(client, bufnr)
  local cursor = vim.api.nvim_win_get_cursor(0)
  local line = vim.api.nvim_buf_get_lines(bufnr, cursor[1] - 1, cursor[1], false)[1] or ""
  compat.notify(client, "hintwise/didMoveCursor", {
    textDocument = { uri = vim.uri_from_bufnr(bufnr) },
    position = {
      line = cursor[1] - 1,
      character = compat.character(line, math.min(cursor[2], #line), client.offset_encoding),
    },
  })
end

-- Completion menu: 0.11's vim.lsp.completion (runs the item's accept command), else omnifunc
-- with a CompleteDone hook that runs it.
local function use_menu(client, bufnr)
  if vim.lsp.completion and vim.lsp.completion.enable then
    vim.lsp.completion.enable(true, client.id, bufnr, { autotrigger = false })
    return
  end
  vim.bo[bufnr].omnifunc = "v:lua.vim.lsp.omnifunc"
  vim.api.nvim_create_autocmd("CompleteDone", {
    buffer = bufnr,
    callback = function()
      local item = vim.v.completed_item
      local data = type(item) == "table" and type(item.user_data) == "table" and item.user_data
      local lsp_item = data and data.nvim and data.nvim.lsp and data.nvim.lsp.completion_item
      local command = type(lsp_item) == "table" and lsp_item.command
      if type(command) == "table" and command.command then
        compat.request(client, "workspace/executeCommand", {
          command = command.command,
          arguments = command.arguments,
        }, function() end, bufnr)
      end
    end,
  })
end

local function use_native_inline(client, bufnr)
  vim.lsp.inline_completion.enable(true, { bufnr = bufnr, client_id = client.id })
  local accept = config.values.keymaps.accept
  if accept then
    vim.keymap.set("i", accept, function()
      if not vim.lsp.inline_completion.get() then
        return accept
      end
    end, { buffer = bufnr, expr = true, replace_keycodes = true, desc = "hintwise: accept" })
  end
end

function M.on_attach(client, bufnr)
  local capabilities = client.server_capabilities or client.resolved_capabilities or {}
  local inline = capabilities.inlineCompletionProvider
  if config.values.mode == "ghost" and inline and compat.native_inline then
    use_native_inline(client, bufnr)
  elseif config.values.mode == "ghost" and inline then
    ghost.attach(bufnr)
  else
    use_menu(client, bufnr)
  end
  local group = vim.api.nvim_create_augroup("hintwise_cursor_" .. bufnr, { clear = true })
  vim.api.nvim_create_autocmd({ "InsertEnter", "CursorHold" }, {
    group = group,
    buffer = bufnr,
    callback = function()
      report_cursor(client, bufnr)
    end,
  })
end

--- Start (or reuse) the server for a buffer; nil when the server cannot be found.
function M.start(bufnr)
  bufnr = bufnr or vim.api.nvim_get_current_buf()
  local cmd = config.server_cmd()
  if vim.fn.executable(cmd[1]) ~= 1 then
    if not warned_missing then
      warned_missing = true
      vim.notify(
        "hintwise: the server `" .. cmd[1] .. "` was not found. Install it with "
          .. "`pip install hintwise` (or in your project's venv), or set `cmd` in "
          .. "require('hintwise').setup({ cmd = { '/path/to/hintwise', 'serve' } }).",
        vim.log.levels.ERROR
      )
    end
    return nil
  end
  local settings = config.values.settings or {}
  M.client_id = compat.start({
    name = "hintwise",
    cmd = cmd,
    root_dir = root_dir(vim.api.nvim_buf_get_name(bufnr)),
    init_options = settings,
    settings = { hintwise = settings },
    flags = { debounce_text_changes = 50 },
    on_attach = M.on_attach,
  }, bufnr)
  return M.client_id
end

function M.setup(user)
  config.apply(user)
  commands.create()
  local group = vim.api.nvim_create_augroup("hintwise", { clear = true })
  vim.api.nvim_create_autocmd("FileType", {
    group = group,
    pattern = config.values.filetypes,
    callback = function(args)
      M.start(args.buf)
    end,
  })
  -- Buffers already open with a matching filetype.
  for _, bufnr in ipairs(vim.api.nvim_list_bufs()) do
    if vim.api.nvim_buf_is_loaded(bufnr) and vim.tbl_contains(config.values.filetypes, vim.bo[bufnr].filetype) then
      M.start(bufnr)
    end
  end
end

-- Actions for mappings of your own.
M.accept = ghost.accept
M.accept_word = ghost.accept_word
M.accept_line = ghost.accept_line
M.dismiss = ghost.dismiss
M.next = ghost.next
M.prev = ghost.prev
M.request = ghost.request
M.toggle = commands.toggle

return M
