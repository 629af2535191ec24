-- Drive a real Neovim against `hintwise serve`: save a file, wait for hintwise's review
-- diagnostics, list the code actions on one, apply its fix (the server sends
-- workspace/applyEdit, Neovim applies it) and ask for an explanation (shown with showMessage).
--
-- Run: nvim --headless -u NONE -i NONE -n -c "luafile tests/nvim/review.lua" FILE
-- Environment: HWTEST_NVIM_CMD (JSON list), HWTEST_NVIM_OUT (record), HWTEST_NVIM_TIMEOUT_MS.
-- Only records what happens (tests/test_neovim_review.py asserts); every wait is bounded.

local uv = vim.uv or vim.loop
local out_path = assert(os.getenv("HWTEST_NVIM_OUT"))
local timeout = tonumber(os.getenv("HWTEST_NVIM_TIMEOUT_MS") or "120000")
local obs = { done = false, messages = {}, steps = {} }
local method_style = vim.fn.has("nvim-0.11") == 1

local function flush()
  local handle = assert(io.open(out_path, "w"))
  handle:write(vim.fn.json_encode(obs))
  handle:close()
end

local function step(name)
  table.insert(obs.steps, name)
  flush()
end

local function call(client, name, ...)
  if method_style then
    return client[name](client, ...)
  end
  return client[name](...)
end

local function request(client, bufnr, method, params)
  local reply
  call(client, "request", method, params, function(err, result)
    reply = { err = err, result = result }
  end, bufnr)
  vim.wait(timeout, function()
    return reply ~= nil
  end, 20)
  if reply == nil then
    return { timed_out = true }
  end
  return { error = reply.err and tostring(reply.err.message or reply.err), result = reply.result }
end

local client_id

local function main()
  local bufnr = vim.api.nvim_get_current_buf()
  vim.bo[bufnr].filetype = "python"
  local init_result
  client_id = (vim.lsp.start or vim.lsp.start_client)({
    name = "hintwise",
    cmd = vim.fn.json_decode(os.getenv("HWTEST_NVIM_CMD")),
    root_dir = vim.fn.getcwd(),
    on_init = function(_, result)
      init_result = result
    end,
    handlers = {
      ["window/showMessage"] = function(_, result)
        table.insert(obs.messages, result.message)
        return vim.NIL
      end,
    },
  })
  if not vim.lsp.start then
    vim.lsp.buf_attach_client(bufnr, client_id)
  end
  vim.wait(timeout, function()
    return init_result ~= nil
  end, 20)
  step("initialized")
  local client = vim.lsp.get_client_by_id(client_id)

  -- Wait for the model (the review needs it), then save: didSave starts the review.
  vim.wait(timeout, function()
    local status = request(client, bufnr, "hintwise/status", vim.empty_dict())
    return status.result and status.result.prepared
  end, 200)
  vim.cmd("write")
  step("saved")
  local found
  vim.wait(timeout, function()
    for _, item in ipairs(vim.diagnostic.get(bufnr)) do
      if item.source == "hintwise" then
        found = item
      end
    end
    return found ~= nil
  end, 50)
  obs.diagnostics = {}
  for _, item in ipairs(vim.diagnostic.get(bufnr)) do
    table.insert(obs.diagnostics, { lnum = item.lnum, source = item.source, message = item.message })
  end
  step("reviewed")
  if not found then
    return
  end
  -- The LSP diagnostic back from Neovim's own: 0.7 keeps only code and data in user_data.lsp.
  local original = (found.user_data and found.user_data.lsp) or {}
  obs.has_lsp_diagnostic = original.data ~= nil
  local lsp_diagnostic = {
    range = {
      start = { line = found.lnum, character = found.col },
      ["end"] = { line = found.end_lnum or found.lnum, character = found.end_col or found.col },
    },
    message = found.message,
    source = found.source,
    severity = found.severity,
    code = original.code,
    data = original.data,
  }
  local uri = vim.uri_from_bufnr(bufnr)
  local actions = request(client, bufnr, "textDocument/codeAction", {
    textDocument = { uri = uri },
    range = lsp_diagnostic.range,
    context = { diagnostics = { lsp_diagnostic } },
  })
  obs.actions_error = actions.error
  obs.actions_timed_out = actions.timed_out
  obs.found = lsp_diagnostic
  obs.actions = {}
  for _, action in ipairs(actions.result or {}) do
    table.insert(obs.actions, action.title)
  end
  step("actions")
  for _, action in ipairs(actions.result or {}) do
    if action.title == "Apply fix" then
      obs.apply = request(client, bufnr, "workspace/executeCommand", action.command)
    end
  end
  obs.fixed_line = found.lnum
  obs.lines_after_fix = vim.api.nvim_buf_get_lines(bufnr, 0, -1, false)
  step("applied")
  obs.explain = request(client, bufnr, "workspace/executeCommand", {
    command = "hintwise.explain",
    arguments = { { uri = uri, line = 1, message = "name_length(None) raised AttributeError" } },
  })
  vim.wait(5000, function()
    return #obs.messages > 0 or #vim.api.nvim_list_bufs() > 1
  end, 50)
  obs.buffers = {}
  for _, buffer in ipairs(vim.api.nvim_list_bufs()) do
    table.insert(obs.buffers, vim.api.nvim_buf_get_name(buffer))
  end
  step("explained")
  call(client, "stop")
  obs.done = true
end

local ok, err = xpcall(main, debug.traceback)
if not ok then
  obs.lua_error = tostring(err)
end
local client = client_id and vim.lsp.get_client_by_id(client_id)
if client and not call(client, "is_stopped") then
  pcall(call, client, "stop", true)
end
flush()
vim.cmd(ok and "qall!" or "cquit 1")
