-- Drive a real Neovim (0.7 or 0.11) against `hintwise serve` and record what happens.
--
-- Run: nvim --headless -u NONE -i NONE -n -c "luafile tests/nvim/check.lua" FILE
-- Parameters (environment):
--   HWTEST_NVIM_CMD   JSON list: the server command, e.g. ["/path/hintwise", "serve"]
--   HWTEST_NVIM_OUT   where to write the JSON record
--   HWTEST_NVIM_ROOT  workspace root directory (optional; default: the file's directory)
--   HWTEST_NVIM_LINE  0-based line of the completion request (default 14)
--   HWTEST_NVIM_CHAR  0-based character of the completion request (default 12)
--   HWTEST_NVIM_INIT_OPTIONS     JSON object sent as initializationOptions (optional)
--   HWTEST_NVIM_STEP_TIMEOUT_MS  per-step timeout (default 20000)
--
-- This script only records: the pytest test (tests/test_neovim.py) makes the assertions. It
-- never blocks without a bound (every wait has a timeout) and always leaves Neovim, with
-- `qall!` when the script ran to its end and `cquit 1` when it raised an error.

local uv = vim.uv or vim.loop
local started = uv.hrtime()

local function ms_since(t0)
  return math.floor((uv.hrtime() - t0) / 1e6)
end

local out_path = assert(os.getenv("HWTEST_NVIM_OUT"), "HWTEST_NVIM_OUT is not set")
local obs = { done = false, steps = {}, messages = {} }

local function encode(value)
  if vim.json and vim.json.encode then
    return vim.json.encode(value)
  end
  return vim.fn.json_encode(value)
end

-- Write the record after every step, so a timeout still leaves evidence of how far we got.
local function flush()
  obs.elapsed_ms = ms_since(started)
  local ok, text = pcall(encode, obs)
  if not ok then
    text = encode({ done = false, encode_error = tostring(text), steps = obs.steps })
  end
  local handle = assert(io.open(out_path, "w"))
  handle:write(text)
  handle:close()
end

local function step(name, fields)
  fields = fields or {}
  fields.name = name
  fields.at_ms = ms_since(started)
  table.insert(obs.steps, fields)
  flush()
end

local function plain_error(err)
  if err == nil or err == vim.NIL then
    return nil
  end
  if type(err) == "table" then
    return { code = err.code, message = err.message, data = err.data }
  end
  return { message = tostring(err) }
end

local version = vim.version()
obs.nvim_version = string.format("%d.%d.%d", version.major, version.minor, version.patch)
obs.has_lsp_start = vim.lsp.start ~= nil
-- 0.11 made Client methods (client:request); 0.7 has plain functions (client.request).
local method_style = vim.fn.has("nvim-0.11") == 1
obs.method_style = method_style

local function call(client, name, ...)
  if method_style then
    return client[name](client, ...)
  end
  return client[name](...)
end

local step_timeout = tonumber(os.getenv("HWTEST_NVIM_STEP_TIMEOUT_MS") or "20000")
local line = tonumber(os.getenv("HWTEST_NVIM_LINE") or "14")
local character = tonumber(os.getenv("HWTEST_NVIM_CHAR") or "12")

-- Send a raw request and pump events until it is answered or the step times out.
local function request(client, bufnr, method, params)
  local reply
  local t0 = uv.hrtime()
  local sent, request_id = call(client, "request", method, params, function(err, result)
    reply = { err = err, result = result }
  end, bufnr)
  local record = { method = method, sent = sent and true or false }
  if not sent then
    return record
  end
  local answered = vim.wait(step_timeout, function()
    return reply ~= nil
  end, 10)
  record.elapsed_ms = ms_since(t0)
  record.timed_out = not answered
  if answered then
    record.error = plain_error(reply.err)
    record.result = reply.result
  elseif request_id then
    pcall(call, client, "cancel_request", request_id)
  end
  return record
end

-- Accept: insert the text at the cursor, as a plugin does when the user takes the ghost text,
-- then run the item's command through workspace/executeCommand.
local function accept(client, bufnr, item)
  local cursor = vim.api.nvim_win_get_cursor(0)
  local row, col = cursor[1] - 1, cursor[2]
  local lines = vim.split(item.insertText, "\n", { plain = true })
  vim.api.nvim_buf_set_text(bufnr, row, col, row, col, lines)
  obs.inserted_at = { line = row, character = col }
  obs.lines_after = vim.api.nvim_buf_get_lines(bufnr, row, row + #lines, false)
  step("inserted")
  if type(item.command) == "table" then
    obs.accept = request(client, bufnr, "workspace/executeCommand", {
      command = item.command.command,
      arguments = item.command.arguments,
    })
  end
  step("accepted")
end

local client_id

local function main()
  local cmd_json = assert(os.getenv("HWTEST_NVIM_CMD"), "HWTEST_NVIM_CMD is not set")
  local cmd = vim.fn.json_decode(cmd_json)
  local bufnr = vim.api.nvim_get_current_buf()
  local path = vim.api.nvim_buf_get_name(bufnr)
  local root = os.getenv("HWTEST_NVIM_ROOT") or vim.fn.fnamemodify(path, ":h")
  -- `-u NONE` turns off filetype detection: set it as a user's setup would.
  vim.bo[bufnr].filetype = "python"
  obs.file = path
  obs.filetype = vim.bo[bufnr].filetype
  step("opened", { line_count = vim.api.nvim_buf_line_count(bufnr) })

  local init_result
  local exit_info
  local function record_message(kind)
    return function(_, result)
      local message = { kind = kind, type = result and result.type, message = result and result.message }
      table.insert(obs.messages, message)
      return vim.NIL
    end
  end
  local config = {
    name = "hintwise",
    cmd = cmd,
    root_dir = root,
    on_init = function(_, result)
      init_result = result
    end,
    on_exit = function(code, signal)
      exit_info = { code = code, signal = signal }
    end,
    handlers = {
      ["window/showMessage"] = record_message("showMessage"),
      ["window/logMessage"] = record_message("logMessage"),
    },
  }

  local init_options = os.getenv("HWTEST_NVIM_INIT_OPTIONS")
  if init_options and init_options ~= "" then
    config.init_options = vim.fn.json_decode(init_options)
  end

  if vim.lsp.start then
    client_id = vim.lsp.start(config, { bufnr = bufnr })
  else
    client_id = vim.lsp.start_client(config)
    if client_id then
      vim.lsp.buf_attach_client(bufnr, client_id)
    end
  end
  step("started", { client_id = client_id })
  if not client_id then
    return
  end

  local initialized = vim.wait(step_timeout, function()
    return init_result ~= nil or exit_info ~= nil
  end, 10)
  local capabilities = init_result and init_result.capabilities or {}
  obs.initialize = {
    ok = init_result ~= nil,
    timed_out = not initialized,
    server_info = init_result and init_result.serverInfo,
    inline_completion_provider = capabilities.inlineCompletionProvider,
    completion_provider = capabilities.completionProvider,
    execute_command_provider = capabilities.executeCommandProvider,
  }
  obs.exit_early = exit_info
  step("initialized")
  if not init_result then
    return
  end
  local client = vim.lsp.get_client_by_id(client_id)
  obs.attached = vim.lsp.buf_is_attached(bufnr, client_id)

  -- Where an insert-mode cursor would be: at the end of the blank line, past its last character,
  -- which Normal mode only allows with 'virtualedit'.
  vim.o.virtualedit = "onemore"
  vim.api.nvim_win_set_cursor(0, { line + 1, character })
  local cursor = vim.api.nvim_win_get_cursor(0)
  obs.cursor = { line = cursor[1] - 1, character = cursor[2] }
  local uri = vim.uri_from_bufnr(bufnr)
  local position = { line = line, character = character }
  obs.line_before = vim.api.nvim_buf_get_lines(bufnr, line, line + 1, false)[1]

  -- 1. A raw inline completion request, invoked (triggerKind = 1), as a plugin for <= 0.11 does.
  obs.inline = request(client, bufnr, "textDocument/inlineCompletion", {
    textDocument = { uri = uri },
    position = position,
    context = { triggerKind = 1 },
  })
  step("inline")

  -- 2. Ordinary completion at the same spot, before anything is inserted.
  obs.completion = request(client, bufnr, "textDocument/completion", {
    textDocument = { uri = uri },
    position = position,
    context = { triggerKind = 1 },
  })
  step("completion")

  local result = obs.inline.result
  local items = type(result) == "table" and (result.items or result) or {}
  local item = items[1]
  if type(item) == "table" and type(item.insertText) == "string" then
    -- 3. Accept the suggestion, as a plugin does on <Tab>.
    accept(client, bufnr, item)
  else
    step("no inline item")
  end

  -- 4. The server's own account of what happened.
  obs.status = request(client, bufnr, "hintwise/status", vim.empty_dict())
  step("status")

  -- 5. Shut down gracefully (shutdown + exit) and see the server leave.
  local t0 = uv.hrtime()
  call(client, "stop")
  local exited = vim.wait(step_timeout, function()
    return exit_info ~= nil
  end, 10)
  obs.shutdown = { exited = exited, elapsed_ms = ms_since(t0) }
  obs.exit = exit_info
  step("stopped")
  obs.done = true
end

local ok, err = xpcall(main, debug.traceback)
if not ok then
  obs.lua_error = tostring(err)
end
-- A run that stopped early must not leave its server behind.
local client = client_id and vim.lsp.get_client_by_id(client_id)
if client and not call(client, "is_stopped") then
  pcall(call, client, "stop", true)
end
flush()
if ok then
  vim.cmd("qall!")
else
  vim.cmd("cquit 1")
end
