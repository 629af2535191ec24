-- How long to wait after a keystroke before asking for a suggestion.
--
-- Copilot ties its debounce to its acceptance score p: 25 + 250 / (1 + (p / 0.275)^6) ms, so a
-- spot where suggestions get taken is served at once and a poor one waits for the typing to
-- settle. hintwise's gate score (0-1, returned with every suggestion) plays the part of p.
local M = {}

function M.delay_ms(gate, min_ms, max_ms)
  if type(gate) ~= "number" then
    gate = 0.275 -- no gate (or no suggestion yet): the curve's midpoint
  end
  gate = math.max(0, math.min(1, gate))
  return math.floor(min_ms + (max_ms - min_ms) / (1 + (gate / 0.275) ^ 6) + 0.5)
end

return M
