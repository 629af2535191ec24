-- A floating window for markdown (explanations, stats), with keys of its own.
local config = require("hintwise.config")

local M = {}

--- Open a focused float holding `lines` (markdown). `keys` maps a key to {desc, fn}; the
--- window's last line lists them. Returns the buffer and window handles.
function M.open(title, lines, keys)
  keys = keys or {}
  local opts = config.values.float
  local hints = {}
  for lhs, entry in pairs(keys) do
    table.insert(hints, "[" .. lhs .. "] " .. entry[1])
  end
  table.sort(hints)
  table.insert(hints, "[q] close")
  local body = vim.deepcopy(lines)
  table.insert(body, "")
  table.insert(body, table.concat(hints, "  "))

  local width = 20
  for _, line in ipairs(body) do
    width = math.max(width, vim.fn.strdisplaywidth(line))
  end
  width = math.min(width, opts.max_width, vim.o.columns - 4)
  local height = math.min(#body, opts.max_height, math.max(vim.o.lines - 4, 3))

  local buf = vim.api.nvim_create_buf(false, true)
  vim.api.nvim_buf_set_lines(buf, 0, -1, false, body)
  vim.bo[buf].filetype = "markdown"
  vim.bo[buf].modifiable = false
  vim.bo[buf].bufhidden = "wipe"
  local win = vim.api.nvim_open_win(buf, true, {
    relative = "editor",
    row = math.max(math.floor((vim.o.lines - height) / 2) - 1, 0),
    col = math.max(math.floor((vim.o.columns - width) / 2), 0),
    width = width,
    height = height,
    style = "minimal",
    border = opts.border,
  })
  vim.wo[win].wrap = true
  pcall(vim.api.nvim_buf_set_var, buf, "hintwise_title", title)

  local function close()
    if vim.api.nvim_win_is_valid(win) then
      vim.api.nvim_win_close(win, true)
    end
  end
  vim.keymap.set("n", "q", close, { buffer = buf, nowait = true })
  vim.keymap.set("n", "<Esc>", close, { buffer = buf, nowait = true })
  for lhs, entry in pairs(keys) do
    vim.keymap.set("n", lhs, function()
      entry[2](close)
    end, { buffer = buf, nowait = true, desc = entry[1] })
  end
  M.last = { buf = buf, win = win, title = title }
  return buf, win
end

return M
