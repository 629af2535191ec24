-- :checkhealth hintwise: server found, model loaded, FIM support, feedback store, Neovim features.
local compat = require("hintwise.compat")
local config = require("hintwise.config")

local M = {}

-- vim.health (0.9+) or the older `health` module (report_*).
local health = vim.health or require("health")
local start = health.start or health.report_start
local ok = health.ok or health.report_ok
local warn = health.warn or health.report_warn
local error = health.error or health.report_error
local info = health.info or health.report_info

local function status_from_client(client)
  local reply = compat.call(client, "request_sync", "hintwise/status", vim.empty_dict(), 5000, 0)
  if reply and reply.result then
    return reply.result
  end
  return nil
end

-- Without a running server: `hintwise doctor --json --no-speed`.
local function status_from_doctor(cmd)
  local doctor = { cmd[1], "doctor", "--json", "--no-speed" }
  local output = vim.fn.system(doctor)
  local decoded_ok, report = pcall(compat.json_decode, output)
  if vim.v.shell_error ~= 0 and not decoded_ok then
    return nil, output
  end
  return decoded_ok and report or nil, output
end

function M.check()
  start("hintwise: Neovim")
  local v = vim.version()
  info(string.format("Neovim %d.%d.%d", v.major, v.minor, v.patch))
  if vim.fn.has("nvim-0.7") ~= 1 then
    error("hintwise needs Neovim 0.7 or newer")
  end
  if compat.native_inline then
    ok("native inline completion (vim.lsp.inline_completion)")
  elseif compat.inline_virt_text then
    ok("ghost text as inline virtual text (0.10+)")
  else
    warn("ghost text at the end of the line (inline virtual text needs Neovim 0.10)")
  end

  start("hintwise: server")
  local cmd = config.server_cmd()
  if vim.fn.executable(cmd[1]) ~= 1 then
    error("server not found: " .. cmd[1], { "pip install hintwise", "or set cmd in setup()" })
    return
  end
  ok("server found: " .. vim.fn.exepath(cmd[1]))

  local client = compat.clients(vim.api.nvim_get_current_buf())[1]
  if not client then
    for _, candidate in ipairs(vim.lsp.get_clients and vim.lsp.get_clients() or vim.lsp.get_active_clients()) do
      if candidate.name == "hintwise" then
        client = candidate
      end
    end
  end
  if client then
    ok("server running (client " .. client.id .. ")")
    local status = status_from_client(client)
    if not status then
      warn("the server did not answer hintwise/status")
      return
    end
    if status.state == "ready" then
      ok("model loaded: " .. tostring(status.model))
    elseif status.state == "failed" then
      error("model failed to load: " .. tostring(status.error), { "run `hintwise doctor`" })
    else
      warn("model " .. tostring(status.model) .. " is " .. tostring(status.state))
    end
    if status.fim and status.fim ~= vim.NIL then
      ok("FIM support: " .. tostring(status.fim))
    else
      info("FIM support: none (the model continues the code before the cursor)")
    end
    local lora = status.adapter
    if type(lora) == "table" and lora.problem and lora.problem ~= vim.NIL then
      warn("LoRA adapter not used: " .. tostring(lora.problem), { tostring(lora.fix) })
    elseif type(lora) == "table" and lora.loaded then
      local run = (lora.run_id and lora.run_id ~= vim.NIL) and ("run " .. lora.run_id) or lora.path
      ok("LoRA adapter: " .. tostring(run))
    end
    local telemetry = status.telemetry or {}
    if telemetry.enabled == false then
      info("feedback store: off (telemetry.enabled = false)")
    elseif telemetry.ok == false then
      error("feedback store: " .. tostring(telemetry.problem))
    else
      local reply = compat.call(client, "request_sync", "workspace/executeCommand", {
        command = "hintwise.stats",
        arguments = { {} },
      }, 5000, 0)
      local store = reply and type(reply.result) == "table" and reply.result.store
      ok("feedback store: " .. tostring(store or "on"))
    end
    return
  end

  info("no server running; asking `hintwise doctor`")
  local report, output = status_from_doctor(cmd)
  if not report then
    error("`hintwise doctor` failed: " .. tostring(output))
    return
  end
  local model = type(report.model) == "table" and report.model or nil
  if model and model.path then
    ok(string.format("model loads: %s (%s, %s MB)", tostring(model.name), model.path, tostring(model.size_mb)))
    if model.fim and model.fim ~= vim.NIL then
      ok("FIM support: " .. tostring(model.fim))
    else
      info("FIM support: " .. tostring(model.fim_note or "none"))
    end
  end
  if report.data_dir then
    info("feedback store: " .. tostring(report.data_dir) .. "/telemetry.db")
  end
  for _, problem in ipairs(report.problems or {}) do
    error(tostring(problem))
  end
  if not model and #(report.problems or {}) == 0 then
    warn("`hintwise doctor` loaded no model")
  end
end

return M
