-- Drive the hintwise Neovim plugin (editors/nvim) in a real headless Neovim, with real keys.
--
-- Run: nvim --headless -u NONE -i NONE -n -c "luafile tests/nvim/plugin.lua" FILE
-- Environment:
--   HWTEST_PLUGIN_DIR   editors/nvim (put on 'runtimepath')
--   HWTEST_NVIM_CMD     JSON list: the server command
--   HWTEST_NVIM_OUT     where to write the JSON record
--   HWTEST_NVIM_SETTINGS  JSON object: the plugin's `settings` (initializationOptions)
--   HWTEST_NVIM_STEP_TIMEOUT_MS  bound on each wait (default 20000)
--
-- The script runs as a coroutine that sleeps on timers, so Neovim's main loop runs between
-- steps: keys typed with nvim_input go through Insert mode, the plugin's autocommands and its
-- mappings exactly as a user's would. It only records; tests/test_nvim_plugin.py asserts.

local uv = vim.uv or vim.loop
local started = uv.hrtime()
local function ms_since(t0)
  return math.floor((uv.hrtime() - t0) / 1e6)
end

local out_path = assert(os.getenv("HWTEST_NVIM_OUT"), "HWTEST_NVIM_OUT is not set")
local step_timeout = tonumber(os.getenv("HWTEST_NVIM_STEP_TIMEOUT_MS") or "20000")
local obs = { done = false, steps = {}, messages = {} }

local function flush()
  obs.elapsed_ms = ms_since(started)
  local ok, text = pcall(vim.fn.json_encode, obs)
  if not ok then
    text = vim.fn.json_encode({ done = false, encode_error = tostring(text), steps = obs.steps })
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

local co
-- Run the script's coroutine until its next sleep; an error ends Neovim with a record of it.
local function resume()
  local ok, err = coroutine.resume(co)
  if not ok then
    obs.lua_error = tostring(err)
    flush()
    vim.cmd("cquit 1")
  end
end

local function sleep(ms)
  vim.defer_fn(resume, ms)
  coroutine.yield()
end

local function wait_until(predicate, timeout)
  local t0 = uv.hrtime()
  while not predicate() do
    if ms_since(t0) > (timeout or step_timeout) then
      return false
    end
    sleep(20)
  end
  return true
end

local function keys(text)
  vim.api.nvim_input(text)
  sleep(60)
end

-- Everything the user sees of the plugin's messages.
local notify = vim.notify
vim.notify = function(message, level, opts)
  table.insert(obs.messages, { message = message, level = level })
  flush()
  return notify(message, level, opts)
end

-- What the server published, per URI: the number of diagnostics in its last publication.
local published = {}
local publish = vim.lsp.handlers["textDocument/publishDiagnostics"]
vim.lsp.handlers["textDocument/publishDiagnostics"] = function(err, result, ctx, config)
  if type(result) == "table" and result.uri then
    published[result.uri] = #(result.diagnostics or {})
  end
  return publish(err, result, ctx, config)
end

local function lines(bufnr)
  return vim.api.nvim_buf_get_lines(bufnr, 0, -1, false)
end

local function main()
  local plugin_dir = assert(os.getenv("HWTEST_PLUGIN_DIR"), "HWTEST_PLUGIN_DIR is not set")
  vim.opt.runtimepath:prepend(plugin_dir)
  vim.o.autoindent = false -- the same typing gives the same text on 0.7 and 0.11
  local v = vim.version()
  obs.nvim_version = string.format("%d.%d.%d", v.major, v.minor, v.patch)

  local hintwise = require("hintwise")
  local ghost = require("hintwise.ghost")
  local commands = require("hintwise.commands")
  local compat = require("hintwise.compat")
  local settings = vim.fn.json_decode(os.getenv("HWTEST_NVIM_SETTINGS") or "{}")
  hintwise.setup({
    cmd = vim.fn.json_decode(assert(os.getenv("HWTEST_NVIM_CMD"))),
    filetypes = { "python" },
    settings = settings,
  })
  local bufnr = vim.api.nvim_get_current_buf()
  vim.bo[bufnr].filetype = "python" -- -u NONE: no filetype detection; this starts the server
  local attached = wait_until(function()
    local client = compat.clients(bufnr)[1]
    return client ~= nil and (client.server_capabilities or client.resolved_capabilities) ~= nil
      and client.initialized ~= false
  end)
  local client = compat.clients(bufnr)[1]
  obs.attached = attached
  if not client then
    step("no client")
    return
  end
  obs.commands = (client.server_capabilities.executeCommandProvider or {}).commands or {}
  step("attached")

  -- Wait for the model, as a user would see it in :checkhealth.
  local status
  wait_until(function()
    compat.request(client, "hintwise/status", vim.empty_dict(), function(_, result)
      status = result
    end, bufnr)
    sleep(200)
    return type(status) == "table" and status.state ~= "loading" and status.state ~= "not started"
  end)
  obs.model_state = status and status.state
  obs.model = status and status.model
  step("model " .. tostring(obs.model_state))

  -- :checkhealth hintwise, with the server running.
  vim.cmd("checkhealth hintwise")
  sleep(50)
  obs.health = lines(0)
  vim.cmd("bwipeout!")
  vim.api.nvim_set_current_buf(bufnr)
  step("checkhealth")

  -- 1. Ghost text on entering Insert mode at the end of the indented blank line 15; <Tab>.
  vim.api.nvim_win_set_cursor(0, { 15, 0 })
  keys("A")
  obs.first = { mode = vim.api.nvim_get_mode().mode }
  wait_until(function()
    return #ghost.marks(bufnr) > 0
  end)
  obs.first.marks = ghost.marks(bufnr)
  obs.first.text = ghost.current and ghost.current.text
  obs.first.id = ghost.current and ghost.current.id
  obs.first.line_before = lines(bufnr)[15]
  step("first ghost")
  if ghost.current then
    ghost.last_accept = nil
    keys("<Tab>")
    wait_until(function()
      return ghost.last_accept ~= nil
    end)
    obs.first.accept = ghost.last_accept
    obs.first.lines_after = lines(bufnr)
    obs.first.marks_after = ghost.marks(bufnr)
    obs.first.cursor_after = vim.api.nvim_win_get_cursor(0)
  end
  keys("<Esc>")
  step("first accepted")

  -- 2. A new function typed at the end of the file: accept a word, then a line.
  keys("Go")
  keys("def is_even(n: int) -> bool:<CR>    ")
  local shown = wait_until(function()
    return ghost.visible()
  end)
  if not shown then
    keys("<M-]>") -- ask explicitly (next suggestion)
    wait_until(function()
      return ghost.visible()
    end)
  end
  obs.second = {
    text = ghost.current and ghost.current.text,
    id = ghost.current and ghost.current.id,
    marks = ghost.marks(bufnr),
    debounce_ms = ghost.delay_ms(),
    gate = ghost.last_gate,
  }
  local debounce = require("hintwise.debounce")
  obs.debounce_curve = {
    likely = debounce.delay_ms(0.9, 25, 275),
    unlikely = debounce.delay_ms(0.05, 25, 275),
    unknown = debounce.delay_ms(nil, 25, 275),
  }
  step("second ghost")
  if ghost.current then
    local before = lines(bufnr)[#lines(bufnr)]
    keys("<M-Right>")
    obs.second.after_word = {
      line = lines(bufnr)[#lines(bufnr)],
      before = before,
      remaining = ghost.current and ghost.current.text,
      marks = ghost.marks(bufnr),
    }
    if ghost.current then
      keys("<M-C-Right>")
      obs.second.after_line = {
        lines = lines(bufnr),
        remaining = ghost.current and ghost.current.text,
      }
    end
  end
  keys("<Esc>")
  step("second partial")

  -- 3. Another function: dismiss the suggestion with <C-]>.
  keys("Go")
  keys("<CR>def square(x: float) -> float:<CR>    ")
  shown = wait_until(function()
    return ghost.visible()
  end)
  if not shown then
    keys("<M-]>")
    wait_until(function()
      return ghost.visible()
    end)
  end
  obs.third = { id = ghost.current and ghost.current.id, text = ghost.current and ghost.current.text }
  -- <M-]> asks the server for another suggestion here; <M-[> goes back to the first.
  keys("<M-]>")
  wait_until(function()
    return ghost.current ~= nil and #ghost.current.items >= 1 and ghost.current.index >= 1
  end, 5000)
  sleep(1500)
  obs.third.cycled = {
    items = ghost.current and #ghost.current.items,
    index = ghost.current and ghost.current.index,
  }
  keys("<M-[>")
  obs.third.back = { index = ghost.current and ghost.current.index, visible = ghost.visible() }
  obs.third.id = ghost.current and ghost.current.id
  obs.third.text = ghost.current and ghost.current.text
  local before_dismiss = lines(bufnr)
  keys("<C-]>")
  obs.third.marks_after = ghost.marks(bufnr)
  obs.third.unchanged = vim.deep_equal(before_dismiss, lines(bufnr))
  obs.third.mode = vim.api.nvim_get_mode().mode
  keys("<Esc>")
  step("third dismissed")

  -- 4. :HintwiseStats in a float.
  commands.last = {}
  vim.cmd("HintwiseStats")
  wait_until(function()
    return commands.last["hintwise.stats"] ~= nil
  end)
  local float = require("hintwise.float").last
  obs.stats = {
    reply = commands.last["hintwise.stats"],
    float_lines = float and vim.api.nvim_buf_is_valid(float.buf) and lines(float.buf),
    float_is_floating = float and vim.api.nvim_win_is_valid(float.win)
      and vim.api.nvim_win_get_config(float.win).relative ~= "",
  }
  if float and vim.api.nvim_win_is_valid(float.win) then
    keys("q")
  end
  obs.stats.closed = not (float and vim.api.nvim_win_is_valid(float.win))
  step("stats")

  -- 5. :HintwiseToggle turns automatic suggestions off.
  vim.cmd("HintwiseToggle")
  obs.toggled_off = ghost.enabled == false
  vim.cmd("HintwiseToggle")
  step("toggle")

  -- 6. Review on save, when the server has it: the server publishes the file's review
  -- diagnostics (an empty list when the model has nothing to say); :HintwiseReview reviews the
  -- whole file and says how many comments it published.
  if vim.tbl_contains(obs.commands, "hintwise.review") then
    local uri = vim.uri_from_bufnr(bufnr)
    local function review_diagnostics()
      local found = {}
      for _, d in ipairs(vim.diagnostic.get(bufnr)) do
        if d.source == "hintwise" then
          table.insert(found, { lnum = d.lnum, message = d.message, severity = d.severity })
        end
      end
      return found
    end
    published = {}
    vim.cmd("write")
    wait_until(function()
      return published[uri] ~= nil
    end, 3 * step_timeout)
    obs.review = { on_save = published[uri], after_save = review_diagnostics() }
    published = {}
    commands.last = {}
    vim.cmd("HintwiseReview")
    wait_until(function()
      return commands.last["hintwise.review"] ~= nil and published[uri] ~= nil
    end, 3 * step_timeout)
    obs.review.command = commands.last["hintwise.review"]
    obs.review.published = published[uri]
    obs.review.diagnostics = review_diagnostics()
    step("review")
  end

  -- 7. :HintwiseExplain on an error reported by another tool (a linter's diagnostic).
  if vim.tbl_contains(obs.commands, "hintwise.explain") then
    local ns = vim.api.nvim_create_namespace("hwtest_linter")
    local bad = #lines(bufnr) + 1
    vim.api.nvim_buf_set_lines(bufnr, -1, -1, false, { "print(undefined_name)" })
    vim.diagnostic.set(ns, bufnr, {
      { lnum = bad - 1, col = 6, end_col = 20, message = "undefined name 'undefined_name'", source = "pyflakes",
        severity = vim.diagnostic.severity.ERROR },
    })
    vim.api.nvim_win_set_cursor(0, { bad, 8 })
    commands.last = {}
    vim.cmd("HintwiseExplain")
    wait_until(function()
      return commands.last["hintwise.explain"] ~= nil
    end, 3 * step_timeout)
    local explain_float = require("hintwise.float").last
    obs.explain = {
      reply = commands.last["hintwise.explain"],
      float_lines = explain_float and vim.api.nvim_buf_is_valid(explain_float.buf) and lines(explain_float.buf),
      title = explain_float and explain_float.title,
    }
    if explain_float and vim.api.nvim_win_is_valid(explain_float.win) then
      keys("+")
      wait_until(function()
        return commands.last["hintwise.rateExplanation"] ~= nil
      end)
      obs.explain.rated = commands.last["hintwise.rateExplanation"]
    end
    step("explain")
  end

  -- 8. :HintwiseExplainTraceback with a traceback in the unnamed register (as after a yank).
  if vim.tbl_contains(obs.commands, "hintwise.explainTraceback") then
    local file = vim.api.nvim_buf_get_name(bufnr)
    vim.fn.setreg('"', table.concat({
      "Traceback (most recent call last):",
      '  File "' .. file .. '", line 21, in primes_below',
      "    return [n for n in range(limit) if is_prime(n)]",
      "TypeError: 'str' object cannot be interpreted as an integer",
    }, "\n"))
    commands.last = {}
    vim.cmd("HintwiseExplainTraceback")
    wait_until(function()
      return commands.last["hintwise.explainTraceback"] ~= nil
    end, 3 * step_timeout)
    local tb_float = require("hintwise.float").last
    obs.traceback = {
      reply = commands.last["hintwise.explainTraceback"],
      float_lines = tb_float and vim.api.nvim_buf_is_valid(tb_float.buf) and lines(tb_float.buf),
    }
    if tb_float and vim.api.nvim_win_is_valid(tb_float.win) then
      keys("q")
    end
    step("traceback")
  end

  -- Shut down and see the server leave.
  local exited = false
  local t0 = uv.hrtime()
  compat.call(client, "stop")
  exited = wait_until(function()
    return compat.call(client, "is_stopped")
  end)
  obs.shutdown = { exited = exited, elapsed_ms = ms_since(t0) }
  step("stopped")
  obs.done = true
end

co = coroutine.create(function()
  local ok, err = xpcall(main, debug.traceback)
  if not ok then
    obs.lua_error = tostring(err)
  end
  flush()
  vim.cmd(ok and "qall!" or "cquit 1")
end)
resume()
