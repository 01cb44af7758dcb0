-- feature_flags.lua: feature flags with defaults and per-tenant overrides.
--
--   local flags = require("feature_flags")
--   local f = assert(flags.open({ defaults = { new_checkout = false, page_size = 20 } }))
--   if f:enabled("new_checkout", "acme") then ... end
--   local size = f:value("page_size", "acme")
--   f:set("new_checkout", { enabled = true })                          -- everyone (services only)
--   f:set("new_checkout", { enabled = true }, { tenant = "acme", ttl = 7 * 86400 })   -- a week's trial
--   f:close()
--
-- Layout in the flags store (app:flags):
--   flag:<name>           { enabled = <bool>, value = <any> }   the global setting
--   flag:<name>@<tenant>  { enabled = <bool>, value = <any> }   one tenant's override; may have a TTL
-- A lookup takes the first of: the tenant's override, the global setting, the caller's default.
-- Reads never fail a request: when the store refuses, the default answers and the error comes second.
local store = require("store")

local M = {}

M.DEFAULT_STORE = "app:flags"

local Flags = {}
Flags.__index = Flags

--- Opens the flags store. options: store (id), defaults (name → value or boolean).
function M.open(options)
  options = options or {}
  local handle, err = store.get(options.store or M.DEFAULT_STORE)
  if not handle then return nil, err end
  return setmetatable({ handle = handle, defaults = options.defaults or {} }, Flags)
end

local function flag_key(name, tenant)
  if tenant == nil then return "flag:" .. name end
  return "flag:" .. name .. "@" .. tenant
end

--- The setting that applies and where it came from ("tenant", "global", "default", "none"),
--- plus the store's error when a read was refused.
function Flags:lookup(name, tenant)
  if tenant ~= nil then
    local override, err = self.handle:get(flag_key(name, tenant))
    if err then return self:default(name), "default", err end
    if override ~= nil then return override, "tenant" end
  end
  local global, err = self.handle:get(flag_key(name))
  if err then return self:default(name), "default", err end
  if global ~= nil then return global, "global" end
  local default = self:default(name)
  return default, default and "default" or "none"
end

--- The caller's default for `name` as a setting, or nil.
function Flags:default(name)
  local d = self.defaults[name]
  if d == nil then return nil end
  if type(d) == "boolean" then return { enabled = d } end
  return { enabled = true, value = d }
end

--- True when the flag is on for `tenant` (or globally when tenant is nil); off when unknown.
function Flags:enabled(name, tenant)
  local setting, _, err = self:lookup(name, tenant)
  return setting ~= nil and setting.enabled == true, err
end

--- The flag's value for `tenant`, or `fallback` when the flag has none or is off.
function Flags:value(name, tenant, fallback)
  local setting, _, err = self:lookup(name, tenant)
  if setting == nil or setting.enabled ~= true or setting.value == nil then return fallback, err end
  return setting.value, err
end

--- Writes a setting { enabled =, value = }; options: tenant (an override), ttl (seconds).
function Flags:set(name, setting, options)
  options = options or {}
  return self.handle:set(flag_key(name, options.tenant), setting, options.ttl)
end

--- Removes a setting (the tenant's override when `tenant` is given).
function Flags:clear(name, tenant)
  return self.handle:delete(flag_key(name, tenant))
end

function Flags:close()
  self.handle:release()
end

return M
