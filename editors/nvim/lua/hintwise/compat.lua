-- The differences between the Neovim versions the plugin supports (0.7 to 0.12).
local M = {}

M.uv = vim.uv or vim.loop

local function has(feature)
  return vim.fn.has(feature) == 1
end

M.inline_virt_text = has("nvim-0.10") -- virt_text_pos = "inline"
M.method_style = has("nvim-0.11") -- client:request() instead of client.request()
M.native_inline = vim.lsp.inline_completion ~= nil -- 0.12+

--- Call a client method whatever the calling convention of this Neovim.
function M.call(client, name, ...)
  if M.method_style then
    return client[name](client, ...)
  end
  return client[name](...)
end

function M.notify(client, method, params)
  return M.call(client, "notify", method, params)
end

function M.request(client, method, params, handler, bufnr)
  return M.call(client, "request", method, params, handler, bufnr)
end

function M.cancel(client, id)
  pcall(M.call, client, "cancel_request", id)
end

--- Start (or reuse) the client for a buffer: vim.lsp.start on 0.8+, start_client on 0.7.
function M.start(config, bufnr)
  if vim.lsp.start then
    return vim.lsp.start(config, { bufnr = bufnr })
  end
  for _, client in pairs(vim.lsp.get_active_clients()) do
    if client.name == config.name and client.config.root_dir == config.root_dir then
      vim.lsp.buf_attach_client(bufnr, client.id)
      return client.id
    end
  end
  local id = vim.lsp.start_client(config)
  if id then
    vim.lsp.buf_attach_client(bufnr, id)
  end
  return id
end

function M.clients(bufnr)
  if vim.lsp.get_clients then
    return vim.lsp.get_clients({ bufnr = bufnr, name = "hintwise" })
  end
  local found = {}
  for _, client in pairs(vim.lsp.buf_get_clients(bufnr)) do
    if client.name == "hintwise" then
      table.insert(found, client)
    end
  end
  return found
end

--- The LSP character offset of byte column `col` in `line`, in the client's encoding.
function M.character(line, col, encoding)
  if encoding == "utf-8" then
    return col
  end
  if has("nvim-0.11") then
    return vim.str_utfindex(line, encoding or "utf-16", col, false)
  end
  local utf32, utf16 = vim.str_utfindex(line, col)
  return encoding == "utf-32" and utf32 or utf16
end

--- Byte column of LSP character offset `character` in `line`.
function M.byte_col(line, character, encoding)
  if encoding == "utf-8" then
    return character
  end
  if has("nvim-0.11") then
    return vim.str_byteindex(line, encoding or "utf-16", character, false)
  end
  return vim.str_byteindex(line, character, encoding ~= "utf-32")
end

function M.json_decode(text)
  return (vim.json and vim.json.decode or vim.fn.json_decode)(text)
end

return M
