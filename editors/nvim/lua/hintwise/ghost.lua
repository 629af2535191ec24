-- Ghost text: ask the server for an inline completion, draw it with extmarks at the cursor, and
-- tell the server what the user did with it (accept, accept word/line, dismiss, next/previous).
--
-- Neovim before 0.12 has no inline completion client: this module sends the raw
-- `textDocument/inlineCompletion` request and renders the answer itself (inline virtual text from
-- 0.10, end-of-line virtual text before), with the rest of a multi-line suggestion as virtual
-- lines below.
local compat = require("hintwise.compat")
local config = require("hintwise.config")
local debounce = require("hintwise.debounce")

local M = {}

M.ns = vim.api.nvim_create_namespace("hintwise_ghost")
M.enabled = true
M.last_gate = nil -- the gate score of the last suggestion, drives the debounce
M.current = nil -- what is on screen: see show()

local timer = nil
local pending = nil -- {client, id} of the request in flight

local function client_for(bufnr)
  return compat.clients(bufnr)[1]
end

local function gate_of(item)
  local command = item.command
  local extra = type(command) == "table" and type(command.arguments) == "table" and command.arguments[2]
  if type(extra) == "table" and type(extra.gate) == "number" then
    return extra.gate
  end
  return nil
end

local function id_of(item)
  local command = item.command
  if type(command) == "table" and type(command.arguments) == "table" then
    local id = command.arguments[1]
    if type(id) == "string" then
      return id
    end
  end
  return nil
end

function M.delay_ms()
  local d = config.values.debounce
  return debounce.delay_ms(M.last_gate, d.min_ms, d.max_ms)
end

local function clear_marks(bufnr)
  if vim.api.nvim_buf_is_valid(bufnr) then
    vim.api.nvim_buf_clear_namespace(bufnr, M.ns, 0, -1)
  end
end

local function render(state)
  clear_marks(state.bufnr)
  if state.text == "" then
    return
  end
  local lines = vim.split(state.text, "\n", { plain = true })
  local hl = "HintwiseSuggestion"
  local opts = { hl_mode = "combine" }
  if lines[1] ~= "" then
    opts.virt_text = { { lines[1], hl } }
    opts.virt_text_pos = compat.inline_virt_text and "inline" or "eol"
  end
  if #lines > 1 then
    opts.virt_lines = {}
    for i = 2, #lines do
      table.insert(opts.virt_lines, { { lines[i], hl } })
    end
  end
  state.mark = vim.api.nvim_buf_set_extmark(state.bufnr, M.ns, state.row, state.col, opts)
end

--- The extmarks on screen, as plain data (for tests and statuslines).
function M.marks(bufnr)
  local found = {}
  for _, mark in ipairs(vim.api.nvim_buf_get_extmarks(bufnr or 0, M.ns, 0, -1, { details = true })) do
    local details = mark[4] or {}
    table.insert(found, {
      row = mark[2],
      col = mark[3],
      virt_text = details.virt_text,
      virt_text_pos = details.virt_text_pos,
      virt_lines = details.virt_lines,
    })
  end
  return found
end

function M.visible()
  local state = M.current
  return state ~= nil and state.text ~= "" and state.bufnr == vim.api.nvim_get_current_buf()
end

local function cancel_pending()
  if pending then
    compat.cancel(pending.client, pending.id)
    pending = nil
  end
end

--- Forget the suggestion on screen. `reason` "dismiss" reports it to the server as rejected.
function M.clear(reason)
  local state = M.current
  M.current = nil
  if state then
    clear_marks(state.bufnr)
    if reason == "dismiss" and state.id then
      local client = vim.lsp.get_client_by_id(state.client_id)
      if client then
        compat.notify(client, "hintwise/didReject", { id = state.id })
      end
    end
  end
end

local function show(state, index)
  local item = state.items[index]
  state.index = index
  state.item = item
  state.id = id_of(item)
  state.text = item.insertText
  state.accepted = ""
  render(state)
  M.current = state
  M.last_gate = gate_of(item) or M.last_gate
  if state.id and not state.reported[state.id] then
    state.reported[state.id] = true
    local client = vim.lsp.get_client_by_id(state.client_id)
    if client then
      compat.notify(client, "hintwise/didShow", { id = state.id })
    end
  end
end

-- The part of an item's text still to insert at the cursor: an item whose range starts before
-- the cursor repeats what is already typed there.
local function usable_text(item, line, col, encoding)
  local text = item.insertText
  if type(text) ~= "string" then
    if type(text) == "table" and type(text.value) == "string" then
      text = text.value -- a snippet string: shown as is
    else
      return nil
    end
  end
  local range = item.range
  if type(range) == "table" and range.start then
    local start_col = compat.byte_col(line, range.start.character, encoding)
    if start_col < col then
      local typed = line:sub(start_col + 1, col)
      if text:sub(1, #typed) ~= typed then
        return nil
      end
      text = text:sub(#typed + 1)
    end
  end
  if text == "" then
    return nil
  end
  return text
end

--- Ask the server for a suggestion at the cursor. `opts.invoked`: asked for explicitly (the
--- server then skips its automatic-trigger filters).
function M.request(opts)
  opts = opts or {}
  local bufnr = vim.api.nvim_get_current_buf()
  local client = client_for(bufnr)
  if not client then
    return false
  end
  cancel_pending()
  local cursor = vim.api.nvim_win_get_cursor(0)
  local row, col = cursor[1] - 1, cursor[2]
  local line = vim.api.nvim_buf_get_lines(bufnr, row, row + 1, false)[1] or ""
  local encoding = client.offset_encoding or "utf-16"
  local tick = vim.api.nvim_buf_get_changedtick(bufnr)
  local params = {
    textDocument = { uri = vim.uri_from_bufnr(bufnr) },
    position = { line = row, character = compat.character(line, col, encoding) },
    context = { triggerKind = opts.invoked and 1 or 2 },
  }
  local request_id
  local ok
  ok, request_id = compat.request(client, "textDocument/inlineCompletion", params, function(err, result)
    if pending and pending.id == request_id then
      pending = nil
    end
    if err or type(result) ~= "table" then
      return
    end
    -- Stale: the buffer or the cursor moved on while the server worked.
    local now = vim.api.nvim_win_get_cursor(0)
    if
      vim.api.nvim_get_current_buf() ~= bufnr
      or vim.api.nvim_buf_get_changedtick(bufnr) ~= tick
      or now[1] - 1 ~= row
      or now[2] ~= col
    then
      return
    end
    local items = {}
    for _, item in ipairs(result.items or result) do
      local text = type(item) == "table" and usable_text(item, line, col, encoding)
      if text then
        table.insert(items, vim.tbl_extend("force", item, { insertText = text }))
      end
    end
    if opts.on_result then
      opts.on_result(items)
    end
    if #items == 0 then
      return
    end
    local previous = M.current
    if opts.append and previous and previous.row == row and previous.col == col then
      -- next(): keep the suggestions already cycled through and add the new distinct ones
      for _, item in ipairs(items) do
        local seen = false
        for _, old in ipairs(previous.items) do
          seen = seen or old.insertText == item.insertText
        end
        if not seen then
          table.insert(previous.items, item)
        end
      end
      show(previous, math.min(previous.index + 1, #previous.items))
      return
    end
    M.clear()
    show({
      bufnr = bufnr,
      client_id = client.id,
      row = row,
      col = col,
      items = items,
      reported = {},
      tick = tick,
    }, 1)
  end, bufnr)
  if ok then
    pending = { client = client, id = request_id }
  end
  return ok
end

--- Restart the debounce timer; the request goes out when typing pauses.
function M.schedule()
  if not M.enabled or not config.values.auto_trigger then
    return
  end
  if timer == nil then
    timer = compat.uv.new_timer()
  end
  timer:stop()
  timer:start(
    M.delay_ms(),
    0,
    vim.schedule_wrap(function()
      if vim.api.nvim_get_mode().mode:sub(1, 1) == "i" then
        M.request({ invoked = false })
      end
    end)
  )
end

-- Insert `text` at the suggestion's spot and put the cursor after it.
local function insert(state, text)
  local lines = vim.split(text, "\n", { plain = true })
  vim.api.nvim_buf_set_text(state.bufnr, state.row, state.col, state.row, state.col, lines)
  local end_row = state.row + #lines - 1
  local end_col = (#lines == 1 and state.col or 0) + #lines[#lines]
  state.row, state.col = end_row, end_col
  state.tick = vim.api.nvim_buf_get_changedtick(state.bufnr)
  pcall(vim.api.nvim_win_set_cursor, 0, { end_row + 1, end_col })
end

local function run_accept_command(state)
  local client = vim.lsp.get_client_by_id(state.client_id)
  local command = state.item.command
  if not client or type(command) ~= "table" or type(command.command) ~= "string" then
    return
  end
  compat.request(client, "workspace/executeCommand", {
    command = command.command,
    arguments = command.arguments,
  }, function(err, result)
    M.last_accept = { err = err, result = result }
  end, state.bufnr)
end

--- Take the first `n` bytes of the remaining suggestion (all of it when n is nil).
local function take(n)
  local state = M.current
  if not M.visible() then
    return false
  end
  local chunk = n and state.text:sub(1, n) or state.text
  insert(state, chunk)
  state.accepted = state.accepted .. chunk
  state.text = state.text:sub(#chunk + 1)
  if state.text == "" then
    clear_marks(state.bufnr)
    M.current = nil
    run_accept_command(state)
  else
    render(state)
    local client = vim.lsp.get_client_by_id(state.client_id)
    if client and state.id then
      compat.notify(client, "hintwise/didPartiallyAccept", {
        id = state.id,
        acceptedLength = vim.fn.strchars(state.accepted),
      })
    end
  end
  return true
end

function M.accept()
  return take(nil)
end

--- The next word of the suggestion: leading blanks, then a word or a run of punctuation; a line
--- break with the next line's indentation counts as one word.
function M.next_word_length(text)
  local newline = text:match("^\n[ \t]*")
  if newline then
    return #newline
  end
  return #(text:match("^%s*[%w_]+") or text:match("^%s*[^%w_%s]+") or text:match("^%s+") or text)
end

--- The rest of the current line of the suggestion (or, at a line break, the next line).
function M.next_line_length(text)
  local newline = text:match("^\n[^\n]*")
  if newline then
    return #newline
  end
  return #(text:match("^[^\n]*"))
end

function M.accept_word()
  return M.visible() and take(M.next_word_length(M.current.text))
end

function M.accept_line()
  return M.visible() and take(M.next_line_length(M.current.text))
end

function M.dismiss()
  if not M.visible() then
    return false
  end
  M.clear("dismiss")
  return true
end

--- Cycle to the next suggestion; with one in hand, ask the server (invoked) for another.
function M.next()
  local state = M.current
  if state and state.index < #state.items then
    show(state, state.index + 1)
    return true
  end
  if state and state.accepted == "" then
    return M.request({ invoked = true, append = true })
  end
  return M.request({ invoked = true })
end

function M.prev()
  local state = M.current
  if state and state.accepted == "" and #state.items > 1 then
    show(state, (state.index - 2) % #state.items + 1)
    return true
  end
  -- With a suggestion on screen the key is ours even when there is nothing to go back to
  -- (<M-[> passed on would arrive as <Esc>[ and leave Insert mode).
  return M.visible()
end

--- After a buffer change in Insert mode: typing along the suggestion keeps the rest of it on
--- screen; anything else drops it and schedules a new request.
function M.on_text_changed()
  local state = M.current
  local bufnr = vim.api.nvim_get_current_buf()
  if state and state.bufnr == bufnr then
    local tick = vim.api.nvim_buf_get_changedtick(bufnr)
    if tick == state.tick then
      return -- our own insertion
    end
    local cursor = vim.api.nvim_win_get_cursor(0)
    local row, col = cursor[1] - 1, cursor[2]
    if row == state.row and col > state.col then
      local line = vim.api.nvim_buf_get_lines(bufnr, row, row + 1, false)[1] or ""
      local typed = line:sub(state.col + 1, col)
      if state.text:sub(1, #typed) == typed and #typed < #state.text then
        state.text = state.text:sub(#typed + 1)
        state.accepted = state.accepted .. typed
        state.col, state.tick = col, tick
        render(state)
        return
      end
    end
    M.clear()
  end
  M.schedule()
end

function M.on_cursor_moved()
  local state = M.current
  if not state then
    return
  end
  local cursor = vim.api.nvim_win_get_cursor(0)
  if state.bufnr ~= vim.api.nvim_get_current_buf() or cursor[1] - 1 ~= state.row or cursor[2] ~= state.col then
    M.clear()
  end
end

function M.toggle()
  M.enabled = not M.enabled
  if not M.enabled then
    M.clear("dismiss")
    cancel_pending()
    if timer then
      timer:stop()
    end
  end
  return M.enabled
end

--- Autocommands and keymaps for one buffer.
function M.attach(bufnr)
  vim.api.nvim_set_hl(0, "HintwiseSuggestion", { link = config.values.highlight, default = true })
  local group = vim.api.nvim_create_augroup("hintwise_ghost_" .. bufnr, { clear = true })
  vim.api.nvim_create_autocmd("TextChangedI", { group = group, buffer = bufnr, callback = M.on_text_changed })
  vim.api.nvim_create_autocmd("InsertEnter", { group = group, buffer = bufnr, callback = M.schedule })
  vim.api.nvim_create_autocmd("CursorMovedI", { group = group, buffer = bufnr, callback = M.on_cursor_moved })
  vim.api.nvim_create_autocmd("InsertLeave", {
    group = group,
    buffer = bufnr,
    callback = function()
      M.clear("dismiss")
      cancel_pending()
    end,
  })
  vim.api.nvim_create_autocmd("BufLeave", {
    group = group,
    buffer = bufnr,
    callback = function()
      M.clear()
    end,
  })

  local keys = config.values.keymaps or {}
  -- A key that does nothing to the suggestion keeps its usual meaning (Tab inserts a tab).
  local function map(lhs, action)
    if not lhs or lhs == "" then
      return
    end
    vim.keymap.set("i", lhs, function()
      if not action() then
        local raw = vim.api.nvim_replace_termcodes(lhs, true, false, true)
        vim.api.nvim_feedkeys(raw, "n", false)
      end
    end, { buffer = bufnr, silent = true, desc = "hintwise" })
  end
  map(keys.accept, M.accept)
  map(keys.accept_word, M.accept_word)
  map(keys.accept_line, M.accept_line)
  map(keys.dismiss, M.dismiss)
  map(keys.next, M.next)
  map(keys.prev, M.prev)
end

return M
