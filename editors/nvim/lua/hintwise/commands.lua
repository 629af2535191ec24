-- :HintwiseExplain, :HintwiseExplainTraceback, :HintwiseReview, :HintwiseStats, :HintwiseToggle.
-- Each runs one of the server's commands (workspace/executeCommand, one JSON object argument)
-- and shows the answer; explanations open in a floating window with helpful / not helpful keys.
local compat = require("hintwise.compat")
local float = require("hintwise.float")
local ghost = require("hintwise.ghost")

local M = {}

M.last = {} -- the last answer of each command, for tests and scripts

local function say(message, level)
  vim.notify("hintwise: " .. message, level or vim.log.levels.INFO)
end

local function client_for(bufnr)
  local client = compat.clients(bufnr)[1]
  if not client then
    say("no hintwise server is attached to this buffer", vim.log.levels.WARN)
  end
  return client
end

--- Run a server command; `callback(result)` on success, a message on error.
function M.execute(bufnr, command, argument, callback)
  local client = client_for(bufnr)
  if not client then
    return false
  end
  local ok = compat.request(client, "workspace/executeCommand", {
    command = command,
    arguments = { argument },
  }, function(err, result)
    M.last[command] = { err = err, result = result }
    if err then
      local message = type(err) == "table" and err.message or tostring(err)
      if type(err) == "table" and err.code == -32601 then
        message = "this server does not know " .. command .. " (update hintwise)"
      end
      say(command .. " failed: " .. message, vim.log.levels.ERROR)
      return
    end
    if callback then
      callback(result, client)
    end
  end, bufnr)
  return ok
end

local severities = { [vim.diagnostic.severity.ERROR] = 1, [vim.diagnostic.severity.WARN] = 2,
  [vim.diagnostic.severity.INFO] = 3, [vim.diagnostic.severity.HINT] = 4 }

--- A vim.diagnostic entry as an LSP Diagnostic.
local function lsp_diagnostic(d)
  local lsp = d.user_data and d.user_data.lsp
  if type(lsp) == "table" and lsp.range then
    return lsp
  end
  return {
    range = {
      start = { line = d.lnum, character = d.col },
      ["end"] = { line = d.end_lnum or d.lnum, character = d.end_col or d.col },
    },
    severity = severities[d.severity] or 1,
    message = d.message,
    source = d.source,
    code = d.code,
  }
end

--- The diagnostic under the cursor, or else the nearest one on the cursor's line.
function M.diagnostic_at_cursor(bufnr)
  local cursor = vim.api.nvim_win_get_cursor(0)
  local row, col = cursor[1] - 1, cursor[2]
  local best, distance = nil, math.huge
  for _, d in ipairs(vim.diagnostic.get(bufnr, { lnum = row })) do
    local far = (col < d.col and d.col - col) or (d.end_col and col > d.end_col and col - d.end_col) or 0
    if far < distance then
      best, distance = d, far
    end
  end
  return best
end

local function show_explanation(bufnr, answer, client)
  if type(answer) ~= "table" or type(answer.markdown) ~= "string" then
    say("no explanation came back", vim.log.levels.WARN)
    return
  end
  local lines = vim.split(answer.markdown, "\n", { plain = true })
  local function rate(helpful)
    return function(close)
      compat.request(client, "workspace/executeCommand", {
        command = "hintwise.rateExplanation",
        arguments = { { id = answer.id, helpful = helpful } },
      }, function(err, result)
        M.last["hintwise.rateExplanation"] = { err = err, result = result }
      end, bufnr)
      say(helpful and "thanks: marked helpful" or "thanks: marked not helpful")
      close()
    end
  end
  local keys = {
    ["+"] = { "helpful", rate(true) },
    ["-"] = { "not helpful", rate(false) },
  }
  if type(answer.fix) == "string" and answer.fix ~= "" then
    keys["a"] = {
      "apply fix",
      function(close)
        close()
        M.execute(bufnr, "hintwise.applyFix", { id = answer.id })
      end,
    }
  end
  local culprit = answer.culprit
  if type(culprit) == "table" and type(culprit.uri) == "string" and type(culprit.line) == "number" then
    keys["gd"] = {
      "go to line " .. (culprit.line + 1),
      function(close)
        close()
        vim.cmd("edit " .. vim.fn.fnameescape(vim.uri_to_fname(culprit.uri)))
        pcall(vim.api.nvim_win_set_cursor, 0, { culprit.line + 1, 0 })
      end,
    }
  end
  float.open("hintwise explanation", lines, keys)
end

--- :HintwiseExplain: the diagnostic at the cursor (or, without one, a message you type).
function M.explain()
  local bufnr = vim.api.nvim_get_current_buf()
  local uri = vim.uri_from_bufnr(bufnr)
  local d = M.diagnostic_at_cursor(bufnr)
  local function run(argument)
    argument.show = false
    return M.execute(bufnr, "hintwise.explain", argument, function(answer, client)
      show_explanation(bufnr, answer, client)
    end)
  end
  if d then
    return run({ uri = uri, diagnostic = lsp_diagnostic(d) })
  end
  local row = vim.api.nvim_win_get_cursor(0)[1] - 1
  vim.ui.input({ prompt = "No diagnostic here. Error message to explain: " }, function(message)
    if message and message ~= "" then
      run({ uri = uri, line = row, message = message })
    end
  end)
end

--- :HintwiseExplainTraceback: the selected lines (a range), else the clipboard.
function M.explain_traceback(opts)
  local bufnr = vim.api.nvim_get_current_buf()
  local text
  if opts and opts.range and opts.range > 0 then
    text = table.concat(vim.api.nvim_buf_get_lines(bufnr, opts.line1 - 1, opts.line2, false), "\n")
  else
    for _, register in ipairs({ "+", "*", '"' }) do
      local ok, value = pcall(vim.fn.getreg, register)
      if ok and type(value) == "string" and value:find("%S") then
        text = value
        break
      end
    end
  end
  if not text or not text:find("%S") then
    say("select a traceback, or copy one to the clipboard, first", vim.log.levels.WARN)
    return false
  end
  return M.execute(bufnr, "hintwise.explainTraceback", { text = text, show = false }, function(answer, client)
    show_explanation(bufnr, answer, client)
  end)
end

--- :HintwiseReview: review the whole file now; the comments arrive as diagnostics.
function M.review()
  local bufnr = vim.api.nvim_get_current_buf()
  return M.execute(bufnr, "hintwise.review", { uri = vim.uri_from_bufnr(bufnr) }, function(result)
    local count = type(result) == "table" and result.comments or 0
    say(string.format("review done: %d comment%s", count, count == 1 and "" or "s"))
  end)
end

--- :HintwiseStats: acceptance figures from the local feedback store, and the server's state.
function M.stats()
  local bufnr = vim.api.nvim_get_current_buf()
  return M.execute(bufnr, "hintwise.stats", { chart = true }, function(result)
    local lines = { "# hintwise", "" }
    if type(result) == "table" then
      if type(result.status_line) == "string" then
        table.insert(lines, result.status_line)
        table.insert(lines, "")
      end
      for _, line in ipairs(vim.split(result.text or "", "\n", { plain = true })) do
        table.insert(lines, line)
      end
      if type(result.chart) == "string" then
        table.insert(lines, "Chart: " .. result.chart)
      end
    end
    float.open("hintwise stats", lines, {})
  end)
end

function M.toggle()
  local on = ghost.toggle()
  say("completions " .. (on and "on" or "off"))
  return on
end

function M.create()
  local create = vim.api.nvim_create_user_command
  create("HintwiseExplain", M.explain, { desc = "hintwise: explain the error at the cursor" })
  create("HintwiseExplainTraceback", M.explain_traceback, {
    range = true,
    desc = "hintwise: explain a traceback (the selected lines, or the clipboard)",
  })
  create("HintwiseReview", M.review, { desc = "hintwise: review this file now" })
  create("HintwiseStats", M.stats, { desc = "hintwise: feedback stats" })
  create("HintwiseToggle", M.toggle, { desc = "hintwise: completions on/off" })
end

return M
